"""Image resizing: the batched matrix form gives Pillow's own bilinear answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ladder.data.images import resize_images


def pillow_resize(X: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.empty((*X.shape[:2], height, width), dtype=np.float32)
    for n in range(X.shape[0]):
        for c in range(X.shape[1]):
            plane = Image.fromarray(np.ascontiguousarray(X[n, c], dtype=np.float32))
            out[n, c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out


@pytest.mark.parametrize(
    ("shape", "size"),
    [((4, 1, 8, 8), (32, 32)), ((3, 3, 37, 23), (16, 40)), ((2, 3, 100, 80), (28, 28))],
)
def test_resize_matches_pillow_image_by_image(shape, size):
    X = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    got = resize_images(X, *size)
    assert got.shape == (*shape[:2], *size) and got.dtype == np.float32
    np.testing.assert_allclose(got, pillow_resize(X, *size), atol=1e-6)


def test_same_size_is_returned_as_float32():
    X = np.ones((2, 1, 5, 5), dtype=np.float64)
    got = resize_images(X, 5, 5)
    assert got.dtype == np.float32 and got.shape == X.shape
