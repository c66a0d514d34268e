"""Reading table files (CSV, TSV, Parquet, JSON Lines) into clean DataFrames, with errors that
name the file and line."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import itertools
import json
import lzma
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd  # noqa: TID253

from ladder.data.values import Where
from ladder.errors import DataError, first_line

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".jsonlines": "jsonl",
    ".ndjson": "jsonl",
}
COMPRESSIONS: dict[str, Callable[..., IO[Any]]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
SUPPORTED = ".csv, .tsv, .parquet, .jsonl (text formats may end in .gz, .bz2 or .xz)"

_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def table_format(path: str | Path) -> str | None:
    """'csv', 'tsv', 'parquet' or 'jsonl' from the file's suffix, or None if not a table file."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
        if suffixes and FORMATS.get(suffixes[-1]) == "parquet":
            return None  # Parquet compresses internally
    return FORMATS.get(suffixes[-1]) if suffixes else None


def read_table(
    path: str | Path,
    columns: list[str] | None = None,
    na_values: list[str] | None = None,
    fmt: str | None = None,
) -> pd.DataFrame:
    """Read a table file into a DataFrame with stripped names and string cells.

    Args:
        path: a .csv, .tsv, .parquet or .jsonl file (text formats optionally compressed).
        columns: column names of a headerless CSV/TSV file (its first line is data).
        na_values: extra strings that mean "missing" (besides pandas' defaults and "").
        fmt: 'csv', 'tsv', 'parquet' or 'jsonl', for a file without a known suffix.
    """
    path = Path(path)
    fmt = fmt or table_format(path)
    if fmt is None:
        raise DataError(f"{path}: unsupported file type '{''.join(path.suffixes)}' ({SUPPORTED})")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if columns is not None and fmt not in ("csv", "tsv"):
        raise DataError(f"{path}: data.columns applies to headerless CSV/TSV files only")
    if fmt == "parquet":
        df = _read_parquet(path)
    elif fmt == "jsonl":
        df = _read_jsonl(path)
    else:
        df = _read_delimited(path, "\t" if fmt == "tsv" else ",", columns, na_values)
    return _clean(df, strip=fmt in ("csv", "tsv"), unquote=fmt == "tsv", na_values=na_values)


def _read_delimited(
    path: Path, sep: str, columns: list[str] | None, na_values: list[str] | None
) -> pd.DataFrame:
    # TSV has no quoting convention (a tab cannot occur in a field), so a quote that opens a
    # text field is text; CSV follows RFC 4180 ("a ""quoted"" word", commas inside quotes).
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    try:
        with warnings.catch_warnings():
            # index_col=False: a first data row longer than the header is an error, not an index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                path,
                sep=sep,
                header=None if columns is not None else "infer",
                index_col=False,
                skipinitialspace=True,
                quoting=quoting,
                na_values=na_values,
                encoding="utf-8",
            )
    except pd.errors.ParserWarning as exc:
        raise DataError(f"{path}: {_first_long_line(path, sep, quoting)}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: {_parser_message(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {_utf8_problem(path, exc)}") from exc
    except (OSError, EOFError) as exc:  # e.g. a corrupt .gz
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    if columns is not None:
        if df.shape[1] != len(columns):
            raise DataError(
                f"{path}: file has {df.shape[1]} columns but data.columns names {len(columns)} "
                f"({', '.join(columns)})"
            )
        df.columns = list(columns)
    return df


def _first_long_line(path: Path, sep: str, quoting: int) -> str:
    """Describe the first line with more fields than the header (pandas does not say which)."""
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=sep, quoting=quoting, skipinitialspace=True)
        expected = len(next(reader, []))
        for row in reader:
            if len(row) > expected:
                return (
                    f"line {reader.line_num} has {len(row)} fields, expected {expected} "
                    "(check the delimiter and the quoting of that line)"
                )
    return "a row has more fields than the header"


