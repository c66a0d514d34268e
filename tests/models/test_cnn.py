"""The CNN: LeNet-5 geometry at several sizes, the simple CNN, and errors that teach."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from ladder.errors import LadderError
from ladder.models.cnn import SPEC, CNNConfig, build_cnn

LENET = CNNConfig(arch="lenet5")


def first_linear(model: nn.Module) -> nn.Linear:
    return next(m for m in model.modules() if isinstance(m, nn.Linear))


def test_spec_needs_images():
    assert (SPEC.type, SPEC.family, SPEC.inputs, SPEC.config_cls) == (
        "cnn",
        "neural",
        ("image",),
        CNNConfig,
    )


def test_lenet5_on_32x32_has_the_classic_geometry():
    model = build_cnn(LENET, (1, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5))]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(400, 120), (120, 84), (84, 10)]
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


@pytest.mark.parametrize(("channels", "size", "flat"), [(1, 28, 256), (3, 16, 16), (3, 40, 784)])
def test_lenet5_other_sizes(channels, size, flat):
    model = build_cnn(LENET, (channels, size, size), 4)
    assert first_linear(model).in_features == flat
    assert model(torch.randn(2, channels, size, size)).shape == (2, 4)


def test_lenet5_non_square():
    model = build_cnn(LENET, (1, 32, 20), 3)
    assert model(torch.randn(2, 1, 32, 20)).shape == (2, 3)


def test_lenet5_too_small_says_the_minimum_image_size():
    with pytest.raises(
        LadderError, match=r"at least 16x16, got 8x8; set image_size \(minimum 16\)"
    ):
        build_cnn(LENET, (1, 8, 8), 10)


def test_too_small_image_size_in_config():
    with pytest.raises(ValidationError, match="lenet5 needs at least 16"):
        CNNConfig(arch="lenet5", image_size=8)
    assert CNNConfig(arch="lenet5", image_size=32).image_size == 32


@pytest.mark.parametrize("arch", ["lenet5", "simple"])
def test_tabular_input_is_refused(arch):
    message = "cnn needs image data (channels, height, width); got tabular input with 64 features"
    with pytest.raises(LadderError) as info:
        build_cnn(CNNConfig(arch=arch), (64,), 10)
    assert str(info.value) == message


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("batchnorm", [True, False])
def test_simple_cnn(pooling, batchnorm):
    config = CNNConfig(channels=[4, 8, 8], kernel_size=5, batchnorm=batchnorm, pooling=pooling)
    model = build_cnn(config, (3, 12, 10), 5)
    assert model(torch.randn(2, 3, 12, 10)).shape == (2, 5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batchnorm
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 8]


def test_simple_cnn_minimum_size():
    config = CNNConfig(channels=[4, 4, 4])  # two 2x2 pools between three blocks
    assert build_cnn(config, (1, 4, 4), 2)(torch.randn(2, 1, 4, 4)).shape == (2, 2)
    with pytest.raises(LadderError, match="at least 4x4"):
        build_cnn(config, (1, 3, 3), 2)


def test_dropout_is_used_in_both_archs():
    for arch in ("lenet5", "simple"):
        model = build_cnn(CNNConfig(arch=arch, dropout=0.3), (1, 16, 16), 2)
        assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in model.modules())


@pytest.mark.parametrize(
    "params", [{"kernel_size": 4}, {"channels": []}, {"arch": "resnet"}, {"pooling": "sum"}]
)
def test_invalid_configs(params):
    with pytest.raises(ValidationError):
        CNNConfig(**params)


def test_lenet_widths_rebuild_a_narrower_lenet5_and_stay_out_of_default_dumps():
    assert "lenet_widths" not in LENET.model_dump(mode="json")  # manifests and hashes unchanged
    config = CNNConfig(arch="lenet5", lenet_widths=[3, 8, 60, 42])
    assert CNNConfig.model_validate(config.model_dump(mode="json")) == config
    model = build_cnn(config, (1, 32, 32), 10)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert convs == [3, 8]
    assert [(m.in_features, m.out_features) for m in linears] == [(200, 60), (60, 42), (42, 10)]
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_lenet_widths_are_four_and_for_lenet5_only():
    with pytest.raises(ValidationError, match="at least 4 items"):
        CNNConfig(arch="lenet5", lenet_widths=[6, 16, 120])
    with pytest.raises(ValidationError, match="lenet_widths applies to arch lenet5"):
        CNNConfig(arch="simple", lenet_widths=[6, 16, 120, 84])
