"""The report's Compression section: each compressed variant against the model it came from.

A variant is a leaderboard row with a `variant_of` (`lenet+int8`, `mlp+prune50-structured`, or a
distilled student `minilm→textcnn`, a variant of its teacher). A variant that failed leaves no
`variant_of` behind, so a failed row named `<model>+...` or `<model>→...` after a model on the
leaderboard counts as one too: the table then says why it failed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd  # noqa: TID253

from ladder.evaluate.plots import plot_tradeoff
from ladder.report.parts import drawn_png, fmt_bytes, fmt_int, is_finished, is_missing, note
from ladder.report.parts import to_float as num
from ladder.tuning import tuned_name

_VARIANT_MARK = re.compile(r"[+→]")  # how variant names join the original to the method
_HEADER = (
    "model",
    "accuracy (Δ points)",
    "size (× original)",
    "latency, batch 1 (speed-up)",
    "throughput (× original)",
    "params",
)
_EXPLAINED = (
    "Each variant against the model it was made from (a distilled student against its "
    "teacher), on the same test split. Δ is the change in accuracy in percentage points; size "
    "and throughput are multiples of the original's; speed-up is the original's batch-1 latency "
    "over the variant's. Timings are of the saved artifacts, on the machine that ran the "
    "leaderboard."
)


@dataclass
class _Family:
    """An original model and the variants made from it, in leaderboard order."""

    name: str
    original: dict[str, Any] | None  # its leaderboard row; None when it is not on the board
    variants: list[dict[str, Any]] = field(default_factory=list)


def compression_section(board: pd.DataFrame) -> str:
    """The Compression section (trade-off plot and variant table) as HTML, or "" when the
    leaderboard has no compressed variants."""
    families = _families(board.to_dict("records"))
    if not families:
        return ""
    plot = drawn_png(
        lambda path: plot_tradeoff(board, path),
        "Accuracy against batch-1 latency and against artifact size; "
        "arrows lead from each original model to its compressed variants",
    )
    return (
        '<section id="compression"><h2>Compression</h2>'
        f"{plot}<h3>Variants against their originals</h3>"
        f'<div class="scroll">{_table(families)}</div>{note(_EXPLAINED)}</section>'
    )


def _families(rows: list[dict[str, Any]]) -> list[_Family]:
    """The originals that have variants, in the order the leaderboard first names them."""
    by_name = {str(row.get("model")): row for row in rows}
    families: dict[str, _Family] = {}
    for row in rows:
        original = _original_of(row, by_name)
        if original is not None:
            family = families.setdefault(original, _Family(original, by_name.get(original)))
            family.variants.append(row)
    return list(families.values())


def _original_of(row: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> str | None:
    """The model `row` is a variant of, or None for an original."""
    variant_of = row.get("variant_of")
    if not is_missing(variant_of) and str(variant_of).strip():
        original = str(variant_of).strip()
        # a tuned model is another configuration of its original, not a compression of it
        return None if row.get("model") == tuned_name(original) else original
    if is_finished(row):
        return None
    prefix = _VARIANT_MARK.split(str(row.get("model")), maxsplit=1)[0]
    return prefix if prefix != row.get("model") and prefix in by_name else None


def _table(families: list[_Family]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in _HEADER)
    body = []
    for family in families:
        body.append(_original_row(family))
        body.extend(_variant_row(row, family.original) for row in family.variants)
    return (
        f'<table id="compression-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _original_row(family: _Family) -> str:
    name = f"<td>{escape(family.name)}</td>"
    row = family.original
    if row is None:
        return f'<tr class="original">{name}{_span("not on the leaderboard")}</tr>'
    if not is_finished(row):
        return f'<tr class="original failed">{name}{_span(str(row.get("status")))}</tr>'
    cells = [
        _num(_accuracy(row.get("accuracy"))),
        _num(_bytes(row.get("size_bytes"))),
        _num(_ms(row.get("latency_ms"))),
        _num(_per_s(row.get("throughput_per_s"))),
        _num(_count(row.get("params"))),
    ]
    return f'<tr class="original">{name}{"".join(cells)}</tr>'


def _variant_row(row: dict[str, Any], original: dict[str, Any] | None) -> str:
    name = f"<td>{escape(str(row.get('model')))}</td>"
    if not is_finished(row):
        return f'<tr class="variant failed">{name}{_span(str(row.get("status")))}</tr>'
    base = original if original is not None and is_finished(original) else {}

    def ratio(column: str, invert: bool = False) -> float:
        mine, theirs = num(row.get(column)), num(base.get(column))
        return theirs / mine if invert else mine / theirs

    delta = num(row.get("accuracy_delta"))
    if not math.isfinite(delta):  # an older leaderboard: work it out from the accuracies
        delta = num(row.get("accuracy")) - num(base.get("accuracy"))
    cells = [
        _compared(_accuracy(row.get("accuracy")), _points(delta), delta, better=delta >= 0),
        _compared(_bytes(row.get("size_bytes")), *_times(ratio("size_bytes"), higher=False)),
        _compared(_ms(row.get("latency_ms")), *_times(ratio("latency_ms", invert=True))),
        _compared(_per_s(row.get("throughput_per_s")), *_times(ratio("throughput_per_s"))),
        _num(_count(row.get("params"))),
    ]
    return f'<tr class="variant">{name}{"".join(cells)}</tr>'


# ----------------------------------------------------------------------------- cells


def _span(text: str) -> str:
    """One cell across the numeric columns, for a row with no numbers (the full text on hover)."""
    text = escape(text)
    return f'<td class="status" colspan="{len(_HEADER) - 1}" title="{text}">{text}</td>'


def _num(text: str) -> str:
    return f'<td class="num">{escape(text)}</td>'


def _compared(text: str, comparison: str, value: float, better: bool) -> str:
    """A value with its comparison to the original in brackets, coloured when it is a number."""
    if not comparison or not math.isfinite(value):
        return _num(text)
    tone = "better" if better else "worse"
    return f'<td class="num">{escape(text)} <span class="{tone}">({escape(comparison)})</span></td>'


def _times(ratio: float, higher: bool = True) -> tuple[str, float, bool]:
    """A ratio as `0.32×`, and whether it is an improvement (above 1, or below with `higher`
    False; a ratio of exactly 1 counts as no worse)."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "", math.nan, False
    text = f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"
    return text, ratio, ratio >= 1 if higher else ratio <= 1


def _points(delta: float) -> str:
    return f"{delta * 100:+.2f}".replace("-", "−") if math.isfinite(delta) else ""


def _accuracy(value: Any) -> str:
    return f"{num(value):.4f}" if math.isfinite(num(value)) else "–"


def _bytes(value: Any) -> str:
    return fmt_bytes(num(value)) if math.isfinite(num(value)) else "–"


def _ms(value: Any) -> str:
    return f"{num(value):.3g} ms" if math.isfinite(num(value)) else "–"


def _per_s(value: Any) -> str:
    return f"{num(value):,.0f}/s" if math.isfinite(num(value)) else "–"


def _count(value: Any) -> str:
    return fmt_int(num(value)) if math.isfinite(num(value)) else "–"
