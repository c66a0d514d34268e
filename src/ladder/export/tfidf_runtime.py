"""A numpy TF-IDF vectoriser for the `tfidf_*` ONNX graphs (needs neither scikit-learn nor torch).

A `tfidf_*` model.onnx holds the linear classifier and its probability link; it takes a TF-IDF
vector as padded sparse rows: `ids` (batch, width) int64 feature columns and `values`
(batch, width) float64 TF-IDF weights, where padding is the column `pad_id` (one past the last
feature, a zero row of the graph's weights) with value 0. This module computes those rows from
raw texts exactly as scikit-learn's `TfidfVectorizer.transform` does for the vectorizers ladder
builds (word n-grams with the default token pattern, `char_wb` n-grams, optional lowercasing
and sublinear tf, l2 norm per vectorizer, vectorizers side by side as in a `FeatureUnion`).

The fitted state lives in the graph's own metadata (`METADATA_KEY`, read through ONNX Runtime),
as JSON: per vectorizer its settings, its terms in column order and its idf as base64 of
little-endian float64, so the one model.onnx file is the whole model and nothing is unpickled.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ladder.errors import ArtifactError

METADATA_KEY = "ladder.tfidf"
FORMAT = 1
INPUTS = ("ids", "values")  # the graph's inputs: padded feature columns, their TF-IDF weights
ANALYZERS = ("word", "char_wb")
# scikit-learn's default token_pattern; fixed here, never read from a file (a crafted regex
# could backtrack for ever)
WORD_PATTERN = re.compile(r"(?u)\b\w\w+\b")
_WHITE_SPACES = re.compile(r"\s\s+")
_CACHE_LIMIT = 200_000  # char_wb: words whose n-gram ids are remembered between texts


# ----------------------------------------------------------------------------- analyzers


def word_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """The word n-grams of a (preprocessed) text, as scikit-learn's "word" analyzer gives them."""
    tokens = WORD_PATTERN.findall(text)
    min_n, max_n = ngram_range
    grams = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n, len(tokens)) + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """The character n-grams inside word boundaries of a (preprocessed) text, as scikit-learn's
    "char_wb" analyzer gives them."""
    grams: list[str] = []
    for word in _words(text):
        grams += _padded_word_ngrams(word, *ngram_range)
    return grams


def _words(text: str) -> list[str]:
    return _WHITE_SPACES.sub(" ", text).split()


def _padded_word_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """The n-grams of " word " for n in [min_n, max_n], where a padded word no longer than n
    counts once, as itself, for the first such n only (scikit-learn's rule)."""
    padded = f" {word} "
    size = len(padded)
    if size <= min_n:
        return [padded]
    grams = [
        padded[i : i + n]
        for n in range(min_n, min(max_n, size - 1) + 1)
        for i in range(size - n + 1)
    ]
    if max_n >= size:
        grams.append(padded)
    return grams


# ----------------------------------------------------------------------------- one vectorizer


@dataclass
class TfidfPart:
    """One fitted TF-IDF vectorizer: its settings, terms in column order and idf weights."""

    analyzer: str
    ngram_range: tuple[int, int]
    lowercase: bool
    sublinear_tf: bool
    terms: list[str]
    idf: np.ndarray  # (len(terms),) float64
    _index: dict[str, int] = field(init=False, repr=False)
    _cache: dict[str, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {term: i for i, term in enumerate(self.terms)}
        self._cache = {}

    @property
    def size(self) -> int:
        """The number of feature columns."""
        return len(self.terms)

    def term_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(column ids of every in-vocabulary n-gram occurrence, texts in order; the number of
        ids of each text)."""
        ids: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            text = text.lower() if self.lowercase else text
            found = self._char_ids(text) if self.analyzer == "char_wb" else self._word_ids(text)
            ids += found
            lengths[row] = len(found)
        return np.asarray(ids, dtype=np.int64), lengths

    def _word_ids(self, text: str) -> list[int]:
        return _known(self._index, word_ngrams(text, self.ngram_range))

    def _char_ids(self, text: str) -> list[int]:
        # a text repeats the words of earlier texts: their n-gram ids are looked up once
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        cache, index = self._cache, self._index  # local names: the loop below is the hot path
        ids: list[int] = []
        for word in _words(text):
            found = cache.get(word)
            if found is None:
                grams = _padded_word_ngrams(word, *self.ngram_range)
                found = cache[word] = _known(index, grams)
            ids += found
        return ids

    def transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The TF-IDF matrix of `texts` as (rows, columns, values), sorted by row then column,
        each row l2-normalised (an empty row stays empty)."""
        ids, lengths = self.term_ids(texts)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        # count each (row, column) pair; the sorted keys give scikit-learn's column order
        keys, counts = np.unique(rows * self.size + ids, return_counts=True)
        rows, columns = np.divmod(keys, max(self.size, 1))
        tf = counts.astype(np.float64)
        if self.sublinear_tf:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[columns]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        return rows, columns, values / norms[rows]


def _known(index: dict[str, int], grams: list[str]) -> list[int]:
    """The column ids of the n-grams in the vocabulary `index`, in order (others dropped)."""
    return [i for i in map(index.get, grams) if i is not None]


# ----------------------------------------------------------------------------- the vectoriser


@dataclass
class SparseRows:
    """A CSR matrix: row i holds columns[indptr[i]:indptr[i + 1]] with their values."""

    indptr: np.ndarray
    columns: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1


class TfidfRuntime:
    """Texts -> the TF-IDF features of fitted vectorizers placed side by side (a FeatureUnion)."""

    def __init__(self, parts: list[TfidfPart]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0, *(p.size for p in parts)])

    @property
    def pad_id(self) -> int:
        """The padding column: one past the last feature."""
        return int(self.offsets[-1])

    def transform(self, texts: Sequence[str]) -> SparseRows:
        """The TF-IDF features of `texts` (a 1-D array or list of str)."""
        texts = [str(t) for t in texts]
        found = [p.transform(texts) for p in self.parts]
        rows = np.concatenate([r for r, _, _ in found])
        columns = np.concatenate(
            [c + o for (_, c, _), o in zip(found, self.offsets[:-1], strict=True)]
        )
        values = np.concatenate([v for _, _, v in found])
        order = np.argsort(rows, kind="stable")  # parts in column order within each row
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        return SparseRows(indptr, columns[order], values[order])

    def to_metadata(self) -> str:
        """The fitted state as the JSON text stored under METADATA_KEY."""
        parts = [
            {
                "analyzer": p.analyzer,
                "ngram_range": list(p.ngram_range),
                "lowercase": p.lowercase,
                "sublinear_tf": p.sublinear_tf,
                "norm": "l2",
                "terms": p.terms,
                "idf": base64.b64encode(p.idf.astype("<f8").tobytes()).decode("ascii"),
            }
            for p in self.parts
        ]
        body = {"format": FORMAT, "pad_id": self.pad_id, "parts": parts}
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in a term: escape it (still exact)
            text = json.dumps(body, separators=(",", ":"))
        return text

    @classmethod
    def from_metadata(cls, text: str) -> TfidfRuntime:
        """Rebuild from `to_metadata()`; ArtifactError when the text is not a valid state."""
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("format") != FORMAT:
                raise ValueError(f"expected format {FORMAT}")
            runtime = cls([_part_from_json(p) for p in body["parts"]])
            if body["pad_id"] != runtime.pad_id or not runtime.parts:
                raise ValueError("the padding column does not follow the features")
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise ArtifactError(
                f"model.onnx: invalid TF-IDF vectoriser metadata ({str(exc)[:200]})"
            ) from exc
        return runtime


