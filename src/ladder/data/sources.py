"""`load_dataset`: builtin data sets, table files, image folders and IDX files as a `Dataset`."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import DataConfig
from ladder.data.corpus import BUILTIN_CORPORA, read_corpus
from ladder.data.dataset import Dataset
from ladder.data.images import (
    IMAGE_SUFFIXES,
    decode_image,
    list_images,
    pixels_to_unit,
    read_idx,
    resize_images,
    to_channels,
)
from ladder.data.labels import encode_target
from ladder.data.pairs import BUILTIN_PAIRS, DEFAULT_NUMBERS
from ladder.data.preprocess import is_categorical
from ladder.data.tables import SUPPORTED, file_where, read_table, table_format
from ladder.data.target import encode_any_target
from ladder.data.text_sources import (
    is_text_folder,
    load_hf,
    load_text_files,
    load_text_folder,
    text_from_frame,
)
from ladder.data.values import check_finite, non_finite
from ladder.errors import DataError

log = logging.getLogger(__name__)

BUILTIN_NAMES = ("digits", "breast_cancer", "wine", "iris")
SOURCES = (
    "builtin:NAME, idx:IMAGES,LABELS, hf:NAME, an image or text folder, or a table file "
    f"({SUPPORTED})"
)


def load_dataset(cfg: DataConfig, source: str | None = None) -> Dataset:
    """Load `source` (default `cfg.source`) as a Dataset, applying the data section's options."""
    source = source or cfg.source
    if source.startswith("builtin:"):
        return _load_builtin(source.removeprefix("builtin:"), cfg)
    if source.startswith("idx:"):
        return _load_idx(source.removeprefix("idx:"), cfg)
    if source.startswith("hf:"):
        return load_hf(source.removeprefix("hf:"), cfg)
    path = Path(source).expanduser()
    if path.is_dir():
        if cfg.text_files is not None:
            return load_text_files(path, cfg)
        if is_text_folder(path):
            return load_text_folder(path, cfg)
        return _load_image_folder(path, cfg)
    if not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if cfg.text_files is not None:
        raise DataError(f"{source}: data.text_files needs data.source to be their folder")
    if (cfg.format or table_format(path)) is None:
        raise DataError(
            f"{source}: unsupported file type '{''.join(path.suffixes)}' ({SOURCES}); "
            "set data.format for a file without a known suffix"
        )
    return _load_table(path, cfg)


def list_builtin_datasets() -> list[dict[str, Any]]:
    """Name, kind, rows and number of classes of every builtin data set and text corpus
    (for `ladder list`)."""
    cfg = DataConfig(source="builtin:iris")
    rows = []
    for name in BUILTIN_NAMES:
        ds = _load_builtin(name, cfg)
        rows.append({"name": name, "kind": ds.kind, "rows": len(ds), "classes": len(ds.labels)})
    for name in BUILTIN_CORPORA:  # text for data.task: generation, one row per document
        documents = read_corpus(f"builtin:{name}")
        rows.append({"name": name, "kind": "corpus", "rows": len(documents), "classes": 0})
    for name in BUILTIN_PAIRS:  # source -> target pairs for data.task: seq2seq
        rows.append({"name": name, "kind": "pairs", "rows": DEFAULT_NUMBERS, "classes": 0})
    return rows


# ----------------------------------------------------------------------------- builtin


def _load_builtin(name: str, cfg: DataConfig) -> Dataset:
    from sklearn import datasets

    loaders: dict[str, Callable[..., Any]] = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
    }
    if name not in loaders:
        hint = difflib.get_close_matches(name, BUILTIN_NAMES, n=1)
        did_you_mean = f"; did you mean 'builtin:{hint[0]}'?" if hint else ""
        valid = ", ".join(f"builtin:{n}" for n in BUILTIN_NAMES)
        raise DataError(f"builtin:{name}: unknown builtin data set{did_you_mean} (valid: {valid})")
    if name == "digits":
        bunch = loaders[name]()
        X = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 8, 8) -> (N, 1, 8, 8)
        X = _shape_images(X, cfg)
        return Dataset("image", X, bunch.target.astype(np.int64), list(range(10)))
    bunch = loaders[name](as_frame=True)
    names = [str(n) for n in bunch.target_names]
    labels = sorted(names)
    order = np.array([labels.index(n) for n in names], dtype=np.int64)
    X = _drop_columns(bunch.data, cfg, f"builtin:{name}")
    return Dataset(
        "tabular",
        X,
        order[bunch.target.to_numpy()],
        labels,
        target=cfg.target,
        source_columns=[str(c) for c in bunch.data.columns],
    )


