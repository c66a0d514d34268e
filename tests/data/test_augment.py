"""augment_batch: flips, crops and rotations, deterministic given the generator."""

from __future__ import annotations

import math

import pytest
import torch

from ladder.config import AugmentConfig
from ladder.data import augment_batch
from ladder.data.augment import _rotate


def batch(n: int = 8, c: int = 2, h: int = 6, w: int = 5) -> torch.Tensor:
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w) + 1


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_disabled_returns_the_input():
    x = batch()
    assert augment_batch(x, AugmentConfig(), gen()) is x


def test_hflip_flips_some_images_whole():
    x = batch(n=16)
    out = augment_batch(x, AugmentConfig(hflip=True), gen())
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image moved by (dy, dx) pixels with zeros filling the gap."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_crop_is_a_shift_within_the_padding():
    x = batch(n=12)
    out = augment_batch(x, AugmentConfig(crop_padding=2), gen())
    assert out.shape == x.shape
    offsets = set()
    for o, i in zip(out, x, strict=True):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(o, shift(i, dy, dx))
        ]
        assert found, "every crop is the image shifted by at most the padding"
        offsets.add(found[0])
    assert len(offsets) > 1


def test_same_generator_state_same_output():
    x = batch()
    cfg = AugmentConfig(crop_padding=1, hflip=True, rotation=15)
    a, b = augment_batch(x, cfg, gen(3)), augment_batch(x, cfg, gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment_batch(x, cfg, gen(4)))


def test_rotation_keeps_shape_and_the_centre():
    x = torch.ones(4, 1, 9, 7)
    out = augment_batch(x, AugmentConfig(rotation=30), gen())
    assert out.shape == x.shape
    torch.testing.assert_close(out[:, :, 4, 3], torch.ones(4, 1))
    assert (out < 0.999).any()  # corners rotated in from outside are zero-filled


@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (1, 2, 4, 6)])
def test_rotate_by_exact_angles(shape):
    x = torch.rand(shape, generator=gen())
    torch.testing.assert_close(_rotate(x, torch.tensor([math.pi])), x.flip(-1).flip(-2))
    if shape[-1] == shape[-2]:
        quarter = _rotate(x, torch.tensor([math.pi / 2]))
        torch.testing.assert_close(quarter, torch.rot90(x, k=1, dims=(-2, -1)))
