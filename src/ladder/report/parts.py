"""Small pieces shared by the report's sections: inline images, notes, number formats.

Every value that reaches the page through these helpers is HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import tempfile
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def img_tag(png: bytes, alt: str) -> str:
    """A `<figure>` with the PNG inlined as a `data:` URI (no file, no network)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}"></figure>'


def embed_png(path: Path, alt: str) -> str | None:
    """The PNG file at `path` as an inline image, or None if it is missing or not a PNG."""
    if not path.is_file():
        return None
    content = path.read_bytes()
    return img_tag(content, alt) if content.startswith(PNG_MAGIC) else None


def drawn_png(draw: Callable[[Path], None], alt: str) -> str:
    """A plot made by `ladder.evaluate.plots` (which writes files), read back and inlined."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plot.png"
        draw(path)
        return img_tag(path.read_bytes(), alt)


def fact_list(facts: dict[str, Any]) -> str:
    """A `<dl>` of name: value pairs, both escaped."""
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in facts.items())
    return f'<dl class="facts">{items}</dl>'


def note(text: str) -> str:
    """A muted paragraph, e.g. why a section is empty."""
    return f'<p class="note">{escape(text)}</p>'


def fmt_int(value: Any) -> str:
    """An integer with thousands separators: 1,234."""
    return f"{int(value):,}"


def fmt_bytes(size: float) -> str:
    """A byte count in binary units: 512 B, 4.9 KiB, 1.9 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # unreachable; keeps type checkers content


def to_float(value: Any) -> float:
    """`value` as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_missing(value: Any) -> bool:
    """None or NaN: an empty cell of leaderboard.csv."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_finished(row: dict[str, Any]) -> bool:
    """A model that finished: status is missing or "ok" (failed rows say "failed: ...")."""
    status = row.get("status")
    return is_missing(status) or not str(status).lower().startswith("failed")