# ----------------------------------------------------------------------------- tables


def _load_table(path: Path, cfg: DataConfig) -> Dataset:
    df = read_table(path, columns=cfg.columns, na_values=cfg.na_values, fmt=cfg.format)
    if len(df) == 0:
        raise DataError(f"{path}: no rows (the file has only a header)")
    if cfg.text is not None:
        return text_from_frame(df, cfg, str(path))
    if cfg.image is not None:
        return _images_from_table(df, path, cfg)
    if cfg.target not in df.columns:
        hint = difflib.get_close_matches(cfg.target, [str(c) for c in df.columns], n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        raise DataError(
            f"{path}: no target column '{cfg.target}'{did_you_mean} (columns: "
            f"{', '.join(map(str, df.columns))}); set data.target"
        )
    if cfg.target in cfg.drop:
        raise DataError(f"data.drop: cannot drop the target column '{cfg.target}'")
    source_columns = [str(c) for c in df.columns]
    df = _drop_columns(df, cfg, str(path))
    df, dropped = _without_non_finite(df, path, cfg)
    keep, y, labels, task, why = encode_any_target(
        df[cfg.target], str(path), cfg.target, cfg.task, cfg.drop_missing_target
    )
    X = df.drop(columns=[cfg.target])[keep].reset_index(drop=True)
    if X.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the target '{cfg.target}'")
    return Dataset(
        "tabular",
        X,
        y,
        labels,
        target=cfg.target,
        source_columns=source_columns,
        dropped_non_finite=dropped,
        task=task,
        task_reason=why,
    )


def _without_non_finite(df: pd.DataFrame, path: Path, cfg: DataConfig) -> tuple[pd.DataFrame, int]:
    """`df` without its rows that hold a non-finite number in a numeric feature, and how many
    (`data.non_finite: drop`); DataError naming the first such value (`error`). NaN is a missing
    value, not a non-finite one."""
    numbers = {
        col: df[col].to_numpy(dtype=np.float64, na_value=np.nan)
        for col in df.columns
        if col != cfg.target and not is_categorical(df[col])
    }
    masks = {col: non_finite(values) for col, values in numbers.items()}
    bad = np.zeros(len(df), dtype=bool)
    for mask in masks.values():
        bad |= mask
    if not bad.any():
        return df, 0
    if cfg.non_finite == "error":
        row = int(np.flatnonzero(bad)[0])
        col = next(c for c, mask in masks.items() if mask[row])  # the first row's first column
        try:
            check_finite(numbers[col], str(col), file_where(path, cfg.columns is None, cfg.format))
        except DataError as exc:
            raise DataError(f"{exc}; set data.non_finite: drop to drop such rows") from None
    count = int(np.sum(bad))
    log.warning("%s: dropped %d rows with a non-finite number (data.non_finite: drop)", path, count)
    return df[~bad].reset_index(drop=True), count


def _drop_columns(df: pd.DataFrame, cfg: DataConfig, where: str) -> pd.DataFrame:
    unknown = [c for c in cfg.drop if c not in df.columns]
    if unknown:
        raise DataError(
            f"{where}: data.drop names columns that do not exist: {', '.join(unknown)} "
            f"(columns: {', '.join(map(str, df.columns))})"
        )
    return df.drop(columns=list(cfg.drop)).reset_index(drop=True)


# ----------------------------------------------------------------------------- images


def _load_image_folder(root: Path, cfg: DataConfig) -> Dataset:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(
            f"{root}: no class folders; expected {root}/<class>/<image> "
            f"({', '.join(IMAGE_SUFFIXES)})"
        )
    images, y, paths = [], [], []
    for label, folder in enumerate(classes):
        files = list_images(folder)
        if not files:
            raise DataError(
                f"{folder}: class folder has no images ({', '.join(IMAGE_SUFFIXES)}); "
                "add images or remove the folder"
            )
        for path in files:
            images.append(decode_image(path))
            y.append(label)
            paths.append(path)
    channels = cfg.channels or (1 if all(img.shape[0] == 1 for img in images) else 3)
    if cfg.image_size is not None:
        size = cfg.image_size
        images = [resize_images(img[None], size, size)[0] for img in images]
    else:
        first = images[0].shape[1:]
        for img, path in zip(images, paths, strict=True):
            if img.shape[1:] != first:
                raise DataError(
                    f"{root}: images have different sizes ({paths[0]} is {first[1]}x{first[0]}, "
                    f"{path} is {img.shape[2]}x{img.shape[1]}); set data.image_size to resize "
                    "them all"
                )
    X = _stack_channels(images, channels)
    labels = [d.name for d in classes]
    return Dataset("image", X, np.asarray(y, dtype=np.int64), labels)


def _images_from_table(df: pd.DataFrame, path: Path, cfg: DataConfig) -> Dataset:
    """A table whose `data.image` column holds image file paths (relative to the table's
    folder) and whose target is a class or a number, as image data."""
    assert cfg.image is not None
    for name, key in ((cfg.image, "data.image"), (cfg.target, "data.target")):
        if name not in df.columns:
            raise DataError(
                f"{path}: no column '{name}' (columns: {', '.join(map(str, df.columns))}); "
                f"set {key}"
            )
    keep, y, labels, task, why = encode_any_target(
        df[cfg.target], str(path), cfg.target, cfg.task, cfg.drop_missing_target
    )
    images, files = [], []
    for row, value in zip(np.flatnonzero(keep), df[cfg.image].to_numpy()[keep], strict=True):
        file = path.parent / str(value)
        if pd.isna(value) or not file.is_file():
            raise DataError(
                f"{path}: data row {row + 1}, column '{cfg.image}': no image file {value!r} "
                f"(paths are relative to {path.parent})"
            )
        images.append(decode_image(file))
        files.append(file)
    if cfg.image_size is not None:
        images = [resize_images(img[None], cfg.image_size, cfg.image_size)[0] for img in images]
    sizes = {img.shape[1:] for img in images}
    if len(sizes) > 1:
        raise DataError(
            f"{path}: images have different sizes ({len(sizes)} of them); set data.image_size "
            "to resize them all"
        )
    channels = cfg.channels or (1 if all(img.shape[0] == 1 for img in images) else 3)
    X = _stack_channels(images, channels)
    return Dataset("image", X, y, labels, target=cfg.target, task=task, task_reason=why)


def _stack_channels(images: list[np.ndarray], channels: int) -> np.ndarray:
    """Same-sized (C, H, W) images with mixed channel counts stacked as (N, channels, H, W)."""
    return np.stack([to_channels(img[None], channels)[0] for img in images]).astype(np.float32)


def _load_idx(spec: str, cfg: DataConfig) -> Dataset:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise DataError(f"idx:{spec}: expected idx:IMAGES_FILE,LABELS_FILE")
    images_path, labels_path = Path(parts[0]).expanduser(), Path(parts[1]).expanduser()
    images, targets = read_idx(images_path), read_idx(labels_path)
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif images.ndim == 4 and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    else:
        raise DataError(f"{images_path}: expected images of shape (N, H, W), got {images.shape}")
    if targets.ndim != 1:
        raise DataError(f"{labels_path}: expected one label per image, got shape {targets.shape}")
    if len(images) != len(targets):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(targets)} labels"
        )
    if len(images) == 0:
        raise DataError(f"{images_path}: no images")
    X = _shape_images(pixels_to_unit(images), cfg)
    _, y, labels = encode_target(pd.Series(targets), str(labels_path), "labels")
    return Dataset("image", X, y, labels)


def _shape_images(X: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Apply data.channels and data.image_size to an (N, C, H, W) array."""
    if cfg.channels is not None:
        X = to_channels(X, cfg.channels)
    if cfg.image_size is not None:
        X = resize_images(X, cfg.image_size, cfg.image_size)
    return X.astype(np.float32, copy=False)
