"""Any Hugging Face causal language model from a local folder, fine-tuned fully or with LoRA.

GPT-2, Llama, Qwen, Mistral ...: whatever `AutoModelForCausalLM` loads from a folder written by
`save_pretrained`. `CausalLM` gives it the contract of ladder's own GPT: `forward(idx, past)`
returns `(logits, present)`. With LoRA (peft) only the low-rank adapters train; `save` writes
them merged into the base weights, so the export is a plain transformers model folder that
`load_saved` (or `AutoModelForCausalLM.from_pretrained`) reads back without peft.

`transformers` and `peft` are imported inside functions: importing ladder must stay fast.
"""

from __future__ import annotations

import fnmatch
import inspect
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253

from ladder.errors import ArtifactError, ConfigError, LadderError, first_line
from ladder.hub import DOWNLOAD_PATTERNS
from ladder.models.pretrained import _quiet_transformers

# What save_pretrained writes, in the order transformers looks for it: one file or shards.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
SAFE_WEIGHT_FILES = WEIGHT_FILES[:2]  # what `save` writes: no pickle in ladder's artifacts
# The tokenizer's files among what ladder downloads for a model; `save` copies them along.
TOKENIZER_PATTERNS = [p for p in DOWNLOAD_PATTERNS if p != "config.json" and "safetensors" not in p]
# Attention's output projection in the usual families (Llama, GPT-2, GPT-NeoX/Falcon, Phi ...):
# LoRA's customary targets are the input projections (query and value, or the fused qkv).
OUTPUT_PROJECTIONS = frozenset({"o_proj", "out_proj", "c_proj", "dense", "wo", "o"})
QUERY, VALUE = frozenset({"q", "query", "wq"}), frozenset({"v", "value", "wv"})
POSITION_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length")

Fail = Callable[[str], LadderError]  # turns a problem into the error the caller raises


class LoraConfig(BaseModel):
    """Low-rank adapters: W + (alpha / r) * B @ A on the target layers; W stays frozen."""

    model_config = ConfigDict(extra="forbid")

    r: PositiveInt = Field(8, description="the rank of each adapter")
    alpha: float = Field(16, gt=0, description="the adapters' update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapters' input")
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="names of the linear layers to adapt (c_attn, q_proj ...); default: the "
        "model's attention input projections (query and value, or the fused qkv)",
    )


