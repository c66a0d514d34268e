"""Fine-tuning a pretrained Hugging Face encoder (BERT-like) with a fresh classification head.

The model comes from a local folder or a hub id (`ladder.hub.resolve_pretrained`); the text must
be encoded with that model's own tokenizer, right-padded with its pad token id. Deployable
artifacts hold the module's state_dict plus `pretrained_config.json` (the transformers config),
so loading one rebuilds the architecture without the original folder or the network.

`transformers` is imported inside functions: importing ladder must stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field
from torch import nn  # noqa: TID253

from ladder.errors import ArtifactError, ConfigError, LadderError
from ladder.hub import resolve_pretrained
from ladder.models.sequence import masked_mean, padding_mask, text_shape
from ladder.models.spec import ModelSpec

# The usual fine-tuning recipe; it replaces the top-level train: values of these keys (tuned
# for models trained from scratch) unless the model entry sets them itself.
FINE_TUNING: dict[str, Any] = {
    "epochs": 3,
    "optimizer": {"name": "adamw", "lr": 5.0e-5, "weight_decay": 0.01},
    "scheduler": {"name": "linear", "warmup_fraction": 0.1},
    "init": "default",  # never re-initialise pretrained weights
}
CONFIG_FILE = "pretrained_config.json"  # the transformers config, saved beside the weights

Freeze = Literal["none", "embeddings", "encoder"]
Pooling = Literal["head", "mean"]


class PretrainedConfig(BaseModel):
    """Which pretrained encoder to fine-tune, and how."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="a local model folder or a Hugging Face hub id")
    freeze: Freeze = Field(
        "none", description="embeddings: keep the embeddings fixed; encoder: train the head only"
    )
    layer_decay: float | None = Field(
        None, gt=0, le=1, description="layer-wise lr decay: layer i of N trains at lr * d**(N-i)"
    )
    pooling: Pooling = Field(
        "head",
        description="head: the model's own classification head (BERT: [CLS] through its "
        "pooler); mean: the mean of the last hidden states into the head's final Linear "
        "(suits encoders pretrained with mean pooling, such as sentence-transformers)",
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load report ("newly initialized weights") and progress bars."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class PretrainedClassifier(nn.Module):
    """A transformers `AutoModelForSequenceClassification` taking right-padded token ids."""

    def __init__(self, model: nn.Module, config: PretrainedConfig) -> None:
        super().__init__()
        self.model = model
        self.layer_decay = config.layer_decay
        pad_id = model.config.pad_token_id
        if pad_id is None:
            raise LadderError(
                f"{config.path}: the model's config.json has no pad_token_id; ladder pads token "
                "ids with it (use a BERT-like encoder)"
            )
        self.pad_id = int(pad_id)
        self._layers_prefix = _find_layers(model)
        self.pooling = config.pooling
        if self.pooling == "mean" and not isinstance(getattr(model, "classifier", None), nn.Linear):
            raise LadderError(
                f"{config.path}: pooling: mean needs a model whose classification head is one "
                f"Linear layer (BERT-like); this is a {type(model).__name__}; use pooling: head"
            )
        if self.pooling == "mean":  # the pooler is bypassed: no gradients, nothing to train
            pooler = getattr(model.base_model, "pooler", None)
            for param in pooler.parameters() if isinstance(pooler, nn.Module) else ():
                param.requires_grad_(False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(ids, self.pad_id)  # (batch, seq): padding takes no attention
        if self.pooling == "head":
            return self.model(input_ids=ids, attention_mask=mask.long()).logits
        hidden = self.model.base_model(input_ids=ids, attention_mask=mask.long())[0]
        pooled = masked_mean(hidden, mask)  # (batch, seq, hidden) -> (batch, hidden)
        dropout = getattr(self.model, "dropout", None)
        if isinstance(dropout, nn.Module):
            pooled = dropout(pooled)
        return self.model.classifier(pooled)  # (batch, n_classes)

    def depth(self, name: str) -> int:
        """Where a parameter of the base model sits: 0 embeddings, 1..N layers, N+1 head.

        `name` is relative to the base model (`encoder.layer.3.output.dense.weight`). Parameters
        of the base outside the layers and the pooler (relative-position tables, a final norm)
        count as embeddings: they feed every layer.
        """
        n_layers = self.model.config.num_hidden_layers
        if name.startswith("pooler."):
            return n_layers + 1
        if self._layers_prefix and name.startswith(self._layers_prefix):
            return int(name[len(self._layers_prefix) :].split(".")[0]) + 1
        return 0

    def named_depths(self) -> Iterator[tuple[str, nn.Parameter, int]]:
        """Every parameter with its depth; the head (outside the base model) is at N+1."""
        base = self.model.base_model
        in_base = set()
        for name, param in base.named_parameters():
            in_base.add(id(param))
            yield name, param, self.depth(name)
        top = self.model.config.num_hidden_layers + 1
        for name, param in self.model.named_parameters():
            if id(param) not in in_base:
                yield name, param, top

    def freeze(self, what: Freeze) -> None:
        """Stop gradients to the embeddings, or to the whole base model except its pooler."""
        top = self.model.config.num_hidden_layers + 1
        lowest_trained = {"none": 0, "embeddings": 1, "encoder": top}[what]
        for _, param, depth in self.named_depths():
            if depth < lowest_trained:
                param.requires_grad_(False)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups: layer-wise lr (with `layer_decay`) and no decay on
        biases and LayerNorm weights. The head's groups come first, so group 0 has `lr`."""
        n_layers = self.model.config.num_hidden_layers
        decay = self.layer_decay or 1.0
        groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
        for _, param, depth in self.named_depths():
            if param.requires_grad:
                # biases and norm weights are the 1-d parameters: decaying them only hurts
                groups.setdefault((depth, param.ndim >= 2), []).append(param)
        return [
            {
                "params": params,
                "lr": lr * decay ** (n_layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            }
            for (depth, decays), params in sorted(groups.items(), key=lambda g: -g[0][0])
        ]

    def extra_files(self) -> dict[str, str]:
        """Files a deployable artifact needs beside the weights: the transformers config."""
        settings = json.loads(self.model.config.to_json_string(use_diff=False))
        settings["num_labels"] = self.model.config.num_labels  # v5 keeps only id2label
        settings.pop("_name_or_path", None)  # where it was loaded from: not the artifact's business
        return {CONFIG_FILE: json.dumps(settings, indent=2, sort_keys=True)}


def _find_layers(model: nn.Module) -> str:
    """The name prefix of the base model's stack of layers (`encoder.layer.`), or "" if none."""
    n_layers = model.config.num_hidden_layers
    for name, module in model.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return f"{name}."
    return ""


def _position_limit(model: nn.Module) -> int:
    """How many tokens the model's position table can take."""
    limit = model.config.max_position_embeddings
    embeddings = getattr(model.base_model, "embeddings", None)
    offset = getattr(embeddings, "padding_idx", None)
    # RoBERTa-style models number positions from pad_token_id + 1: their table is that much
    # bigger than the longest input
    return limit - (offset + 1) if isinstance(offset, int) else limit


def build_pretrained(
    config: PretrainedConfig, input_shape: tuple[int, ...], n_classes: int
) -> PretrainedClassifier:
    """The pretrained encoder at `config.path` with a new head of `n_classes` logits.

    `input_shape` is (max_length, vocab_size) of the tokenizer the text was encoded with.
    """
    max_length, vocab_size = text_shape(input_shape, "pretrained")
    folder = resolve_pretrained(config.path)

    from transformers import AutoConfig, AutoModelForSequenceClassification

    with _quiet_transformers():
        try:
            hf_config = AutoConfig.from_pretrained(
                folder, num_labels=n_classes, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise LadderError(f"{folder}: config.json is not a transformers config: {exc}") from exc
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, config=hf_config, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise LadderError(f"{folder}: cannot load the model's weights: {exc}") from exc

    limit = _position_limit(model)
    if max_length > limit:
        raise ConfigError(
            [
                f"text.max_length: {max_length} is more than the {limit} tokens "
                f"{config.path} can take (its max_position_embeddings); set it to {limit} or less"
            ]
        )
    rows = model.get_input_embeddings().num_embeddings
    if vocab_size > rows:
        raise LadderError(
            f"the text was encoded with a tokenizer of {vocab_size} tokens but {config.path} "
            f"has {rows} token embeddings: the tokenizer does not match the model; encode the "
            "text with the model's own tokenizer (text.tokenizer: pretrained)"
        )
    module = PretrainedClassifier(model, config)
    module.freeze(config.freeze)
    return module


def load_pretrained_module(
    config: PretrainedConfig, folder: Path, n_classes: int
) -> PretrainedClassifier:
    """The architecture saved in an artifact `folder`, randomly initialised (no network, no
    download); load the artifact's state_dict into it next."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: {CONFIG_FILE} is missing; the artifact is incomplete")
    with _quiet_transformers():
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
            hf_config = AutoConfig.for_model(settings.pop("model_type"), **settings)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"{path}: not a transformers config ({exc!r})") from exc
        hf_config.num_labels = n_classes
        model = AutoModelForSequenceClassification.from_config(hf_config, trust_remote_code=False)
    module = PretrainedClassifier(model, config)
    module.freeze(config.freeze)
    return module


SPEC = ModelSpec(
    type="pretrained",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=PretrainedConfig,
    build=build_pretrained,
    summary="fine-tunes a pretrained Hugging Face encoder (BERT-like; local folder or hub id)",
    inputs=("text",),
    load_module=load_pretrained_module,
    train_defaults=FINE_TUNING,
    own_tokenizer=True,
)
