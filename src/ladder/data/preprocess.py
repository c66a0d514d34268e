"""Preprocessors fitted on the training split only; their state is plain JSON (preprocess.json).

Tabular: numeric columns are imputed with the median and standardized; categorical columns
(text, bool, category) are imputed with the most frequent value and one-hot encoded, unknown
categories becoming all zeros. Prediction input goes through `check_input` first: a missing value
is taken (and imputed) only in a column that had missing values in the training split.
Image: resize, then per-channel standardization. Text: see `ladder.data.text` (raw strings, or
token ids with a tokenizer.json).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.data.dataset import Dataset
from ladder.data.images import resize_images
from ladder.data.text import RawTextPreprocessor, TokenPreprocessor
from ladder.data.values import Where, check_finite, data_row
from ladder.errors import ArtifactError, DataError

_CHUNK = 1024  # images per chunk when computing statistics (bounds memory)


class Preprocessor(Protocol):
    """What training, export and serving need from a fitted preprocessor."""

    @property
    def output_shape(self) -> tuple[int, ...]: ...

    def transform(self, X: Any) -> np.ndarray: ...

    def check_input(self, X: Any, where: Where = data_row) -> Any: ...

    def to_json(self) -> dict[str, Any]: ...

    def input_spec(self) -> dict[str, Any]: ...

    def extra_files(self) -> dict[str, str]: ...


def fit_preprocessor(
    train: Dataset,
    image_size: int | None = None,
    text: Any = None,
    pretrained_folder: Path | None = None,
) -> Preprocessor:
    """Fit the preprocessor for `train`'s kind on the training split.

    Args:
        image_size: images only: the side they are resized to.
        text: text only: the TextConfig of a neural model (token ids); None keeps raw strings
            (TF-IDF models).
        pretrained_folder: the pretrained model whose tokenizer `text.tokenizer: pretrained`
            uses.
    """
    if train.kind == "image":
        return ImagePreprocessor.fit(np.asarray(train.X), image_size)
    if train.kind == "text":
        column = train.text_column or "text"
        if text is None:
            return RawTextPreprocessor(column, train.target, train.source_columns)
        return TokenPreprocessor.fit(
            np.asarray(train.X), text, column, train.target, train.source_columns, pretrained_folder
        )
    assert isinstance(train.X, pd.DataFrame)
    return TabularPreprocessor.fit(
        train.X, target=train.target, source_columns=train.source_columns
    )


def preprocessor_from_json(d: dict[str, Any], folder: Path | None = None) -> Preprocessor:
    """Rebuild a fitted preprocessor from its `to_json()` dict (and files in `folder`, the
    artifact: a tokenizer.json)."""
    kind = d.get("kind") if isinstance(d, dict) else None
    try:
        if kind == "tabular":
            return TabularPreprocessor.from_json(d)
        if kind == "image":
            return ImagePreprocessor.from_json(d)
        if kind == "text" and d.get("encoding") == "raw":
            return RawTextPreprocessor.from_json(d)
        if kind == "text" and d.get("encoding") == "tokens":
            return TokenPreprocessor.from_json(d, folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"preprocess.json: malformed {kind} preprocessor ({exc!r})") from exc
    raise ArtifactError(f"preprocess.json: unknown preprocessor kind {kind!r}")


# ----------------------------------------------------------------------------- tabular


def is_categorical(s: pd.Series) -> bool:
    """True for columns one-hot encoded (text, bool, category, object); False for numbers."""
    return pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s)


class TabularPreprocessor:
    """Median-impute + standardize numeric columns; mode-impute + one-hot categorical ones."""

    def __init__(
        self,
        columns: list[str],
        dtypes: dict[str, str],
        numeric: dict[str, dict[str, float]],
        categorical: dict[str, dict[str, Any]],
        target: str | None = None,
        source_columns: list[str] | None = None,
        nullable: dict[str, bool] | None = None,
    ) -> None:
        self.columns = columns
        self.dtypes = dtypes
        self.numeric = numeric  # column -> {median, mean, std}
        self.categorical = categorical  # column -> {most_frequent, categories}
        self.target = target
        self.source_columns = list(source_columns) if source_columns is not None else None
        # column -> whether the training split had missing values there (None: an artifact
        # written before the flag existed; no column may then be missing)
        self.nullable = nullable

    @property
    def ignored_columns(self) -> list[str]:
        """Input columns dropped silently: the target and the source's non-feature columns."""
        others = [c for c in self.source_columns or [] if c not in self.columns]
        return [c for c in [self.target, *others] if c is not None]

    @classmethod
    def fit(
        cls, X: pd.DataFrame, target: str | None = None, source_columns: list[str] | None = None
    ) -> TabularPreprocessor:
        """Learn medians, means, stds, category lists and which columns may be missing from the
        training features `X`.

        Args:
            X: the training split's raw feature columns.
            target: the label column's name, dropped silently from inputs.
            source_columns: all columns of the source file in order (see `Dataset`).
        """
        numeric: dict[str, dict[str, float]] = {}
        categorical: dict[str, dict[str, Any]] = {}
        nullable: dict[str, bool] = {}
        for col in X.columns:
            s = X[col]
            if is_categorical(s):
                text = _as_text(s)
                present = pd.Series(text[~pd.isna(text)], dtype=object)
                counts = present.value_counts()
                top = sorted(counts.index[counts == counts.max()]) if len(counts) else [""]
                categories = sorted(set(present.tolist()) | {top[0]})
                categorical[str(col)] = {"most_frequent": top[0], "categories": categories}
                nullable[str(col)] = len(present) < len(text)
            else:
                values = pd.to_numeric(s).to_numpy(dtype=np.float64, na_value=np.nan)
                observed = values[~np.isnan(values)]
                median = float(np.median(observed)) if len(observed) else 0.0
                filled = np.where(np.isnan(values), median, values)
                numeric[str(col)] = {"median": median, **_mean_std(filled)}
                nullable[str(col)] = len(observed) < len(values)
        dtypes = {str(c): str(t) for c, t in X.dtypes.items()}
        columns = [str(c) for c in X.columns]
        return cls(columns, dtypes, numeric, categorical, target, source_columns, nullable)

    @property
    def feature_names(self) -> list[str]:
        """Output feature names: numeric columns as is, categorical ones as 'column=value'."""
        names = []
        for col in self.columns:
            if col in self.numeric:
                names.append(col)
            else:
                names.extend(f"{col}={v}" for v in self.categorical[col]["categories"])
        return names

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(number of output features,)."""
        return (len(self.feature_names),)

    def transform(self, X: Any) -> np.ndarray:
        """Raw feature columns (DataFrame, or 2-D array in column order) -> float32 (N, F)."""
        df = self._check_columns(X)
        blocks = []
        for col in self.columns:
            if col in self.numeric:
                stats = self.numeric[col]
                values = _numbers(df[col], col)
                values = np.where(np.isnan(values), stats["median"], values)
                blocks.append(((values - stats["mean"]) / stats["std"])[:, None])
            else:
                blocks.append(self._one_hot(df[col], col))
        if not blocks:
            return np.zeros((len(df), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def check_input(self, X: Any, where: Where = data_row) -> pd.DataFrame:
        """Prediction input as the feature columns in order; DataError naming the column and
        row of the first value the model cannot take.

        A missing value (NaN, None, an absent column) is kept, to be imputed, in a column that
        had missing values in the training split, and refused in any other; numbers must be
        finite and within float32's range (`ladder.data.values`).

        Args:
            X: raw feature columns (DataFrame, or 2-D array in column order).
            where: names a value's column and 0-based row in messages.
        """
        nullable = self.nullable or {}
        if isinstance(X, pd.DataFrame):
            given = {str(c) for c in X.columns}
            absent = [c for c in self.columns if c not in given and nullable.get(c)]
            X = X.assign(**dict.fromkeys(absent, np.nan)) if absent else X
        df = self._check_columns(X)
        for col in self.columns:
            if col in self.numeric:
                values = _numbers(df[col], col)
                check_finite(values, col, where)
                missing = np.isnan(values)
            else:
                missing = pd.isna(df[col].to_numpy(dtype=object))
            if missing.any() and not nullable.get(col):
                place = where(col, int(np.flatnonzero(missing)[0]))
                raise DataError(f"{place}: missing ({self._not_imputed(col)})")
        return df

    def _not_imputed(self, col: str) -> str:
        if self.nullable is None:
            return (
                "this artifact predates per-column missing-value flags; retrain it to impute "
                "the columns that had missing values"
            )
        return (
            f"{col!r} had no missing values in the training data, so the model does not impute it"
        )

    def _one_hot(self, s: pd.Series, col: str) -> np.ndarray:
        state = self.categorical[col]
        text = _as_text(s)
        text[pd.isna(text)] = state["most_frequent"]
        codes = pd.Index(state["categories"]).get_indexer(text)  # -1: unseen category
        out = np.zeros((len(text), len(state["categories"])), dtype=np.float32)
        known = codes >= 0
        out[np.flatnonzero(known), codes[known]] = 1.0
        return out

    def _check_columns(self, X: Any) -> pd.DataFrame:
        if isinstance(X, np.ndarray) and X.ndim == 2:
            if X.shape[1] != len(self.columns):
                raise DataError(
                    f"input array has {X.shape[1]} columns, expected {len(self.columns)} "
                    f"({', '.join(self.columns)})"
                )
            return pd.DataFrame(X, columns=self.columns)
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"tabular input must be a DataFrame, got {type(X).__name__}")
        given = [str(c) for c in X.columns]
        if given == self.columns and X.index.equals(pd.RangeIndex(len(X))):
            return X  # already the feature columns in order (as the server builds them)
        df = X.set_axis(given, axis=1)
        missing = [c for c in self.columns if c not in given]
        extra = [c for c in given if c not in self.columns and c not in self.ignored_columns]
        if missing:
            also = f"; unexpected columns: {', '.join(extra)}" if extra else ""
            raise DataError(f"input is missing columns: {', '.join(missing)}{also}")
        if extra:
            raise DataError(
                f"input has unexpected columns: {', '.join(extra)} "
                f"(expected: {', '.join(self.columns)})"
            )
        return df[self.columns].reset_index(drop=True)

    def input_spec(self) -> dict[str, Any]:
        """What raw input is expected: kind, feature columns and dtypes, which columns may be
        missing (`nullable`), and (optional columns) the target and the source file's columns in
        order (to read a headerless file)."""
        return {
            "kind": "tabular",
            "columns": list(self.columns),
            "dtypes": dict(self.dtypes),
            "nullable": dict(self.nullable) if self.nullable is not None else None,
            "target": self.target,
            "source_columns": self.source_columns,
        }

    def to_json(self) -> dict[str, Any]:
        """The fitted state as plain JSON."""
        return {**self.input_spec(), "numeric": self.numeric, "categorical": self.categorical}

    def extra_files(self) -> dict[str, str]:
        """No files besides preprocess.json."""
        return {}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TabularPreprocessor:
        """Rebuild from `to_json()`."""
        return cls(
            d["columns"],
            d["dtypes"],
            d["numeric"],
            d["categorical"],
            d.get("target"),
            d.get("source_columns"),
            d.get("nullable"),
        )


def _mean_std(values: np.ndarray) -> dict[str, float]:
    """Mean and std (1.0 for a constant column) of `values`, computed on them divided by a power
    of two above their largest magnitude: huge values cannot overflow, normal ones give the
    same bits as without the division."""
    if not len(values):
        return {"mean": 0.0, "std": 1.0}
    _, exponent = math.frexp(float(np.abs(values).max()))
    unit = np.ldexp(values, -exponent)  # exact: only the exponents change
    mean, std = math.ldexp(float(unit.mean()), exponent), math.ldexp(float(unit.std()), exponent)
    return {"mean": mean, "std": std if std > 1e-12 else 1.0}


def _as_text(s: pd.Series) -> np.ndarray:
    """Values as an object array of str, missing values kept as None (categories are text)."""
    values = s.to_numpy(dtype=object)
    missing = pd.isna(values)
    return np.array(
        [None if m else str(v) for v, m in zip(values, missing, strict=True)], dtype=object
    )


def _numbers(s: pd.Series, col: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)  # numbers already
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & ~pd.isna(s.to_numpy(dtype=object))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        more = f" and {int(bad.sum()) - 1} more" if bad.sum() > 1 else ""
        raise DataError(
            f"column '{col}' expects numbers, got {s.iloc[row]!r} (row {row + 1}){more}"
        )
    return values


# ----------------------------------------------------------------------------- images


class ImagePreprocessor:
    """Resize to `image_size` (if set), then subtract the per-channel mean and divide by std."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        image_size: int | None,
        mean: list[float],
        std: list[float],
    ) -> None:
        self.channels, self.height, self.width = channels, height, width
        self.image_size = image_size
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, X: np.ndarray, image_size: int | None = None) -> ImagePreprocessor:
        """Per-channel mean and std of the (resized) training images X (N, C, H, W)."""
        _, channels, height, width = X.shape
        out = cls(channels, height, width, image_size, [0.0] * channels, [1.0] * channels)
        total = np.zeros(channels)
        squares = np.zeros(channels)
        count = 0
        for start in range(0, len(X), _CHUNK):
            chunk = out._resize(X[start : start + _CHUNK]).astype(np.float64)
            total += chunk.sum(axis=(0, 2, 3))
            squares += np.square(chunk).sum(axis=(0, 2, 3))
            count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
        out.mean = [float(m) for m in mean]
        out.std = [float(s) if s > 1e-8 else 1.0 for s in std]
        return out

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(C, H, W) of the model input."""
        size = (self.image_size, self.image_size) if self.image_size else (self.height, self.width)
        return (self.channels, *size)

    def transform(self, X: Any) -> np.ndarray:
        """Raw-size float images (N, C, H, W) in [0, 1] -> standardized float32 (N, C, h, w)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 3 and self.channels == 1:
            X = X[:, None]  # (N, H, W) -> (N, 1, H, W)
        expected = (self.channels, self.height, self.width)
        if X.ndim != 4 or X.shape[1:] != expected:
            raise DataError(
                f"expected images of shape (N, {', '.join(map(str, expected))}), got {X.shape}"
            )
        X = self._resize(X)
        mean = np.asarray(self.mean, dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.std, dtype=np.float32)[None, :, None, None]
        return ((X - mean) / std).astype(np.float32)

    def check_input(self, X: Any, where: Where = data_row) -> Any:
        """Images unchanged: `transform` checks their shape (pixels come from files or arrays)."""
        return X

    def _resize(self, X: np.ndarray) -> np.ndarray:
        if self.image_size is None:
            return X.astype(np.float32, copy=False)
        return resize_images(X, self.image_size, self.image_size)

    def input_spec(self) -> dict[str, Any]:
        """What raw input is expected: kind, channels, raw height and width, image_size."""
        return {
            "kind": "image",
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "image_size": self.image_size,
        }

    def to_json(self) -> dict[str, Any]:
        """The fitted state as plain JSON."""
        return {**self.input_spec(), "mean": self.mean, "std": self.std}

    def extra_files(self) -> dict[str, str]:
        """No files besides preprocess.json."""
        return {}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImagePreprocessor:
        """Rebuild from `to_json()`."""
        return cls(
            int(d["channels"]),
            int(d["height"]),
            int(d["width"]),
            d.get("image_size"),
            [float(m) for m in d["mean"]],
            [float(s) for s in d["std"]],
        )
