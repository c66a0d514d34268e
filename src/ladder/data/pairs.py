"""Sequence-to-sequence data: (source text, target text) pairs read from a table, from two
aligned text files or from a builtin corpus; their seeded train/validation/test split, in which
no test source also occurs in training or validation; and the data.json description of them."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.data.tables import SUPPORTED, read_table, table_format
from ladder.data.text import as_texts
from ladder.errors import DataError

BUILTIN_PAIRS = ("numbers-en-fr",)
DEFAULT_NUMBERS = 5000  # pairs of builtin:numbers-en-fr without a count
TRAIN, VAL, TEST = 0, 1, 2  # the split a pair is assigned to


@dataclass
class PairSet:
    """Aligned source and target texts (stripped, none empty); `dropped_empty` counts the pairs
    of the source left out because their source or target was empty."""

    sources: list[str]
    targets: list[str]
    dropped_empty: int = 0

    def __len__(self) -> int:
        return len(self.sources)


@dataclass
class PairSplits:
    """The training, validation and test pairs.

    `moved_to_keep_test_clean` counts the training and validation pairs that were moved into
    the test split because their source also occurs there; `moved_to_keep_val_clean` the
    validation pairs moved into training because their source also occurs there.
    """

    train: PairSet
    val: PairSet
    test: PairSet
    moved_to_keep_test_clean: int = 0
    moved_to_keep_val_clean: int = 0
    dropped_empty: int = 0

    def items(self) -> list[tuple[str, PairSet]]:
        """(name, pairs) of each non-empty split."""
        parts = [("train", self.train), ("val", self.val), ("test", self.test)]
        return [(name, part) for name, part in parts if len(part)]


# ----------------------------------------------------------------------------- reading


def read_pairs(
    path: str,
    source_column: str = "source",
    target_column: str = "target",
    target_file: str | None = None,
    fmt: str | None = None,
) -> PairSet:
    """The pairs of `path`: a table file (CSV, TSV, JSONL, Parquet) with a source and a target
    column; or, with `target_file`, two aligned UTF-8 text files with one example per line; or
    `builtin:numbers-en-fr[:N]` (the integers 0..N-1 in English words -> in French words, N
    5000 by default; needs `num2words`).

    Texts are stripped; a pair whose source or target is empty is dropped and counted.
    DataError for a missing file or column, text files of different line counts, or no pair
    left at all.
    """
    if path.startswith("builtin:"):
        pairs = _builtin_pairs(path.removeprefix("builtin:"))
    elif target_file is not None:
        pairs = _aligned_files(Path(path).expanduser(), Path(target_file).expanduser())
    else:
        pairs = _table_pairs(Path(path).expanduser(), source_column, target_column, fmt)
    sources, targets = [s.strip() for s in pairs[0]], [t.strip() for t in pairs[1]]
    keep = [bool(s) and bool(t) for s, t in zip(sources, targets, strict=True)]
    result = PairSet(
        [s for s, k in zip(sources, keep, strict=True) if k],
        [t for t, k in zip(targets, keep, strict=True) if k],
        dropped_empty=keep.count(False),
    )
    if not result.sources:
        raise DataError(
            f"{path}: no pairs: every one of its {len(keep)} sources or targets is empty"
        )
    return result


def _table_pairs(
    path: Path, source_column: str, target_column: str, fmt: str | None
) -> tuple[list[str], list[str]]:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if (fmt or table_format(path)) is None:
        raise DataError(
            f"{path}: unsupported file type '{''.join(path.suffixes)}' ({SUPPORTED}); for two "
            "aligned text files set data.target_file"
        )
    frame = read_table(path, fmt=fmt)
    columns = [str(c) for c in frame.columns]
    for name, key in ((source_column, "data.source_column"), (target_column, "data.target_column")):
        if name not in columns:
            hint = difflib.get_close_matches(name, columns, n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            raise DataError(
                f"{path}: no column '{name}'{did_you_mean} (columns: {', '.join(columns)}); "
                f"set {key}"
            )
    return (
        [str(text) for text in as_texts(frame[source_column].to_numpy(dtype=object))],
        [str(text) for text in as_texts(frame[target_column].to_numpy(dtype=object))],
    )


def _aligned_files(source: Path, target: Path) -> tuple[list[str], list[str]]:
    sources, targets = _lines(source), _lines(target)
    if len(sources) != len(targets):
        raise DataError(
            f"{source} has {len(sources):,} lines but {target} has {len(targets):,}; the "
            "source and target files must be aligned, one example per line"
        )
    return sources, targets


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert it to UTF-8") from exc


def _builtin_pairs(spec: str) -> tuple[list[str], list[str]]:
    name, _, count = spec.partition(":")
    if name not in BUILTIN_PAIRS:
        hint = difflib.get_close_matches(name, BUILTIN_PAIRS, n=1)
        did_you_mean = f"; did you mean 'builtin:{hint[0]}'?" if hint else ""
        valid = ", ".join(f"builtin:{n}[:N]" for n in BUILTIN_PAIRS)
        raise DataError(f"builtin:{spec}: no such pair corpus{did_you_mean} (valid: {valid})")
    if not count:
        n = DEFAULT_NUMBERS
    elif count.isdigit() and int(count) >= 1:
        n = int(count)
    else:
        raise DataError(f"builtin:{spec}: N must be a whole number of pairs >= 1, got {count!r}")
    return _numbers(n)


def _numbers(n: int) -> tuple[list[str], list[str]]:
    """The integers 0..n-1 in English words and in French words."""
    try:
        from num2words import num2words  # an optional dependency of the demo corpus only
    except ImportError as exc:
        raise DataError(
            "builtin:numbers-en-fr needs the num2words package: pip install num2words"
        ) from exc
    return [num2words(i, lang="en") for i in range(n)], [num2words(i, lang="fr") for i in range(n)]


# ----------------------------------------------------------------------------- splitting


def split_pairs(pairs: PairSet, val: float, test: float, seed: int) -> PairSplits:
    """Shuffle the pairs (seeded) and cut `test` and `val` fractions of them off, then move
    pairs so that every source occurs in one split only: a training or validation pair whose
    source is also a test source moves into the test split (the test split stays honest), and
    a validation pair whose source is also a training source moves into training.

    DataError for fractions that leave no training pairs, or when a split that is asked for
    ends up empty (too few distinct sources).
    """
    if not 0 <= val < 1 or not 0 < test < 1 or val + test >= 1:
        raise DataError(f"data.split: val {val} and test {test} must leave training pairs")
    n = len(pairs)
    n_test = max(1, round(n * test))
    n_val = max(1, round(n * val)) if val > 0 else 0
    if n - n_test - n_val < 1:
        raise DataError(
            f"{n} pairs are too few to split into training, validation and test (data.split "
            f"val {val}, test {test}); add pairs"
        )
    order = np.random.default_rng(seed).permutation(n)
    where = np.full(n, TRAIN)  # the split of each pair, in shuffled order
    where[:n_test], where[n_test : n_test + n_val] = TEST, VAL
    sources = [pairs.sources[i] for i in order]
    to_test = _move(sources, where, into=TEST, away_from=(TRAIN, VAL))
    to_train = _move(sources, where, into=TRAIN, away_from=(VAL,))
    parts = [_subset(pairs, order[where == part]) for part in (TRAIN, VAL, TEST)]
    for name, part, asked in (("training", parts[0], True), ("validation", parts[1], val > 0)):
        if asked and not len(part):
            raise DataError(
                f"the {name} split is empty once every pair whose source also occurs in "
                f"another split has moved ({len(set(sources)):,} distinct sources in {n:,} "
                "pairs); add pairs with other sources or change data.split"
            )
    return PairSplits(*parts, to_test, to_train, pairs.dropped_empty)


def _move(sources: list[str], where: np.ndarray, into: int, away_from: tuple[int, ...]) -> int:
    """Assign the pairs of the splits `away_from` whose source occurs in split `into` to it;
    returns how many moved."""
    taken = {s for s, part in zip(sources, where, strict=True) if part == into}
    moved = 0
    for i, source in enumerate(sources):
        if where[i] in away_from and source in taken:
            where[i] = into
            moved += 1
    return moved


def _subset(pairs: PairSet, rows: np.ndarray) -> PairSet:
    return PairSet([pairs.sources[i] for i in rows], [pairs.targets[i] for i in rows])


# ----------------------------------------------------------------------------- data.json


def describe_pairs(splits: PairSplits, source: str) -> dict[str, Any]:
    """The content of data.json for a seq2seq run: source, pairs per split, pairs dropped for
    an empty side, pairs moved to keep the test (and validation) sources apart, the mean and
    longest source and target per split in characters, and a sha256 fingerprint of the pairs
    and their splits."""
    digest = hashlib.sha256()
    for name, part in splits.items():
        digest.update(name.encode("utf-8") + b"\0")
        for s, t in zip(part.sources, part.targets, strict=True):
            digest.update(s.encode("utf-8") + b"\0" + t.encode("utf-8") + b"\0")
    parts = dict(splits.items())
    return {
        "source": source,
        "kind": "pairs",
        "task": "seq2seq",
        "examples": {name: len(part) for name, part in parts.items()},
        "dropped_empty": splits.dropped_empty,
        "moved_to_keep_test_clean": splits.moved_to_keep_test_clean,
        "moved_to_keep_val_clean": splits.moved_to_keep_val_clean,
        "characters": {name: _lengths(part) for name, part in parts.items()},
        "dropped_non_finite": 0,
        "sha256": digest.hexdigest(),
    }


def _lengths(part: PairSet) -> dict[str, float]:
    sources = np.array([len(s) for s in part.sources])
    targets = np.array([len(t) for t in part.targets])
    return {
        "source_mean": round(float(sources.mean()), 2),
        "source_max": int(sources.max()),
        "target_mean": round(float(targets.mean()), 2),
        "target_max": int(targets.max()),
    }
