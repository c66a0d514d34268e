"""`read_records`: prediction input (files, folders, records, arrays) as the raw X a fitted
preprocessor expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.data.images import decode_image, list_images, pixels_to_unit, resize_images, to_channels
from ladder.data.tables import file_where, read_table, table_format
from ladder.data.text import as_texts
from ladder.data.values import Where, data_row
from ladder.errors import DataError


def read_records(
    inp: Any, input_spec: dict[str, Any]
) -> tuple[pd.DataFrame | np.ndarray, list[str] | None]:
    """Prediction input as (raw X, identifiers).

    Args:
        inp: tabular: a path to a CSV/TSV/JSONL/Parquet file, a DataFrame, a dict (one record, or
            column -> values) or a list of dicts. Image: a folder (searched recursively, sorted;
            class subfolders allowed), an image path, a list of image paths, or an array
            (N, C, H, W), (N, H, W) or (H, W) (integers 0..255 or floats in [0, 1]). Text: a
            list, 1-D array or Series of strings; a string that is not a file path is one
            text; a .txt file (one text per line), a table file, DataFrame, dict or list of
            dicts with the text column; a folder of .txt files (one per file, recursive).
        input_spec: the fitted preprocessor's `input_spec()` (from the artifact).

    Returns:
        tabular: (DataFrame, None). image: (float32 (N, C, H, W) in [0, 1] at the artifact's
        channels and raw size, the image file paths, or None for arrays). text: (1-D object
        array of str, the .txt file paths of a folder, else None).
    """
    kind = input_spec.get("kind")
    if kind == "tabular":
        return _read_tabular(inp, input_spec), None
    if kind == "image":
        return _read_images(inp, input_spec)
    if kind == "text":
        return _read_texts(inp, input_spec)
    raise DataError(f"input spec has unknown kind {kind!r} (expected tabular, image or text)")


def _read_tabular(inp: Any, spec: dict[str, Any]) -> pd.DataFrame:
    if isinstance(inp, pd.DataFrame):
        return inp.reset_index(drop=True)
    if isinstance(inp, str | Path):
        return _read_table_file(Path(inp), spec)
    if isinstance(inp, Mapping):
        if inp and all(isinstance(v, list | tuple | np.ndarray) for v in inp.values()):
            try:
                return pd.DataFrame({str(k): list(v) for k, v in inp.items()})
            except ValueError as exc:
                raise DataError(f"input columns have different lengths ({exc})") from exc
        return pd.DataFrame([dict(inp)])
    if isinstance(inp, Sequence):
        if not inp:
            raise DataError("input has no records")
        for i, record in enumerate(inp):
            if not isinstance(record, Mapping):
                raise DataError(
                    f"record {i}: expected a mapping of column -> value, got {record!r}"
                )
        return pd.DataFrame([dict(r) for r in inp])
    raise DataError(f"cannot read tabular input of type {type(inp).__name__}")


def records_where(inp: Any, input_spec: dict[str, Any]) -> Where:
    """How messages about tabular prediction input `inp` name a value: the file's line for a
    table file (`path: column 'age', line 7`), else its row (`column 'age', row 6`)."""
    if input_spec.get("kind") != "tabular" or not isinstance(inp, str | Path):
        return data_row
    path = Path(inp)

    def where(column: str, row: int) -> str:  # called for an error only: it reads the file
        if table_format(path) is None or not path.is_file():
            return data_row(column, row)
        header = _headerless_names(read_table(path), input_spec) is None
        return file_where(path, header)(column, row)

    return where


def _read_table_file(path: Path, spec: dict[str, Any]) -> pd.DataFrame:
    df = read_table(path)
    names = _headerless_names(df, spec)
    if names is not None:
        return read_table(path, columns=names)
    if len(df) == 0:
        raise DataError(f"{path}: no rows")
    return df


def _headerless_names(df: pd.DataFrame, spec: dict[str, Any]) -> list[str] | None:
    """The column names of a file read as `df` (first line as header) when it has no header: no
    expected name in its first line, and as many fields as the features or as all the columns
    of the training file (then its columns are known); None when it has a header."""
    features, source = list(spec.get("columns") or []), list(spec.get("source_columns") or [])
    header = {str(c) for c in df.columns}
    if features and not header & set(features):
        for names in (source, features):
            if names and df.shape[1] == len(names):
                return names
    return None


def _read_images(inp: Any, spec: dict[str, Any]) -> tuple[np.ndarray, list[str] | None]:
    channels, height, width = int(spec["channels"]), int(spec["height"]), int(spec["width"])
    if isinstance(inp, np.ndarray):
        return _from_array(inp, channels, height, width), None
    if isinstance(inp, str | Path):
        path = Path(inp)
        if path.is_dir():
            paths = list_images(path)
            if not paths:
                raise DataError(f"{path}: no images (.png, .jpg, .jpeg, .bmp) in this folder")
        elif path.is_file():
            paths = [path]
        else:
            raise DataError(f"{path}: no such file or folder")
    elif isinstance(inp, Sequence) and inp and all(isinstance(p, str | Path) for p in inp):
        paths = [Path(p) for p in inp]
    else:
        raise DataError(
            f"cannot read image input of type {type(inp).__name__} (give a folder, image paths "
            "or an array)"
        )
    images = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        image = to_channels(decode_image(path)[None], channels)
        images.append(resize_images(image, height, width)[0])
    return np.stack(images).astype(np.float32), [str(p) for p in paths]


def _from_array(X: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    if X.ndim == 2:
        X = X[None, None]  # (H, W) -> (1, 1, H, W)
    elif X.ndim == 3:
        X = X[:, None]  # (N, H, W) -> (N, 1, H, W)
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise DataError(f"expected an image array (N, C, H, W), (N, H, W) or (H, W), got {X.shape}")
    X = to_channels(pixels_to_unit(X), channels)
    return resize_images(X, height, width)


def _read_texts(inp: Any, spec: dict[str, Any]) -> tuple[np.ndarray, list[str] | None]:
    column = spec.get("column") or "text"
    if isinstance(inp, np.ndarray | pd.Series):  # as_texts rejects a 2-D array
        return as_texts(inp), None
    is_list = isinstance(inp, Sequence) and not isinstance(inp, str) and bool(inp)
    if is_list and all(isinstance(t, str) or _is_scalar(t) for t in inp):
        return as_texts(list(inp)), None  # None and NaN are empty texts, as in an array
    if isinstance(inp, str) and not _looks_like_file(inp):
        return as_texts([inp]), None  # one text
    if isinstance(inp, str | Path):
        path = Path(inp)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                raise DataError(f"{path}: no .txt files in this folder")
            texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
            return as_texts(texts), [str(f) for f in files]
        if path.suffix.lower() == ".txt":
            if not path.is_file():
                raise DataError(f"{path}: file not found")
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
            if lines and not lines[-1].strip():
                lines.pop()
            return as_texts([line.rstrip("\r") for line in lines]), None
    frame = _read_tabular(inp, {"columns": [column], **spec})
    return as_texts(frame, column), None


def _is_scalar(value: Any) -> bool:
    """None, NaN, a number: a missing or non-string text (not a record nor a nested list)."""
    return not isinstance(value, Mapping | Sequence | np.ndarray | Path)


def _looks_like_file(text: str) -> bool:
    """A string that names an existing path or a text/table file (else it is a text)."""
    if "\n" in text or len(text) > 4096:
        return False
    path = Path(text)
    try:
        exists = path.exists()
    except OSError:  # e.g. a sentence longer than a file name may be (255 bytes): a text
        return False
    return exists or path.suffix.lower() == ".txt" or table_format(path) is not None
