"""Image helpers shared by loading, preprocessing and prediction: decode, channels, resize, IDX."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from ladder.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_GRAY_MODES = {"1", "L", "LA", "I", "F"}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, hidden entries skipped), sorted by path."""
    found = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def decode_image(path: Path) -> np.ndarray:
    """One image file as float32 (C, H, W) in [0, 1]: C is 1 for grayscale files, else 3."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode.startswith("I;16"):
                gray = np.asarray(img, dtype=np.float32) / 65535.0
                return gray[None]
            if img.mode in _GRAY_MODES:
                return (np.asarray(img.convert("L"), dtype=np.float32) / 255.0)[None]
            rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from exc
    if (
        img.mode == "P"
        and np.array_equal(rgb[..., 0], rgb[..., 1])
        and np.array_equal(rgb[..., 1], rgb[..., 2])
    ):
        return rgb[None, :, :, 0]  # a palette image whose palette is gray
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))  # (H, W, 3) -> (3, H, W)


def to_channels(X: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) converted to 1 (luminance, ITU-R 601-2 like Pillow) or 3 (repeated) channels."""
    if X.shape[1] == channels:
        return X
    if channels == 3 and X.shape[1] == 1:
        return np.repeat(X, 3, axis=1)
    if channels == 1 and X.shape[1] == 3:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.einsum("nchw,c->nhw", X, weights).astype(np.float32)[:, None]
    raise DataError(f"cannot convert images with {X.shape[1]} channels to {channels} channels")


def resize_images(X: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, C, h, w) float images resized to (N, C, height, width) with Pillow's bilinear filter."""
    if X.shape[2:] == (height, width):
        return X.astype(np.float32, copy=False)
    rows = _resize_matrix(X.shape[2], height)  # (height, h)
    columns = _resize_matrix(X.shape[3], width)  # (width, w)
    return (rows @ np.asarray(X, dtype=np.float32) @ columns.T).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=64)
def _resize_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) matrix of Pillow's bilinear resize of one axis.

    Pillow resamples a float image axis by axis with a linear filter, so resizing is two
    matrix products whose columns are Pillow's own answers for unit impulses: the same
    numbers as resizing each image with Pillow, in one batched product instead of a loop."""
    from PIL import Image

    columns = []
    for i in range(source):
        impulse = np.zeros((source, 1), dtype=np.float32)  # one column: only this axis resamples
        impulse[i, 0] = 1.0
        resized = Image.fromarray(impulse).resize((1, target), Image.Resampling.BILINEAR)
        columns.append(np.asarray(resized, dtype=np.float32)[:, 0])
    return np.stack(columns, axis=1)


def read_idx(path: Path) -> np.ndarray:
    """An MNIST-format IDX file (gzipped or not) as a numpy array of its stored shape and type."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has "
            f"{len(raw) - header} bytes of data"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def pixels_to_unit(X: np.ndarray) -> np.ndarray:
    """Integer pixels (0..255) or float pixels (already 0..1) as float32 in [0, 1]."""
    if np.issubdtype(X.dtype, np.integer) or X.dtype == np.bool_:
        scale = 1.0 if X.dtype == np.bool_ else 255.0
        return (X.astype(np.float32) / scale).clip(0.0, 1.0)
    return X.astype(np.float32, copy=False)
