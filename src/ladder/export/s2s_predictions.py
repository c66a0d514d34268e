"""`ladder predict` for a seq2seq artifact: a file of sources in, their outputs out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd  # noqa: TID253

from ladder.data.tables import read_table, table_format
from ladder.errors import DataError


def read_sources(path: str | Path, column: str = "source") -> list[str]:
    """The source texts of `path`: a table's `column` (CSV/TSV/JSONL/Parquet), or one source
    per line of a plain UTF-8 text file (blank lines kept, as empty sources; a byte-order mark
    is not part of the first)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if table_format(path) is None:
        try:
            return path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: not UTF-8 text (byte {exc.start}); convert it to UTF-8"
            ) from exc
    frame = read_table(path)
    if column not in frame.columns:
        raise DataError(
            f"{path}: no '{column}' column for the sources (columns: {', '.join(frame.columns)})"
        )
    return ["" if pd.isna(v) else str(v) for v in frame[column]]


def translations_frame(generator: Any, sources: list[str]) -> pd.DataFrame:
    """One row per source: `source` and the model's `output` (an empty source gets '')."""
    filled = [i for i, s in enumerate(sources) if s.strip()]
    outputs = [""] * len(sources)
    for i, text in zip(filled, generator.translate([sources[i] for i in filled]), strict=True):
        outputs[i] = text
    return pd.DataFrame({"source": sources, "output": outputs})
