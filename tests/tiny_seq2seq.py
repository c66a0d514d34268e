"""Tiny, randomly initialised encoder-decoder models with their tokenizers, written to a folder
the way a user's own model is (save_pretrained with safetensors, tokenizer.json beside it), so
tests load them through the same local-folder path. Nothing comes from the hub.

    from tiny_seq2seq import make_tiny_bart, make_tiny_t5

T5's tokenizer is a small BPE with sentencepiece-style spaces (Metaspace) that appends </s> to
every encoded text, as T5's does; BART's is byte-level BPE wrapping texts in <s> ... </s>.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

T5_SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's ids: pad 0 (also the decoder start), eos 1
BART_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # BART's ids: bos 0, pad 1, eos 2


def _round_up(n: int, multiple: int = 8) -> int:
    """Real models pad their embedding rows past the tokenizer (T5: 32100 tokens, 32128 rows)."""
    return -(-n // multiple) * multiple


def _t5_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=T5_SPECIALS, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return tokenizer


def _bart_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BART_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return tokenizer


def _save(model, tokenizer: Tokenizer, folder: Path, specials: dict[str, str]) -> Path:
    """The model and its tokenizer in `folder`, as save_pretrained writes them."""
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials).save_pretrained(folder)
    return folder


def make_tiny_t5(folder: Path, texts: list[str], **sizes: int) -> Path:
    """A random 2+2-layer T5 (d_model 64) and its tokenizer trained on `texts`, in `folder`.

    `sizes` override T5Config fields (d_model, d_ff, num_layers, vocab ...).
    """
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _t5_tokenizer(texts, vocab_size=200)
    shape = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4} | sizes
    config = T5Config(
        vocab_size=_round_up(tokenizer.get_vocab_size()),
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        **shape,
    )
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    specials = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    return _save(model, tokenizer, folder, specials)


def make_tiny_bart(folder: Path, texts: list[str], **sizes: int) -> Path:
    """A random 2+2-layer BART (d_model 64, 128 positions) and its byte-level BPE tokenizer
    trained on `texts`, in `folder`. `sizes` override BartConfig fields."""
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = _bart_tokenizer(texts, vocab_size=300)
    shape = {
        "d_model": 64,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "max_position_embeddings": 128,
    } | sizes
    config = BartConfig(
        vocab_size=_round_up(tokenizer.get_vocab_size()),
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
        **shape,
    )
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config)
    specials = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    return _save(model, tokenizer, folder, specials)
