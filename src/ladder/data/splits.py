"""Seeded (stratified) train/val/test splits and the data.json description of them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import SplitConfig
from ladder.data.dataset import Dataset, Splits
from ladder.data.text_sources import count_empty
from ladder.errors import DataError


def split_dataset(ds: Dataset, cfg: SplitConfig, seed: int, test: Dataset | None = None) -> Splits:
    """Split `ds` into train/val/test by the fractions in `cfg`, stratified when `cfg.stratify`.

    Args:
        ds: the whole data set.
        cfg: the `data.split` section (fractions of all rows).
        seed: random seed; the same seed gives the same split.
        test: a separate test set (`data.test_source`); it replaces the test split, and `val`
            (a fraction of `ds`) comes from `ds`.
    """
    present = np.unique(ds.y) if ds.task == "classification" else np.arange(2)
    if len(present) < 2:
        label = ds.labels[int(present[0])] if len(present) else None
        column = f"target column '{ds.target}'" if ds.target else "the labels"
        raise DataError(
            f"{column} has only one class ({label!r}); classification needs at least two"
        )
    rows = np.arange(len(ds))
    if test is not None:
        test = _check_test_set(ds, test)
        rest, test_idx = rows, None
    else:
        rest, test_idx = _split(ds, rows, cfg.test, cfg.stratify, seed, "test")
    if cfg.val > 0:
        val_fraction = cfg.val if test is not None else cfg.val / (1.0 - cfg.test)
        train_idx, val_idx = _split(ds, rest, val_fraction, cfg.stratify, seed, "validation")
    else:
        train_idx, val_idx = rest, None
    return Splits(
        train=ds.subset(train_idx),
        val=ds.subset(val_idx) if val_idx is not None else None,
        test=test if test is not None else ds.subset(test_idx),
    )


def _split(
    ds: Dataset, rows: np.ndarray, fraction: float, stratify: bool, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split `rows` into (kept, taken) with `fraction` of them taken for the split `name`."""
    from sklearn.model_selection import train_test_split

    y = ds.y[rows]
    stratify = stratify and ds.task == "classification"  # a regression target has no classes
    if stratify:
        counts = np.bincount(y, minlength=len(ds.labels))
        for class_id in np.flatnonzero((counts > 0) & (counts < 2)):
            left = "" if name == "test" else " left after taking the test split"
            raise DataError(
                f"class {ds.labels[class_id]!r} has only {counts[class_id]} row{left}; a "
                f"stratified {name} split needs at least 2 rows per class (add rows, or set "
                "data.split.stratify: false)"
            )
    try:
        kept, taken = train_test_split(
            rows, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as exc:
        raise DataError(f"cannot make the {name} split of {len(rows)} rows: {exc}") from exc
    return np.asarray(kept, dtype=np.int64), np.asarray(taken, dtype=np.int64)


def _check_test_set(ds: Dataset, test: Dataset) -> Dataset:
    """The separate test set with its labels mapped to `ds`'s classes; shapes must agree."""
    where = "data.test_source"
    if test.kind != ds.kind:
        raise DataError(f"{where}: is {test.kind} data but data.source is {ds.kind} data")
    if ds.kind == "image" and test.X.shape[1:] != ds.X.shape[1:]:
        raise DataError(
            f"{where}: images are {_shape(test)} but training images are {_shape(ds)} "
            "(channels, height, width); set data.image_size and data.channels"
        )
    return test.with_labels(ds.labels, where)


def _shape(ds: Dataset) -> str:
    return "x".join(str(d) for d in ds.X.shape[1:])


# ----------------------------------------------------------------------------- data.json


def describe_data(splits: Splits, source: str) -> dict[str, Any]:
    """The content of data.json: source, kind, rows and class counts per split, rows of the source
    dropped for a non-finite number, features and a sha256 fingerprint of all rows (the same rows
    and labels give the same fingerprint)."""
    parts = splits.items()
    train = splits.train
    classes = []
    if train.task == "classification":
        counts = {name: np.bincount(ds.y, minlength=len(train.labels)) for name, ds in parts}
        for class_id, label in enumerate(train.labels):
            row: dict[str, Any] = {"label": label}
            row.update({name: int(c[class_id]) for name, c in counts.items()})
            row["total"] = sum(int(c[class_id]) for c in counts.values())
            classes.append(row)
    rows = {name: len(ds) for name, ds in parts}
    extra: dict[str, Any] = {}
    if train.task == "regression":
        extra["task"] = "regression"
        extra["target"] = {name: _summary(ds.y) for name, ds in parts}
    return {
        "source": source,
        "kind": train.kind,
        **extra,
        "rows": {**rows, "total": sum(rows.values())},
        "dropped_non_finite": train.dropped_non_finite,
        "labels": list(train.labels),
        "classes": classes,
        "features": _features(train, [ds for _, ds in parts]),
        "sha256": fingerprint([ds for _, ds in parts]),
    }


def _summary(y: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and range of a split's regression targets."""
    values = np.asarray(y, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _features(ds: Dataset, parts: list[Dataset]) -> dict[str, Any]:
    if ds.kind == "text":  # texts: the column, empty ones (in all splits), lengths (training)
        words = [len(str(t).split()) for t in ds.X]
        return {
            "text_column": ds.text_column,
            "empty_texts": sum(count_empty(part.X) for part in parts),
            "mean_words": round(float(np.mean(words)), 1) if words else 0.0,
            "max_words": int(max(words, default=0)),
        }
    if isinstance(ds.X, pd.DataFrame):
        columns = [{"name": str(c), "dtype": str(t)} for c, t in ds.X.dtypes.items()]
        return {"count": len(columns), "columns": columns}
    channels, height, width = ds.X.shape[1:]
    return {"channels": int(channels), "height": int(height), "width": int(width)}


def fingerprint(datasets: list[Dataset]) -> str:
    """sha256 (hex) of the rows and labels of `datasets`, independent of row order and split."""
    first = datasets[0]
    header = {"kind": first.kind, "labels": [str(lab) for lab in first.labels]}
    if isinstance(first.X, pd.DataFrame):
        header["columns"] = [[str(c), str(t)] for c, t in first.X.dtypes.items()]
    elif first.kind == "text":
        header["text"] = True
    else:
        header["shape"] = list(first.X.shape[1:])
    row_hashes = np.sort(np.concatenate([_row_hashes(ds) for ds in datasets]))
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(row_hashes.tobytes())
    return digest.hexdigest()


def _row_hashes(ds: Dataset) -> np.ndarray:
    """One uint64 per row, covering the row's features and its label value."""
    if ds.task == "regression":  # the target's value stands for the label
        label_text = np.array([repr(float(v)) for v in ds.y], dtype=object)
        ds = replace(ds, y=np.arange(len(ds.y)))
    else:
        label_text = np.array([str(lab) for lab in ds.labels], dtype=object)
    if isinstance(ds.X, pd.DataFrame):
        frame = ds.X.reset_index(drop=True).copy()
        frame["\0label"] = label_text[ds.y] if len(ds.y) else np.array([], dtype=object)
        return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    if ds.kind == "text":
        digests = b"".join(
            hashlib.blake2b(f"{text}\0{label_text[y]}".encode(), digest_size=8).digest()
            for text, y in zip(ds.X, ds.y, strict=True)
        )
        return np.frombuffer(digests, dtype=np.uint64)
    flat = np.ascontiguousarray(ds.X, dtype=np.float32).reshape(len(ds.X), -1)
    digests = b"".join(
        hashlib.blake2b(row.tobytes() + label_text[y].encode(), digest_size=8).digest()
        for row, y in zip(flat, ds.y, strict=True)
    )
    return np.frombuffer(digests, dtype=np.uint64)
