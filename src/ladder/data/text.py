"""Text preprocessors: raw strings for the TF-IDF models, token ids for the neural ones.

Both take a 1-D array (or list) of texts; a missing value is the empty string. The token-id
preprocessor keeps its fitted tokenizer as a `tokenizer.json` file beside preprocess.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.data.tokenize import (
    encode,
    load_pretrained_tokenizer,
    pad_id_of,
    tokenizer_from_json,
    train_tokenizer,
)
from ladder.data.values import Where, data_row
from ladder.errors import ArtifactError, DataError

TOKENIZER_FILE = "tokenizer.json"


def as_texts(X: Any, column: str | None = None) -> np.ndarray:
    """Texts as a 1-D object array of str: missing values become "" (kept as empty input).

    Args:
        X: a 1-D array or list of texts, or a DataFrame holding the text `column`.
        column: the text column, for DataFrame input.
    """
    if isinstance(X, pd.DataFrame):
        if column is None or column not in X.columns:
            raise DataError(
                f"input has no text column '{column}' (columns: {', '.join(map(str, X.columns))})"
            )
        X = X[column]
    values = np.asarray(X, dtype=object)
    if values.ndim != 1:
        raise DataError(f"text input must be one text per row, got shape {values.shape}")
    missing = pd.isna(values)
    return np.array(
        ["" if m else str(v) for v, m in zip(values, missing, strict=True)], dtype=object
    )


class RawTextPreprocessor:
    """Passes texts through unchanged (TF-IDF models learn their own vocabulary)."""

    def __init__(self, column: str, target: str | None, source_columns: list[str] | None) -> None:
        self.column, self.target = column, target
        self.source_columns = list(source_columns) if source_columns is not None else None

    @property
    def output_shape(self) -> tuple[int, ...]:
        """() : one string per row."""
        return ()

    def transform(self, X: Any) -> np.ndarray:
        """Texts -> 1-D object array of str."""
        return as_texts(X, self.column)

    def check_input(self, X: Any, where: Where = data_row) -> Any:
        """Texts unchanged: a missing text is an empty one (`as_texts`)."""
        return X

    def input_spec(self) -> dict[str, Any]:
        """What raw input is expected: kind text, the text column, target and source columns."""
        return {
            "kind": "text",
            "column": self.column,
            "target": self.target,
            "source_columns": self.source_columns,
        }

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON."""
        return {**self.input_spec(), "encoding": "raw"}

    def extra_files(self) -> dict[str, str]:
        """No files besides preprocess.json."""
        return {}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RawTextPreprocessor:
        """Rebuild from `to_json()`."""
        return cls(d["column"], d.get("target"), d.get("source_columns"))


class TokenPreprocessor(RawTextPreprocessor):
    """Texts -> int64 token ids (N, L), right-padded with `pad_id`, at most `max_length`."""

    def __init__(
        self,
        tokenizer: Any,
        tokenizer_kind: str,
        max_length: int,
        column: str,
        target: str | None = None,
        source_columns: list[str] | None = None,
    ) -> None:
        super().__init__(column, target, source_columns)
        self.tokenizer, self.tokenizer_kind = tokenizer, tokenizer_kind
        self.max_length = max_length
        self.pad_id = pad_id_of(tokenizer)
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    @classmethod
    def fit(
        cls,
        texts: np.ndarray,
        cfg: Any,
        column: str,
        target: str | None = None,
        source_columns: list[str] | None = None,
        pretrained_folder: Path | None = None,
    ) -> TokenPreprocessor:
        """Train the tokenizer `cfg` (a TextConfig) names on `texts` (the training split's),
        or take the pretrained model's tokenizer from `pretrained_folder`."""
        if cfg.tokenizer == "pretrained":
            if pretrained_folder is None:
                raise ValueError("a pretrained tokenizer needs the model folder")
            tokenizer = load_pretrained_tokenizer(pretrained_folder)
        else:
            tokenizer = train_tokenizer(
                as_texts(texts), cfg.tokenizer, cfg.vocab_size, cfg.lowercase, cfg.min_frequency
            )
        return cls(tokenizer, cfg.tokenizer, cfg.max_length, column, target, source_columns)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(max_length, vocab_size): the one-hot view of a token sequence."""
        return (self.max_length, self.vocab_size)

    def transform(self, X: Any) -> np.ndarray:
        """Texts -> int64 token ids (N, L), L the longest encoded text (<= max_length)."""
        return encode(self.tokenizer, as_texts(X, self.column), self.max_length, self.pad_id)

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON (the tokenizer itself is `extra_files()`'s tokenizer.json)."""
        return {
            **self.input_spec(),
            "encoding": "tokens",
            "tokenizer": self.tokenizer_kind,
            "tokenizer_file": TOKENIZER_FILE,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "vocab_size": self.vocab_size,
        }

    def extra_files(self) -> dict[str, str]:
        """{"tokenizer.json": the fitted tokenizer}."""
        return {TOKENIZER_FILE: self.tokenizer.to_str()}

    @classmethod
    def from_json(cls, d: dict[str, Any], folder: Path | None = None) -> TokenPreprocessor:
        """Rebuild from `to_json()` and the tokenizer.json in `folder`."""
        if folder is None:
            raise ArtifactError("preprocess.json: a token preprocessor needs its tokenizer.json")
        file = folder / d["tokenizer_file"]
        try:
            tokenizer = tokenizer_from_json(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ArtifactError(f"{file}: cannot read the tokenizer ({exc})") from exc
        except Exception as exc:  # the Rust parser raises a generic Exception
            raise ArtifactError(f"{file}: not a valid tokenizer file ({exc})") from exc
        out = cls(
            tokenizer,
            d["tokenizer"],
            int(d["max_length"]),
            d["column"],
            d.get("target"),
            d.get("source_columns"),
        )
        if out.pad_id != d["pad_id"] or out.vocab_size != d["vocab_size"]:
            raise ArtifactError(f"{file}: does not match preprocess.json (pad id or vocabulary)")
        return out
