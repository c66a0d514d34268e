"""Tiny files for the data tests: PNG images, IDX files, tables, DataConfigs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ladder.config import DataConfig

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def cfg(source: str, **kwargs: Any) -> DataConfig:
    """A data section for `source` with the given options."""
    return DataConfig(source=source, **kwargs)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Save uint8 pixels (H, W) as grayscale or (H, W, 3) as RGB."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def write_image_folder(
    root: Path, per_class: int = 3, size: tuple[int, int] = (6, 5), rgb: bool = False
) -> Path:
    """root/<a|b>/<i>.png: class a dark, class b bright; size is (height, width)."""
    rng = np.random.default_rng(0)
    for name, base in (("a", 30), ("b", 220)):
        for i in range(per_class):
            shape = (*size, 3) if rgb else size
            pixels = np.clip(base + rng.integers(-20, 20, shape), 0, 255)
            write_png(root / name / f"{i}.png", pixels)
    return root


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write an MNIST-format IDX file (big-endian header and data)."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path
