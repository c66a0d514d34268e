"""The pretrained type: a real MiniLM-L6 BERT fine-tuned with a new head (loaded once here)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from ladder.errors import ArtifactError, ConfigError, LadderError
from ladder.models.pretrained import (
    CONFIG_FILE,
    SPEC,
    PretrainedClassifier,
    PretrainedConfig,
    build_pretrained,
    load_pretrained_module,
)

MAX_LENGTH, VOCAB = 64, 30522  # MiniLM's tokenizer: 30522 tokens
N_LAYERS = 6

POSITIVE = ["great", "wonderful film", "I loved it", "excellent", "superb acting", "so good",
            "a delight", "brilliant"]  # fmt: skip
NEGATIVE = ["awful", "terrible film", "I hated it", "dreadful", "boring acting", "so bad",
            "a mess", "horrible"]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer(minilm_path: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    tok.no_truncation()
    return tok


def encode(tokenizer, texts: list[str], length: int | None = None) -> torch.Tensor:
    """Token ids (batch, seq) right-padded with [PAD] (id 0) to `length` or the longest text."""
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=length)
    return torch.tensor([e.ids for e in tokenizer.encode_batch(texts)], dtype=torch.int64)


@pytest.fixture(scope="module")
def config(minilm_path: Path) -> PretrainedConfig:
    return PretrainedConfig(path=str(minilm_path))


@pytest.fixture(scope="module")
def built(config: PretrainedConfig) -> PretrainedClassifier:
    """Built once per module; tests that change it work on a deep copy."""
    torch.manual_seed(0)
    return build_pretrained(config, (MAX_LENGTH, VOCAB), 2)


@pytest.fixture
def module(built: PretrainedClassifier) -> PretrainedClassifier:
    return copy.deepcopy(built)


# ----------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    cfg = PretrainedConfig(path="org/name")
    assert (cfg.freeze, cfg.layer_decay) == ("none", None)
    assert PretrainedConfig(path="x", layer_decay=1).layer_decay == 1


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"path": ""},
        {"path": "x", "freeze": "everything"},
        {"path": "x", "layer_decay": 0},
        {"path": "x", "layer_decay": 1.5},
        {"path": "x", "lr": 0.1},
    ],
)
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ValidationError):
        PretrainedConfig(**bad)


def test_spec() -> None:
    assert (SPEC.type, SPEC.family, SPEC.inputs) == ("pretrained", "neural", ("text",))
    assert SPEC.config_cls is PretrainedConfig
    assert SPEC.build is build_pretrained and SPEC.load_module is load_pretrained_module


# ----------------------------------------------------------------------------- forward


def test_logits_shape(module: PretrainedClassifier, tokenizer) -> None:
    ids = encode(tokenizer, ["great", "a rather long and boring film"])
    assert module.pad_id == 0
    logits = module(ids)
    assert logits.shape == (2, 2) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_padding_does_not_change_logits(module: PretrainedClassifier, tokenizer) -> None:
    module.eval()
    texts = ["great", "I hated every minute of it"]
    short = encode(tokenizer, texts)
    long = encode(tokenizer, texts, length=short.shape[1] + 7)
    assert (long[:, short.shape[1] :] == 0).all()
    with torch.no_grad():
        torch.testing.assert_close(module(short), module(long), atol=1e-4, rtol=0)


def test_mean_pooling_averages_the_real_tokens(built: PretrainedClassifier, tokenizer) -> None:
    module = copy.deepcopy(built)
    module.pooling = "mean"
    module.eval()
    texts = ["great", "I hated every minute of it"]
    short = encode(tokenizer, texts)
    long = encode(tokenizer, texts, length=short.shape[1] + 7)
    with torch.no_grad():
        torch.testing.assert_close(module(short), module(long), atol=1e-4, rtol=0)
        hidden = module.model.base_model(input_ids=short[:1, :3])[0]  # "[CLS] great [SEP]"
        expected = module.model.classifier(hidden.mean(dim=1))
        torch.testing.assert_close(module(short[:1]), expected, atol=1e-5, rtol=0)


def test_mean_pooling_bypasses_the_pooler(config: PretrainedConfig) -> None:
    module = build_pretrained(config.model_copy(update={"pooling": "mean"}), (MAX_LENGTH, VOCAB), 2)
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    assert frozen and all(".pooler." in name for name in frozen)


def test_mean_pooling_needs_a_linear_head(built: PretrainedClassifier, config) -> None:
    model = copy.deepcopy(built.model)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(384, 2))
    with pytest.raises(LadderError, match="pooling: mean needs a model whose classification head"):
        PretrainedClassifier(model, config.model_copy(update={"pooling": "mean"}))


# ----------------------------------------------------------------------------- build checks


def test_max_length_beyond_the_position_table(config: PretrainedConfig) -> None:
    with pytest.raises(ConfigError) as info:
        build_pretrained(config, (1000, VOCAB), 2)
    message = str(info.value)
    assert "text.max_length" in message and "1000" in message and "512" in message


def test_tokenizer_bigger_than_the_embeddings(config: PretrainedConfig) -> None:
    with pytest.raises(LadderError, match="tokenizer does not match the model"):
        build_pretrained(config, (MAX_LENGTH, VOCAB + 1), 2)


def test_input_shape_must_be_text(config: PretrainedConfig) -> None:
    with pytest.raises(LadderError, match="needs text data"):
        build_pretrained(config, (3, 32, 32), 2)


def test_folder_without_weights(minilm_path: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        shutil.copy(minilm_path / name, tmp_path / name)
    with pytest.raises(LadderError, match="cannot load the model's weights") as info:
        build_pretrained(PretrainedConfig(path=str(tmp_path)), (MAX_LENGTH, VOCAB), 2)
    assert str(tmp_path) in str(info.value)


def test_folder_with_a_broken_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(LadderError, match="not a transformers config"):
        build_pretrained(PretrainedConfig(path=str(tmp_path)), (MAX_LENGTH, VOCAB), 2)


# ----------------------------------------------------------------------------- freeze


def trainable(module: PretrainedClassifier) -> set[str]:
    return {name for name, p in module.named_parameters() if p.requires_grad}


def test_no_freeze_trains_everything(module: PretrainedClassifier) -> None:
    assert trainable(module) == {name for name, _ in module.named_parameters()}


def test_freeze_embeddings(module: PretrainedClassifier) -> None:
    module.freeze("embeddings")
    frozen = {name for name, _ in module.named_parameters()} - trainable(module)
    assert frozen and all(".embeddings." in name for name in frozen)
    assert "model.bert.embeddings.word_embeddings.weight" in frozen
    assert "model.bert.encoder.layer.0.attention.self.query.weight" in trainable(module)


def test_freeze_encoder_trains_only_head_and_pooler(config: PretrainedConfig) -> None:
    module = build_pretrained(config.model_copy(update={"freeze": "encoder"}), (16, VOCAB), 3)
    assert trainable(module) == {
        "model.bert.pooler.dense.weight",
        "model.bert.pooler.dense.bias",
        "model.classifier.weight",
        "model.classifier.bias",
    }
    groups = module.param_groups(1e-3, 0.01)
    assert sum(len(g["params"]) for g in groups) == 4


# ----------------------------------------------------------------------------- param groups


def test_param_groups_with_layer_decay(module: PretrainedClassifier) -> None:
    module.layer_decay = 0.5
    lr = 1e-3
    groups = module.param_groups(lr, 0.01)
    names = {id(p): name for name, p in module.named_parameters()}
    lr_of = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
    # every trainable parameter exactly once
    assert sorted(lr_of) == sorted(names.values())
    assert sum(len(g["params"]) for g in groups) == len(names)
    assert groups[0]["lr"] == lr  # the head comes first
    assert lr_of["model.classifier.weight"] == lr == lr_of["model.bert.pooler.dense.weight"]
    top, bottom = N_LAYERS - 1, 0
    assert lr_of[f"model.bert.encoder.layer.{top}.output.dense.weight"] == lr * 0.5
    assert lr_of[f"model.bert.encoder.layer.{bottom}.output.dense.weight"] == lr * 0.5**N_LAYERS
    embeddings = lr_of["model.bert.embeddings.word_embeddings.weight"]
    assert embeddings == lr * 0.5 ** (N_LAYERS + 1) == min(lr_of.values())
    # no weight decay on biases and LayerNorm weights, the rest decays
    for group in groups:
        group_names = {names[id(p)] for p in group["params"]}
        no_decay = {n for n in group_names if n.endswith("bias") or "LayerNorm" in n}
        assert group["weight_decay"] == (0.0 if no_decay else 0.01)
        assert not no_decay or no_decay == group_names


def test_param_groups_without_layer_decay(module: PretrainedClassifier) -> None:
    groups = module.param_groups(2e-5, 0.1)
    assert {g["lr"] for g in groups} == {2e-5}
    assert {g["weight_decay"] for g in groups} == {0.0, 0.1}


# ----------------------------------------------------------------------------- training


def test_a_few_steps_reduce_the_loss(module: PretrainedClassifier, tokenizer) -> None:
    torch.manual_seed(0)
    module.freeze("embeddings")  # halves the optimizer's work; the layers still learn
    words = module.model.bert.embeddings.word_embeddings.weight.detach().clone()
    ids = encode(tokenizer, POSITIVE + NEGATIVE)
    labels = torch.tensor([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    optimizer = torch.optim.AdamW(module.param_groups(3e-4, 0.01))

    def loss() -> float:
        module.eval()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(module(ids), labels).item()

    before = loss()
    for _ in range(3):
        module.train()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(ids), labels).backward()
        optimizer.step()
    assert loss() < before - 0.1
    assert torch.equal(module.model.bert.embeddings.word_embeddings.weight, words)


# ----------------------------------------------------------------------------- artifacts


def test_save_and_rebuild_gives_the_same_logits(
    module: PretrainedClassifier, tokenizer, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    with torch.no_grad():  # a changed model: the rebuilt one must not be the original
        for param in module.parameters():
            param.add_(0.01 * torch.randn_like(param))
    save_file(module.state_dict(), tmp_path / "weights.safetensors")
    for name, text in module.extra_files().items():
        (tmp_path / name).write_text(text)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["num_labels"] == 2

    # the original folder is not needed
    gone = PretrainedConfig(path=str(tmp_path / "moved-away"))
    rebuilt = load_pretrained_module(gone, tmp_path, 2)
    rebuilt.load_state_dict(load_file(tmp_path / "weights.safetensors"), strict=True)
    ids = encode(tokenizer, ["great", "awful and long"])
    module.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids), module(ids))


def test_rebuild_without_the_config_file(config: PretrainedConfig, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=CONFIG_FILE):
        load_pretrained_module(config, tmp_path, 2)


@pytest.mark.parametrize("text", ["not json", '{"hidden_size": 8}', '{"model_type": "nope"}'])
def test_rebuild_from_a_broken_config_file(
    config: PretrainedConfig, tmp_path: Path, text: str
) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ArtifactError, match="not a transformers config"):
        load_pretrained_module(config, tmp_path, 2)