def _utf8_problem(path: Path, exc: UnicodeDecodeError) -> str:
    """Where the first invalid UTF-8 byte of the (decompressed) file is: its offset and line.

    The reader's own error counts from the start of its current chunk, not of the file.
    """
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    decoder = codecs.getincrementaldecoder("utf-8")()
    start, lines = 0, 1  # the file offset of `data`, and the line it starts on
    with opener(path, "rb") as f:
        while True:
            chunk = f.read(1 << 16)
            data = decoder.getstate()[0] + chunk  # what the decoder held back comes first
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                line = lines + data[: err.start].count(b"\n")
                return (
                    f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                    f"{start + err.start}, line {line}: {err.reason})"
                )
            if not chunk:
                break
            start += len(data) - len(decoder.getstate()[0])
            lines += chunk.count(b"\n")  # held-back bytes are part of a character, never "\n"
    return f"not UTF-8 text ({exc.reason})"


def file_where(path: str | Path, header: bool = True, fmt: str | None = None) -> Where:
    """Names a value of a table file by column and record as a person finds it: "line N" of a
    text file (after the header; blank lines skipped; a quoted field may span lines), or "row N"
    of a Parquet file. It reads the file, so it is for error messages."""
    path = Path(path)
    fmt = fmt or table_format(path)

    def where(column: str, row: int) -> str:
        place = f"row {row + 1}"
        if fmt != "parquet":
            skip = row + (1 if header and fmt != "jsonl" else 0)
            line = next(itertools.islice(_record_lines(path, fmt), skip, None), None)
            place = f"line {line}" if line is not None else f"data {place}"
        return f"{path}: column {column!r}, {place}"

    return where


def _record_lines(path: Path, fmt: str | None) -> Iterator[int]:
    """The line on which each record (header included) of a CSV/TSV/JSONL file starts."""
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
        if fmt == "jsonl":
            yield from (n for n, line in enumerate(f, start=1) if line.strip())
            return
        sep = "\t" if fmt == "tsv" else ","
        quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
        reader = csv.reader(f, delimiter=sep, quoting=quoting, skipinitialspace=True)
        before = 0
        for row in reader:
            if row:  # a blank line reads as []; pandas skips it
                yield before + 1
            before = reader.line_num


def _parser_message(exc: Exception) -> str:
    text = str(exc).strip()
    match = _FIELDS_ERROR.search(text)
    if match:
        expected, line, saw = match.groups()
        return (
            f"line {line} has {saw} fields, expected {expected} "
            "(check the delimiter and the quoting of that line)"
        )
    return f"cannot parse file ({text.splitlines()[0] if text else type(exc).__name__})"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        first = first_line(exc)
        raise DataError(f"{path}: not a readable Parquet file ({first})") from exc


def _read_jsonl(path: Path) -> pd.DataFrame:
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    records = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise DataError(
                        f"{path}: line {lineno}: expected a JSON object, "
                        f"got {type(record).__name__}"
                    )
                records.append(record)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {_utf8_problem(path, exc)}") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    return pd.DataFrame.from_records(records)


def _clean(
    df: pd.DataFrame, strip: bool, unquote: bool, na_values: list[str] | None
) -> pd.DataFrame:
    """Strip names and string cells, turn "" and `na_values` into NaN, re-infer numbers."""
    df = df.copy()
    df.columns = [str(c).strip() if strip else str(c) for c in df.columns]
    missing = set(na_values or ())
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        cleaned = s.map(lambda v: _clean_cell(v, strip, unquote, missing), na_action="ignore")
        if cleaned.equals(s):
            continue
        numbers = pd.to_numeric(cleaned, errors="coerce")
        if numbers.notna().sum() == cleaned.notna().sum() and cleaned.notna().any():
            cleaned = numbers  # e.g. "1 , ?" became "1", NaN: the column is numeric after all
        df[col] = cleaned
    return df


def _clean_cell(value: Any, strip: bool, unquote: bool, missing: set[str]) -> Any:
    if not isinstance(value, str):
        return value
    if strip:
        value = value.strip()
    if unquote and len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('""', '"')
    if value == "" or value in missing:
        return float("nan")
    return value
