"""Text for language modelling: a corpus read from a text file, a folder of `.txt` files or a
table's text column, or prompt/completion pairs from a `.jsonl` file; and the contiguous
train/validation/test split of a token stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics  # the standard library's help text (builtin:pydoc)

import numpy as np

from ladder.data.tables import read_table, table_format
from ladder.data.text import as_texts
from ladder.errors import DataError

DOCUMENT_SEPARATOR = "\n\n"  # between the documents of a folder or the rows of a table


@dataclass(frozen=True)
class PromptCompletion:
    """One instruction-tuning example: the loss covers the completion's tokens only."""

    prompt: str
    completion: str


BUILTIN_CORPORA = ("pydoc",)


def read_corpus(source: str | Path, text_column: str | None = None) -> list[str]:
    """The documents of `source`: a text file (one document), a folder of `.txt` files (one
    document each, in name order), a table file whose `text_column` holds one document per
    row, or `builtin:pydoc` (the English help topics that ship with Python, ~0.5 MB, one
    document per topic in name order). DataError for a missing source, an undecodable file
    or an empty corpus."""
    if str(source).startswith("builtin:"):
        return _builtin_corpus(str(source).removeprefix("builtin:"))
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
        if not files:
            raise DataError(f"{path}: no .txt files in the folder")
        documents = [_read_text(p) for p in files]
    elif table_format(path) is not None and path.suffix != ".txt":
        if text_column is None:
            raise DataError(f"{path}: a table needs data.text, the column holding the text")
        frame = read_table(path)
        if text_column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise DataError(f"{path}: no text column '{text_column}' (columns: {columns})")
        documents = [str(text) for text in as_texts(frame[text_column].to_numpy(dtype=object))]
    else:
        documents = [_read_text(path)]
    if not any(doc.strip() for doc in documents):
        raise DataError(f"{path}: the corpus is empty (no text); add text to train on")
    return documents


def read_prompt_completions(path: str | Path) -> list[PromptCompletion]:
    """The pairs of a `.jsonl` file, one JSON object per line with string fields `prompt` and
    `completion`; DataError naming the line of a malformed object or a missing field."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    pairs = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        for field in ("prompt", "completion"):
            if not isinstance(record.get(field), str):
                raise DataError(
                    f"{path}: line {number} has no string field '{field}' (each line needs "
                    '{"prompt": "...", "completion": "..."})'
                )
        pairs.append(PromptCompletion(record["prompt"], record["completion"]))
    if not pairs:
        raise DataError(f"{path}: no prompt/completion pairs")
    return pairs


@dataclass(frozen=True)
class StreamSplit:
    """Row ranges [start, stop) of the train, validation and test parts of a token stream."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]


def split_stream(n_tokens: int, val: float, test: float, block_size: int) -> StreamSplit:
    """Contiguous, non-overlapping parts of a stream of `n_tokens`: training first, then
    validation, then test (fractions of the stream). Every part that is asked for must hold
    more than `block_size` tokens, so that one window and its next-token targets fit;
    DataError saying how many tokens are needed otherwise."""
    if not 0 <= val < 1 or not 0 < test < 1 or val + test >= 1:
        raise DataError(f"data.split: val {val} and test {test} must leave training tokens")
    n_test, n_val = int(n_tokens * test), int(n_tokens * val)
    n_train = n_tokens - n_val - n_test
    parts = {"train": n_train, "test": n_test, **({"validation": n_val} if val > 0 else {})}
    short = {name: n for name, n in parts.items() if n <= block_size}
    if short:
        name, n = next(iter(short.items()))
        needed = int(np.ceil((block_size + 1) / min(f for f in (1 - val - test, val, test) if f)))
        raise DataError(
            f"the corpus is too short: {n_tokens:,} tokens leave {n} for the {name} split, "
            f"fewer than one block of {block_size} + 1; add text (about {needed:,} tokens) or "
            "lower block_size"
        )
    return StreamSplit((0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_tokens))


def _builtin_corpus(name: str) -> list[str]:
    if name != "pydoc":
        raise DataError(
            f"builtin:{name}: no such corpus (text corpora: "
            f"{', '.join(f'builtin:{n}' for n in BUILTIN_CORPORA)})"
        )
    return [topics[key] for key in sorted(topics)]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert it to UTF-8") from exc
