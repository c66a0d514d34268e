"""Any Hugging Face encoder-decoder from a local folder, fine-tuned fully or with LoRA.

T5, BART, Marian ...: whatever `AutoModelForSeq2SeqLM` loads from a folder written by
`save_pretrained` (safetensors weights only). `PretrainedSeq2Seq` gives it the interface of
ladder's own seq2seq models: `forward(x)` with teacher forcing, and `encode`, `initial_past`,
`step` to decode one token at a time. Decoding uses the model's key/value cache, held as plain
batch-first tensors so that a state can be copied, stacked and continued twice:

    memory = (encoder states (batch, source, d_model),
              cross-attention K_0, V_0, K_1, V_1 ... (batch, heads, source, head_dim))
    past   = (self-attention K_0, V_0, K_1, V_1 ... (batch, heads, steps, head_dim))

one K and one V per decoder layer. `step` rebuilds a transformers cache from them and returns
the grown self-attention K/V as new tensors: the old `past` stays valid and unchanged.

LoRA, merged saving and the parameter counts are causal_lm's: `save` writes the adapters merged
into the base weights, so the export is a plain transformers folder with the tokenizer files.
`transformers` and `peft` are imported inside functions: importing ladder must stay fast.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253

from ladder.data.pair_tokenizers import pretrained_ids
from ladder.errors import ArtifactError, ConfigError, LadderError, first_line
from ladder.models.causal_lm import (
    SAFE_WEIGHT_FILES,
    WEIGHT_FILES,
    CausalLM,
    Fail,
    LoraConfig,
    _add_lora,
    _enable_checkpointing,
    _folder_problem,
)
from ladder.models.pretrained import _quiet_transformers

WHAT = "an encoder-decoder model"
HINT = "give a text-to-text encoder-decoder such as T5, BART or Marian"


class PretrainedSeq2SeqConfig(BaseModel):
    """Which encoder-decoder to fine-tune, how (all weights or LoRA), and the lengths it takes."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="a local folder written by save_pretrained")
    lora: LoraConfig | None = Field(None, description="train LoRA adapters only; None: all weights")
    max_source_length: PositiveInt = Field(128, description="source tokens the model reads")
    max_target_length: PositiveInt = Field(128, description="target tokens the model writes")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, ~30% slower"
    )


