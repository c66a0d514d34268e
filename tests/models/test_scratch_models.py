"""The scratch rungs: the NumPy networks start from their PyTorch twins' weights and, trained by
the same Trainer on the same batches, end one epoch with the same weights (float64); features
NumPy lacks are refused naming the PyTorch rung."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ladder.train.trainer as trainer_module
from ladder.config import TrainConfig
from ladder.errors import LadderError
from ladder.registry import get_spec
from ladder.train.numpy_optim import NumpyOptimizer
from ladder.train.optim import build_optimizer
from ladder.train.trainer import Trainer

ONE_EPOCH = {"epochs": 1, "batch_size": 8, "early_stopping": None}


def build(model_type: str, params: dict, shape: tuple[int, ...], n_out: int, seed: int = 0):
    spec = get_spec(model_type)
    torch.manual_seed(seed)
    return spec.build(spec.config_cls(**params), shape, n_out).double()


def data(kind: str, n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "table":
        return rng.normal(size=(n, 6))
    if kind == "image":
        return rng.normal(size=(n, 1, 16, 16))
    ids = rng.integers(1, 30, size=(n, 9))
    for row, length in zip(ids, rng.integers(1, 10, size=n), strict=True):
        row[length:] = 0  # right padding, rows of 1 to 9 tokens
    return ids


PAIRS = [
    ("mlp", "scratch_mlp", {"hidden": [7, 5], "activation": "tanh"}, "table", (6,)),
    ("cnn", "scratch_cnn", {}, "image", (1, 16, 16)),
    ("rnn", "scratch_lstm", {"embedding_dim": 6, "hidden": 5, "dropout": 0.0}, "text", (9, 30)),
    (
        "rnn",
        "scratch_lstm",
        {
            "cell": "gru",
            "embedding_dim": 4,
            "hidden": 3,
            "layers": 2,
            "pooling": "last",
            "dropout": 0.0,
        },
        "text",
        (9, 30),
    ),
]


@pytest.fixture
def double_inputs(monkeypatch):
    """The Trainer feeds float features as float64 (it feeds float32 to real runs)."""
    original = trainer_module._as_model_input

    def as_double(x):
        x = original(x)
        return x.astype(np.float64) if x.dtype == np.float32 else x

    monkeypatch.setattr(trainer_module, "_as_model_input", as_double)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize(("twin_type", "scratch_type", "params", "kind", "shape"), PAIRS)
def test_one_epoch_gives_the_twins_weights(
    twin_type, scratch_type, params, kind, shape, optimizer, double_inputs
):
    x = data(kind)
    y = np.arange(len(x)) % 3
    twin_params = {"arch": "lenet5"} if twin_type == "cnn" else params
    pytorch = build(twin_type, twin_params, shape, 3)
    scratch = build(scratch_type, params, shape, 3)
    start = {key: value.clone() for key, value in scratch.twin.state_dict().items()}
    for key, value in pytorch.state_dict().items():
        assert torch.equal(start[key], value), key  # the same seed gives the same start
    settings = {"name": optimizer, "lr": 0.05, "momentum": 0.9 if optimizer == "sgd" else 0}
    config = TrainConfig(**ONE_EPOCH, optimizer=settings)
    Trainer(pytorch, config, seed=3).fit(x, y)
    Trainer(scratch, config, seed=3).fit(x, y)
    moved = 0.0
    for key, value in pytorch.state_dict().items():
        got = scratch.twin.state_dict()[key]
        scale = value.abs().max().item()
        assert (got - value).abs().max().item() <= 1e-6 * scale, key
        moved = max(moved, (value - start[key]).abs().max().item())
    assert moved > 1e-3  # the epoch did train


def test_the_scratch_rung_steps_with_the_numpy_optimizer():
    module = build("scratch_mlp", {"hidden": [4]}, (6,), 2)
    config = TrainConfig(optimizer={"name": "rmsprop", "momentum": 0.5})
    optimizer = build_optimizer(module, config.optimizer)
    assert isinstance(optimizer, NumpyOptimizer) and optimizer.rule == "rmsprop"
    plain = build_optimizer(build("mlp", {"hidden": [4]}, (6,), 2), config.optimizer)
    assert isinstance(plain, torch.optim.RMSprop)


def test_predictions_are_numpy_and_the_export_trace_is_the_twin(tmp_path):
    module = build("scratch_cnn", {}, (1, 16, 16), 3).float().eval()
    x = torch.from_numpy(data("image", n=4).astype(np.float32))
    with torch.no_grad():
        numpy_logits = module(x)
        twin_logits = module.twin(x)
    assert torch.allclose(numpy_logits, twin_logits, atol=1e-5)
    traced = torch.jit.trace(module, x, check_trace=False)
    graph = str(traced.inlined_graph)
    assert "PythonOp" not in graph and "aten::_convolution" in graph


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batchnorm": True}, "scratch_mlp has no batchnorm in NumPy; use type mlp"),
        ({"activation": "gelu"}, "scratch_mlp has no GELU in NumPy; use type mlp"),
    ],
)
def test_mlp_options_numpy_lacks_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        get_spec("scratch_mlp").config_cls(**params)


def test_images_too_small_for_lenet_are_one_line():
    with pytest.raises(LadderError, match="needs images of at least 16x16, got 8x8"):
        build("scratch_cnn", {}, (1, 8, 8), 3)
