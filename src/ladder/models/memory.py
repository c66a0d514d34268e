"""A translation memory: the traditional rung of sequence-to-sequence.

Fit stores the training pairs; a new source gets the target of the most similar training
source, similarity being the cosine of TF-IDF vectors (character n-grams inside word
boundaries by default, or word n-grams). Ties go to the earliest training pair. It learns no
weights, so it is the bar a neural model has to clear: what it scores is what plain look-up of
the training data gives.

Persistence: `memory.json` holds the config and the training pairs, nothing else (no pickle);
`load` refits the vectorizer on them, which is deterministic, so a loaded memory predicts
exactly what the saved one did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ladder.errors import ArtifactError
from ladder.io import atomic_write_text

FORMAT = "ladder.translation_memory"
FORMAT_VERSION = 1
JSON_FILE = "memory.json"
MAX_SIMILARITY_CELLS = 4_000_000  # query x training similarities computed at a time


class MemoryConfig(BaseModel):
    """How sources are compared: TF-IDF over `analyzer` n-grams of `ngram_min`..`ngram_max`."""

    model_config = ConfigDict(extra="forbid")

    analyzer: Literal["word", "char_wb"] = Field(
        "char_wb", description="char_wb: character n-grams inside words; word: word n-grams"
    )
    ngram_min: int = Field(1, ge=1, description="the shortest n-gram")
    ngram_max: int = Field(3, ge=1, description="the longest n-gram")
    lowercase: bool = Field(True, description="compare sources in lower case")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> MemoryConfig:
        if self.ngram_min > self.ngram_max:
            raise ValueError(
                f"ngram_min must be <= ngram_max, got {self.ngram_min} > {self.ngram_max}"
            )
        return self


class TranslationMemory:
    """Predicts the target of the training source nearest to each new source.

    Attributes (after fit): sources_ and targets_ (the training pairs), vectorizer_ (the
    fitted scikit-learn TfidfVectorizer) and matrix_ (the training sources' l2-normalised
    TF-IDF rows, sparse (n_pairs, n_features)).
    """

    def __init__(self, config: MemoryConfig | None = None) -> None:
        self.config = config

    def fit(self, sources: list[str], targets: list[str]) -> TranslationMemory:
        """Remember the pairs and vectorise their sources; returns self."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(sources) != len(targets) or not sources:
            raise ValueError(
                "expected one target per source and at least one pair, got "
                f"{len(sources)} sources and {len(targets)} targets"
            )
        config = self.config or MemoryConfig()
        vectorizer = TfidfVectorizer(
            analyzer=config.analyzer,
            ngram_range=(config.ngram_min, config.ngram_max),
            lowercase=config.lowercase,
        )
        try:
            matrix = vectorizer.fit_transform([str(s) for s in sources])
        except ValueError as exc:  # "empty vocabulary": no source has an n-gram
            raise ValueError(f"no training source has a {config.analyzer} n-gram ({exc})") from exc
        self.sources_, self.targets_ = [str(s) for s in sources], [str(t) for t in targets]
        self.vectorizer_, self.matrix_ = vectorizer, matrix.tocsr()
        return self

    def nearest(self, sources: list[str]) -> np.ndarray:
        """The index of the most similar training pair for each source (n,) int64: the highest
        TF-IDF cosine, the earliest pair on a tie (a source with no known n-gram gets pair 0)."""
        self._check_fitted()
        if not sources:
            return np.zeros(0, dtype=np.int64)
        queries = self.vectorizer_.transform([str(s) for s in sources])  # l2-normalised rows
        training = self.matrix_.T.tocsc()
        chunk = max(1, MAX_SIMILARITY_CELLS // self.matrix_.shape[0])
        best = [
            np.argmax((queries[start : start + chunk] @ training).toarray(), axis=1)
            for start in range(0, len(sources), chunk)
        ]  # np.argmax returns the first of equal maxima
        return np.concatenate(best).astype(np.int64)

    def predict(self, sources: list[str]) -> list[str]:
        """The target of the most similar training source, for each source."""
        return [self.targets_[i] for i in self.nearest(sources)]

    def n_params(self) -> int:
        """The numbers prediction uses: the non-zero TF-IDF weights of the training sources
        and the idf of every feature."""
        self._check_fitted()
        return int(self.matrix_.nnz + len(self.vectorizer_.idf_))

    def _check_fitted(self) -> None:
        if not hasattr(self, "matrix_"):
            raise RuntimeError(
                "this TranslationMemory is not fitted yet: call fit(sources, targets)"
            )

    # ------------------------------------------------------------------------- persistence

    def save(self, folder: str | Path) -> list[str]:
        """Write the config and the training pairs as JSON into `folder`, atomically; returns
        the file names."""
        self._check_fitted()
        body = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": (self.config or MemoryConfig()).model_dump(),
            "sources": self.sources_,
            "targets": self.targets_,
        }
        atomic_write_text(Path(folder) / JSON_FILE, json.dumps(body, ensure_ascii=False) + "\n")
        return [JSON_FILE]

    @classmethod
    def load(cls, folder: str | Path) -> TranslationMemory:
        """Load what `save` wrote and refit on it; ArtifactError for a missing or damaged file."""
        path = Path(folder) / JSON_FILE
        body = _read_body(path)
        try:
            config = MemoryConfig.model_validate(body.get("config"))
        except ValidationError as exc:
            raise ArtifactError(f"{path}: invalid config ({exc.error_count()} problems)") from exc
        sources, targets = body.get("sources"), body.get("targets")
        if not _strings(sources) or not _strings(targets) or len(sources) != len(targets):
            raise ArtifactError(
                f"{path}: sources and targets must be two non-empty lists of strings of one length"
            )
        try:
            return cls(config).fit(sources, targets)
        except ValueError as exc:
            raise ArtifactError(f"{path}: cannot refit the memory ({exc})") from exc


def _read_body(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable translation memory ({exc})") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a {FORMAT} file")
    if body.get("version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: version {body.get('version')!r} is not {FORMAT_VERSION}")
    return body


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
