"""Tokenizers (Hugging Face `tokenizers`): trained on the training split, or a pretrained
model's own; and `encode`, texts -> right-padded int64 token ids.

Every tokenizer ladder trains has the special tokens [PAD] (id 0), [UNK], [CLS], [SEP] and
[MASK], and starts each text with [CLS], so even an empty text has one real token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ladder.errors import DataError, LadderError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # [PAD] first: id 0
TokenizerKind = Literal["wordpiece", "bpe", "word"]


def train_tokenizer(
    texts: Sequence[str],
    kind: TokenizerKind,
    vocab_size: int,
    lowercase: bool = True,
    min_frequency: int = 1,
) -> Any:
    """A `tokenizers.Tokenizer` of `kind` learned from `texts` (the training split's)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import trainers as tk_trainers

    common = {"vocab_size": vocab_size, "min_frequency": min_frequency, "show_progress": False}
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer: Any = tk_trainers.WordPieceTrainer(special_tokens=SPECIAL_TOKENS, **common)
        tokenizer.decoder = decoders.WordPiece()
    elif kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = tk_trainers.BpeTrainer(special_tokens=SPECIAL_TOKENS, **common)
    elif kind == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = tk_trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, **common)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")  # the config validates it
    # BERT's cleaning: control characters removed, accents stripped when lowercasing
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # whitespace and punctuation
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    cls_id = tokenizer.token_to_id("[CLS]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A", special_tokens=[("[CLS]", cls_id)]
    )
    return tokenizer


def load_pretrained_tokenizer(folder: Path) -> Any:
    """The fast tokenizer of a pretrained model folder (its tokenizer.json, else built by
    `transformers` from the folder's vocabulary files)."""
    from tokenizers import Tokenizer

    file = Path(folder) / "tokenizer.json"
    if file.is_file():
        try:
            return Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust parser raises a generic Exception
            raise LadderError(f"{file}: not a readable tokenizer file ({exc})") from exc
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), use_fast=True).backend_tokenizer
    except (OSError, ValueError, AttributeError) as exc:
        raise LadderError(
            f"{folder}: no tokenizer (expected tokenizer.json or vocabulary files) ({exc})"
        ) from exc


def tokenizer_from_json(text: str) -> Any:
    """A tokenizer from the text of a tokenizer.json file."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(text)


def pad_id_of(tokenizer: Any) -> int:
    """The id the tokenizer pads with: its padding setting, else [PAD] or <pad>, else 0."""
    padding = tokenizer.padding
    if padding is not None and padding.get("pad_id") is not None:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


def encode(tokenizer: Any, texts: Sequence[str], max_length: int, pad_id: int) -> np.ndarray:
    """Token ids (N, L) int64, right-padded with `pad_id`; L is the longest encoded text
    (at most `max_length`, special tokens included)."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    try:
        encodings = tokenizer.encode_batch(list(texts))
    except TypeError as exc:  # a non-string value
        raise DataError(f"text input must be strings ({exc})") from exc
    longest = max((len(e.ids) for e in encodings), default=1)
    ids = np.full((len(encodings), max(longest, 1)), pad_id, dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
    return ids