class PretrainedSeq2Seq(nn.Module):
    """A transformers encoder-decoder (maybe wrapped by peft) with ladder's seq2seq interface.

    `bos_id` is the model's decoder start token (T5 and Marian: the pad id; BART: </s>).
    """

    def __init__(
        self,
        model: nn.Module,
        source: Path | None = None,
        max_source_length: int = 128,
        max_target_length: int = 128,
    ) -> None:
        super().__init__()
        self.model = model
        self.source = source  # the folder it came from: `save` copies its tokenizer files
        self.lora = hasattr(model, "get_base_model")  # peft's wrapper; merge_and_unload drops it
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        base = self.base_model()
        try:
            self.pad_id, self.bos_id, self.eos_id = pretrained_ids(*_id_settings(base))
        except ValueError as exc:
            raise LadderError(f"{source or 'the model'}: {exc}") from exc
        self.source_vocab_size = int(base.get_input_embeddings().num_embeddings)
        self.vocab_size = int(base.get_output_embeddings().weight.shape[0])
        # the cache's keyword, in forward and in its output: transformers 4 `past_key_values`,
        # recent 5.x `cache` (the old name still works there, with a FutureWarning)
        self._cache_key = (
            "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        )

    # LoRA bookkeeping, counts and merged saving read only `model`, `lora`, `source` and
    # `base_model()`, which this class has too: causal_lm's one implementation serves both.
    base_model = CausalLM.base_model
    trainable_params = CausalLM.trainable_params
    total_params = CausalLM.total_params
    merge_and_unload = CausalLM.merge_and_unload
    merged_state_dict = CausalLM.merged_state_dict
    save = CausalLM.save

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, length, vocab) of every target position, by teacher forcing.

        `x` (batch, 2, length): x[:, 0] the source ids padded with pad_id, x[:, 1] the decoder
        input ([bos] + target, padded). Padded sources are masked; the decoder's causal mask
        is enough for its right padding (and T5's bos is its pad id, so no pad mask there).
        """
        source, decoder_input = x[:, 0], x[:, 1]  # (batch, length) each
        out = self.base_model()(
            input_ids=source,
            attention_mask=(source != self.pad_id).long(),
            decoder_input_ids=decoder_input,
            use_cache=False,
        )
        return out.logits  # (batch, length, vocab)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoder's states of `src` (batch, source) and every decoder layer's cross-attention
        keys and values of them (computed once here, reused by every step)."""
        hidden = (
            self.base_model()
            .get_encoder()(input_ids=src, attention_mask=src_mask.long())
            .last_hidden_state
        )  # (batch, source, d_model)
        # a first decoder step fills the cache's cross-attention K/V; its logits are not needed
        bos = torch.full((src.size(0), 1), self.bos_id, dtype=torch.long, device=src.device)
        _, cache = self._decode(bos, hidden, src_mask, _cache((), ()))
        cross = tuple(t for k, v, *_ in cache.cross_attention_cache for t in (k, v))
        return (hidden, *cross)

    def initial_past(
        self, memory: tuple[torch.Tensor, ...], src_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Empty self-attention keys and values (batch, heads, 0, head_dim) for every layer,
        shaped like its cross-attention's (T5, BART, Marian use the same heads for both)."""
        return tuple(kv.new_zeros((*kv.shape[:2], 0, kv.shape[3])) for kv in memory[1:])

    def step(
        self,
        tokens: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        past: tuple[torch.Tensor, ...],
        position: torch.Tensor | int = 0,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Logits (batch, vocab) of the token after `tokens` (batch, 1), and `past` one step
        longer. The model reads the position from the cache's length (every row of a batch is
        at the same step), so `position` is not needed."""
        logits, cache = self._decode(tokens, memory[0], src_mask, _cache(past, memory[1:]))
        present = tuple(t for k, v, *_ in cache.self_attention_cache for t in (k, v))
        return logits[:, -1], present

    def _decode(
        self, tokens: torch.Tensor, hidden: torch.Tensor, src_mask: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        """The decoder's logits for `tokens` after the cached ones, and the grown cache."""
        from transformers.modeling_outputs import BaseModelOutput

        out = self.base_model()(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=src_mask.long(),
            decoder_input_ids=tokens,
            use_cache=True,
            **{self._cache_key: cache},
        )
        return out.logits, getattr(out, self._cache_key)


def _cache(self_kv: tuple[torch.Tensor, ...], cross_kv: tuple[torch.Tensor, ...]) -> Any:
    """A transformers encoder-decoder cache holding flat (K_0, V_0, K_1, V_1 ...) tensors; the
    layers with cross-attention K/V are marked as filled, so the model does not recompute them."""
    from transformers import DynamicCache, EncoderDecoderCache

    def layers(flat: tuple[torch.Tensor, ...]) -> Any:
        return DynamicCache([(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)] or None)

    return EncoderDecoderCache(layers(self_kv), layers(cross_kv))


def _id_settings(model: nn.Module) -> list[dict[str, Any]]:
    """The model's config, then its generation config: where its special ids are."""
    generation = getattr(model, "generation_config", None)
    settings = [model.config.to_dict()]
    return settings if generation is None else [*settings, generation.to_dict()]


def _position_limit(hf_config: Any) -> int | None:
    """The positions the model can take (BART, Marian); None without a limit (T5's relative
    positions)."""
    limit = getattr(hf_config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def _seq2seq_folder_problem(folder: Path) -> str | None:
    """What makes `folder` unusable as a saved encoder-decoder (safetensors only), or None."""
    if not folder.exists():
        return f"{folder} does not exist; give the folder of {WHAT} written by save_pretrained"
    if not folder.is_dir():
        return f"{folder} is not a folder; give the folder of {WHAT}, not a file in it"
    problem = _folder_problem(folder, SAFE_WEIGHT_FILES)
    pickled = [name for name in WEIGHT_FILES[2:] if (folder / name).is_file()]
    if problem and pickled and (folder / "config.json").is_file():
        return (
            f"{folder} has pickled weights only ({', '.join(pickled)}); ladder reads safetensors: "
            "save the model there again with save_pretrained(safe_serialization=True)"
        )
    return problem


def folder_problem(path: str) -> str | None:
    """What makes the folder at `path` unusable as an encoder-decoder to fine-tune (no folder,
    no config.json, no safetensors weights), or None."""
    return _seq2seq_folder_problem(Path(path).expanduser())


def _seq2seq_problem(hf_config: Any) -> str | None:
    """Why `hf_config` is not a text-to-text encoder-decoder, or None when it is one."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    model_type = hf_config.model_type
    encoder_decoder = getattr(hf_config, "is_encoder_decoder", False)
    if encoder_decoder and model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return None
    architecture = (getattr(hf_config, "architectures", None) or [type(hf_config).__name__])[0]
    holds = f"holds a {architecture} ({model_type})"
    if encoder_decoder:
        return f"{holds}, an encoder-decoder that AutoModelForSeq2SeqLM cannot load; {HINT}"
    # BERT-like encoders also have an LM-head class, usable only with is_decoder set; configs
    # of real decoders (GPT-2, Llama ...) have no such flag
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and getattr(hf_config, "is_decoder", True):
        return f"{holds}, a decoder-only model: use type causal_lm"
    return f"{holds}, an encoder without a decoder: use type pretrained to classify, or {HINT}"


def _encoder_decoder_config(folder: Path, fail: Fail) -> Any:
    """The transformers config of the encoder-decoder saved in `folder`, its files checked
    first; every problem (no folder, no safetensors, another kind of model) raised as
    `fail(problem)`."""
    problem = _seq2seq_folder_problem(folder)
    if problem:
        raise fail(problem)
    from transformers import AutoConfig

    with _quiet_transformers():
        try:
            hf_config = AutoConfig.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise fail(
                f"{folder}/config.json is not a transformers config: {first_line(exc)}"
            ) from exc
    problem = _seq2seq_problem(hf_config)
    if problem:
        raise fail(f"{folder} {problem}")
    return hf_config


def model_problem(path: str) -> str | None:
    """What makes the folder at `path` unusable as an encoder-decoder to fine-tune (its files,
    then what its config.json says the model is: a decoder-only GPT-2 is named), or None.
    Reads no weights."""
    try:
        _encoder_decoder_config(Path(path).expanduser(), lambda problem: ConfigError([problem]))
    except ConfigError as exc:
        return exc.problems[0]
    return None


def _load_model(folder: Path, fail: Fail) -> nn.Module:
    """The transformers encoder-decoder saved in `folder` (safetensors weights only); every
    problem raised as `fail(problem)`."""
    hf_config = _encoder_decoder_config(folder, fail)
    from transformers import AutoModelForSeq2SeqLM

    with _quiet_transformers():
        generation = folder / "generation_config.json"
        settings = [hf_config.to_dict()]
        if generation.is_file():
            settings.append(json.loads(generation.read_text(encoding="utf-8")))
        try:
            pretrained_ids(*settings)
        except ValueError as exc:
            raise fail(f"{folder}: {exc}") from exc
        try:
            return AutoModelForSeq2SeqLM.from_pretrained(
                folder,
                config=hf_config,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=True,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise fail(
                f"cannot load the weights in {folder}: {first_line(exc)}; save the model "
                "there again with save_pretrained"
            ) from exc


def _check_lengths(model: nn.Module, config: PretrainedSeq2SeqConfig) -> None:
    """ConfigError when the asked lengths pass the model's learned positions."""
    limit = _position_limit(model.config)
    if limit is None:
        return
    asked = {"max_source_length": config.max_source_length}
    asked["max_target_length"] = config.max_target_length
    problems = [
        f"{name}: {value} is more than the {limit} positions {config.path} can take (its "
        f"max_position_embeddings); set it to {limit} or less"
        for name, value in asked.items()
        if value > limit
    ]
    if problems:
        raise ConfigError(problems)


def load_pretrained_seq2seq(config: PretrainedSeq2SeqConfig) -> PretrainedSeq2Seq:
    """The encoder-decoder at `config.path`, ready to fine-tune as `config` says."""
    folder = Path(config.path).expanduser()

    def fail(problem: str) -> ConfigError:
        return ConfigError([f"path: {problem}"])

    model = _load_model(folder, fail)
    _check_lengths(model, config)
    if config.gradient_checkpointing:
        _enable_checkpointing(model, config.path)
    if config.lora is not None:
        model = _add_lora(model, config.lora, config.path)
    return PretrainedSeq2Seq(
        model, folder.resolve(), config.max_source_length, config.max_target_length
    )


def load_saved(
    folder: str | Path, max_source_length: int = 128, max_target_length: int = 128
) -> PretrainedSeq2Seq:
    """The model `PretrainedSeq2Seq.save` wrote to `folder` (safetensors only: no pickle is
    read), with the lengths it was trained for."""
    folder = Path(folder)
    model = _load_model(folder, ArtifactError)
    return PretrainedSeq2Seq(model, folder.resolve(), max_source_length, max_target_length)