class CausalLMConfig(BaseModel):
    """Which causal LM to fine-tune, and how: all weights, or LoRA adapters only."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="a local folder written by save_pretrained")
    lora: LoraConfig | None = Field(None, description="train LoRA adapters only; None: all weights")
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, ~30% slower"
    )


class CausalLM(nn.Module):
    """A transformers causal LM (maybe wrapped by peft) taking token ids, returning logits."""

    def __init__(self, model: nn.Module, source: Path | None = None) -> None:
        super().__init__()
        self.model = model
        self.source = source  # the folder it came from: `save` copies its tokenizer files
        self.lora = hasattr(model, "get_base_model")  # peft's wrapper; merge_and_unload drops it
        base = self.base_model()
        self.block_size = _block_size(base.config, source)
        self.vocab_size = int(base.get_output_embeddings().weight.shape[0])
        # the cache's keyword, in forward and in its output: transformers 4 `past_key_values`,
        # recent 5.x `cache` (the old name still works there, with a FutureWarning)
        self._cache_key = (
            "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        )

    def base_model(self) -> nn.Module:
        """The transformers model itself (inside peft's wrapper with LoRA)."""
        return self.model.get_base_model() if self.lora else self.model

    def forward(self, idx: torch.Tensor, past: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits (batch, seq, vocab) for token ids (batch, seq) following the cached `past`.

        `present` is the model's own cache object (a transformers `Cache`), updated in place:
        pass it back as `past` with the next tokens. It is None while training with gradient
        checkpointing (the recomputed forward cannot fill a cache).
        """
        seen = 0 if past is None else past.get_seq_length()
        if seen + idx.size(1) > self.block_size:
            raise ValueError(
                f"{seen} cached + {idx.size(1)} new tokens is more than the model's "
                f"block_size of {self.block_size}"
            )
        use_cache = not (self.training and _checkpointing(self.base_model()))
        out = self.model(input_ids=idx, use_cache=use_cache, **{self._cache_key: past})
        return out.logits, getattr(out, self._cache_key)  # (batch, seq, vocab), the grown cache

    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def total_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def merge_and_unload(self) -> CausalLM:
        """Fold the LoRA adapters into the base weights and drop peft (no-op without LoRA)."""
        if self.lora:
            self.model = self.model.merge_and_unload()
            self.lora = False
        return self

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """The base model's weights with the adapters added in; the model itself is unchanged."""
        base = self.base_model()
        if not self.lora:
            return base.state_dict()
        from peft.tuners.lora import LoraLayer

        state = {
            name.replace(".base_layer.", "."): tensor  # peft's wrapper moves W one level down
            for name, tensor in base.state_dict().items()
            if not any(part.startswith("lora_") for part in name.split("."))
        }
        for name, module in base.named_modules():
            if isinstance(module, LoraLayer):
                weight = module.get_base_layer().weight
                for adapter in module.active_adapters:
                    weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
                state[f"{name}.weight"] = weight.detach()
        return state

    def save(self, folder: str | Path) -> Path:
        """Write the merged model as a transformers folder: config.json, safetensors weights,
        and the source folder's tokenizer files where it has them."""
        folder = Path(folder)
        with _quiet_transformers():
            self.base_model().save_pretrained(folder, state_dict=self.merged_state_dict())
        if self.source is not None:
            for path in sorted(self.source.iterdir()):
                if path.is_file() and _is_tokenizer_file(path.name):
                    shutil.copy2(path, folder / path.name)
        return folder


def _is_tokenizer_file(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in TOKENIZER_PATTERNS)


def _block_size(hf_config: Any, source: Path | None) -> int:
    """How many positions the model takes, from its config (GPT-2 n_positions, Llama max_...)."""
    for key in POSITION_KEYS:
        value = getattr(hf_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise LadderError(
        f"{source or 'the model'}: config.json names no context length (none of "
        f"{', '.join(POSITION_KEYS)}); ladder needs it as the block size"
    )


def _folder_problem(folder: Path, weights: tuple[str, ...]) -> str | None:
    """What makes `folder` unusable as a saved causal LM, or None."""
    if not folder.exists():
        return f"{folder} does not exist; give the folder of a causal LM written by save_pretrained"
    if not folder.is_dir():
        return f"{folder} is not a folder; give the folder of a causal LM, not a file in it"
    if not (folder / "config.json").is_file():
        return (
            f"{folder} has no config.json; give a folder written by save_pretrained "
            "(config.json, weights, tokenizer)"
        )
    if not any((folder / name).is_file() for name in weights):
        return (
            f"{folder} has no weights: none of {', '.join(weights)}; save the model there "
            "with save_pretrained"
        )
    return None


def folder_problem(path: str) -> str | None:
    """What makes the folder at `path` unusable as a causal LM to fine-tune (no folder, no
    config.json, no weights), or None."""
    return _folder_problem(Path(path).expanduser(), WEIGHT_FILES)


def _causal_problem(hf_config: Any) -> str | None:
    """Why `hf_config` is not a decoder-only causal LM, or None when it is one."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    kind = f"a {hf_config.model_type} model ({type(hf_config).__name__})"
    if hf_config.is_encoder_decoder:
        return f"{kind}: an encoder-decoder, not a causal LM"
    if hf_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"{kind}: not a causal LM (AutoModelForCausalLM cannot load it)"
    # BERT-like encoders also have an LM-head class, usable only with is_decoder set; configs
    # of real decoders (GPT-2, Llama ...) have no such flag
    if getattr(hf_config, "is_decoder", True) is False:
        return f"{kind}: an encoder (bidirectional attention), not a causal LM"
    return None


def _load_model(folder: Path, fail: Fail, safe_only: bool = False) -> nn.Module:
    """The transformers causal LM saved in `folder`; every problem raised as `fail(problem)`.

    `safe_only`: read safetensors weights only, never a pickled pytorch_model.bin.
    """
    problem = _folder_problem(folder, SAFE_WEIGHT_FILES if safe_only else WEIGHT_FILES)
    if problem:
        raise fail(problem)
    from transformers import AutoConfig, AutoModelForCausalLM

    hint = "give a decoder-only model such as GPT-2, Llama or Qwen"
    with _quiet_transformers():
        try:
            hf_config = AutoConfig.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise fail(
                f"{folder}/config.json is not a transformers config: {first_line(exc)}"
            ) from exc
        problem = _causal_problem(hf_config)
        if problem:
            raise fail(f"{folder}/config.json describes {problem}; {hint}")
        try:
            return AutoModelForCausalLM.from_pretrained(
                folder,
                config=hf_config,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=True if safe_only else None,  # None: safetensors if there
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise fail(
                f"cannot load the weights in {folder}: {first_line(exc)}; save the model "
                "there again with save_pretrained"
            ) from exc


def _linear_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's linear layers (what LoRA adapts) by the last part of their name, in order."""
    from transformers.pytorch_utils import Conv1D

    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | Conv1D):  # GPT-2 writes its linears as Conv1D
            found.setdefault(name.rsplit(".", 1)[-1], module)
    return found


def _attention_projections(model: nn.Module) -> list[str]:
    """LoRA's usual targets, read from the module tree: the attention layers' query and value
    projections (Llama: q_proj, v_proj) or, where they are fused, the one qkv layer (GPT-2:
    c_attn); never the output projection."""
    linears = set(_linear_layers(model).values())
    inputs: list[str] = []
    for module in model.modules():
        kind = type(module).__name__.lower()
        if "attention" not in kind and not kind.endswith("attn"):
            continue
        for name, child in module.named_children():
            if child in linears and name.lower() not in OUTPUT_PROJECTIONS and name not in inputs:
                inputs.append(name)
    role = {name: name.lower().split("_")[0] for name in inputs}  # q_proj -> q, query -> query
    query = next((n for n in inputs if role[n] in QUERY), None)
    value = next((n for n in inputs if role[n] in VALUE), None)
    return [query, value] if query and value else inputs


def _add_lora(model: nn.Module, lora: LoraConfig, path: str) -> nn.Module:
    """`model` wrapped by peft with LoRA adapters on the target layers; the rest frozen."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from transformers.pytorch_utils import Conv1D

    linears = _linear_layers(model)
    where = f"{path} ({model.config.model_type})"
    targets = lora.target_modules or _attention_projections(model)
    if not targets:
        raise ConfigError(
            [
                f"lora.target_modules: cannot find the attention projections of {where}; "
                f"set it to some of its linear layers: {', '.join(linears)}"
            ]
        )
    missing = [name for name in targets if name not in linears]
    if missing:
        raise ConfigError(
            [
                f"lora.target_modules: {', '.join(missing)}: no linear layer of that name in "
                f"{where}; its linear layers are: {', '.join(linears)}"
            ]
        )
    peft_config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(targets),
        # Conv1D stores its weight transposed (in, out); peft must know to match it
        fan_in_fan_out=any(isinstance(linears[name], Conv1D) for name in targets),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # targets mixing Linear and Conv1D: peft fixes fan_in_fan_out per layer and says so
        warnings.filterwarnings("ignore", message="fan_in_fan_out is set to")
        # peft reads transformers' old name for it (deprecated in transformers 5.x)
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
        return get_peft_model(model, peft_config)


def _enable_checkpointing(model: nn.Module, path: str) -> None:
    """Gradient checkpointing, non-reentrant (works with frozen inputs, as under LoRA)."""
    if not model.supports_gradient_checkpointing:
        raise ConfigError(
            [
                f"gradient_checkpointing: {path} ({model.config.model_type}) does not support "
                "it; set gradient_checkpointing: false"
            ]
        )
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x names it so
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _checkpointing(model: nn.Module) -> bool:
    """Whether gradient checkpointing is on (transformers >= 5.x: "activation checkpointing")."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(model.is_gradient_checkpointing if flag is None else flag)


def load_causal_lm(config: CausalLMConfig) -> CausalLM:
    """The causal LM at `config.path`, ready to fine-tune as `config` says."""
    folder = Path(config.path).expanduser()

    def fail(problem: str) -> ConfigError:
        return ConfigError([f"path: {problem}"])

    model = _load_model(folder, fail)
    if config.gradient_checkpointing:
        _enable_checkpointing(model, config.path)
    if config.lora is not None:
        model = _add_lora(model, config.lora, config.path)
    return CausalLM(model, source=folder.resolve())


def load_saved(folder: str | Path) -> CausalLM:
    """The model `CausalLM.save` wrote to `folder` (safetensors only: no pickle is read)."""
    folder = Path(folder)
    model = _load_model(folder, ArtifactError, safe_only=True)
    return CausalLM(model, source=folder.resolve())
