"""The MLP: config validation, shapes, and that any input shape is flattened."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from ladder.models.mlp import SPEC, MLPConfig, build_mlp


def test_defaults_and_spec():
    assert MLPConfig().hidden == [128]
    assert (SPEC.type, SPEC.family, SPEC.config_cls, SPEC.inputs) == (
        "mlp",
        "neural",
        MLPConfig,
        ("tabular", "image"),
    )
    assert SPEC.build is build_mlp


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid"])
def test_tabular_logits_shape(activation):
    model = build_mlp(MLPConfig(hidden=[8, 4], activation=activation), (5,), 3)
    assert model(torch.randn(7, 5)).shape == (7, 3)


def test_images_are_flattened():
    model = build_mlp(MLPConfig(hidden=[16]), (1, 8, 8), 10)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 64
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_no_hidden_layer_is_a_linear_model():
    model = build_mlp(MLPConfig(hidden=[]), (4,), 2)
    assert [type(m) for m in model.modules() if not isinstance(m, nn.Sequential)][1:] == [nn.Linear]


def test_batchnorm_and_dropout_layers():
    model = build_mlp(MLPConfig(hidden=[8], batchnorm=True, dropout=0.5), (4,), 2)
    kinds = {type(m) for m in model.modules()}
    assert {nn.BatchNorm1d, nn.Dropout} <= kinds
    model.eval()  # dropout off, batchnorm uses running stats: deterministic
    x = torch.randn(3, 4)
    assert torch.equal(model(x), model(x))


def test_outputs_are_logits_not_probabilities():
    torch.manual_seed(0)
    out = build_mlp(MLPConfig(hidden=[8]), (4,), 3)(torch.randn(20, 4) * 10)
    assert not torch.allclose(out.sum(dim=1), torch.ones(20))
    assert (out < 0).any()


@pytest.mark.parametrize(
    "params",
    [{"hidden": [0]}, {"dropout": 1.0}, {"dropout": -0.1}, {"activation": "swish"}, {"units": 3}],
)
def test_invalid_configs(params):
    with pytest.raises(ValidationError):
        MLPConfig(**params)