def _part_from_json(d: dict[str, Any]) -> TfidfPart:
    """One vectorizer from its JSON; ValueError/TypeError/KeyError when malformed."""
    low, high = d["ngram_range"]
    if d["analyzer"] not in ANALYZERS or d["norm"] != "l2":
        raise ValueError(f"unsupported analyzer {d['analyzer']!r} or norm {d['norm']!r}")
    if not all(type(n) is int for n in (low, high)) or not 1 <= low <= high:
        raise ValueError(f"bad ngram_range {d['ngram_range']!r}")
    if not all(type(d[k]) is bool for k in ("lowercase", "sublinear_tf")):
        raise ValueError("lowercase and sublinear_tf must be booleans")
    terms = d["terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValueError("terms must be a list of strings")
    idf = np.frombuffer(base64.b64decode(d["idf"], validate=True), dtype="<f8")
    if not (np.isfinite(idf) & (idf > 0)).all():
        raise ValueError("idf weights must be finite and positive")
    part = TfidfPart(d["analyzer"], (low, high), d["lowercase"], d["sublinear_tf"], terms, idf)
    if not len(idf) == len(terms) == len(part._index):
        raise ValueError("terms and idf do not match (lengths or repeated terms)")
    return part


# ----------------------------------------------------------------------------- graph inputs


def padded_batches(
    rows: SparseRows, pad_id: int, budget: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(row numbers, ids (m, width), values (m, width)) batches covering every row once.

    Rows go shortest first so each batch pads little; a batch holds at most `budget` cells
    (or one row), so a long text never makes the whole batch wide. Width is at least 1.
    """
    lengths = np.diff(rows.indptr)
    order = np.argsort(lengths, kind="stable")
    widths = np.maximum(lengths[order], 1)
    start = 0
    while start < len(order):
        end = _batch_end(widths, start, budget)
        chosen = order[start:end]
        yield (chosen, *_pad(rows, chosen, pad_id, int(widths[end - 1])))
        start = end


def _batch_end(widths: np.ndarray, start: int, budget: int) -> int:
    """The largest end > start with (end - start) * widths[end - 1] <= budget (start + 1 when
    none): a binary search, as that size never decreases along the sorted widths."""
    low, high = start + 1, min(len(widths), start + budget)
    while low < high:
        middle = (low + high + 1) // 2
        if (middle - start) * int(widths[middle - 1]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _pad(
    rows: SparseRows, chosen: np.ndarray, pad_id: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The chosen rows as (ids, values), each (len(chosen), width), right-padded."""
    starts, lengths = rows.indptr[chosen], np.diff(rows.indptr)[chosen]
    line = np.repeat(np.arange(len(chosen)), lengths)
    # the position of each stored entry within its row
    position = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    source = np.repeat(starts, lengths) + position
    ids = np.full((len(chosen), width), pad_id, dtype=np.int64)
    values = np.zeros((len(chosen), width), dtype=np.float64)
    ids[line, position] = rows.columns[source]
    values[line, position] = rows.values[source]
    return ids, values
