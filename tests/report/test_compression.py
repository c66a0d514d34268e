"""The report's Compression section: present with variants only, one row per variant."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from test_html import make_run

from ladder.report import render_report
from ladder.report.compression import compression_section

NAN = math.nan
COLUMNS = ["model", "variant_of", "accuracy", "accuracy_delta", "params", "size_bytes",
           "latency_ms", "throughput_per_s", "status"]  # fmt: skip
# make_run's originals (forest, mlp, broken), then the variants a compress step leaves behind
VARIANTS = [
    ["mlp+int8", "mlp", 0.89, -0.01, 1234, 1250, 0.005, 180_000.0, "ok"],
    ["mlp+prune50-structured", "mlp", 0.91, 0.01, 617, 5000, 0.02, 45_000.0, "ok"],
    ["mlp+int8-static", NAN, NAN, NAN, NAN, NAN, NAN, NAN, "failed: <no calibration> & more"],
    ["ghost→mlp", "ghost", 0.80, -0.05, 100, 400, 0.001, 1e6, "ok"],
]


def add_variants(run: Path, variants: list[list]) -> Path:
    """Give the run's leaderboard the compression columns and the `variants` rows."""
    board = pd.read_csv(run / "leaderboard.csv")
    board.insert(2, "variant_of", NAN)
    board.insert(6, "accuracy_delta", NAN)
    extra = pd.DataFrame(variants, columns=COLUMNS)
    pd.concat([board, extra], ignore_index=True).to_csv(run / "leaderboard.csv", index=False)
    return run


def compression_rows(page: str) -> list[str]:
    match = re.search(r'<table id="compression-table">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert match, "no compression table"
    return re.findall(r"<tr\b.*?</tr>", match.group(1), re.S)


def cells(row: str) -> list[str]:
    """The text of each cell of a table row, tags removed."""
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td\b.*?</td>", row, re.S)]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    run = add_variants(make_run(tmp_path_factory.mktemp("compression") / "run"), VARIANTS)
    return render_report(run).read_text(encoding="utf-8")


def test_section_with_plot_and_nav_link(page: str) -> None:
    assert '<section id="compression"><h2>Compression</h2>' in page
    assert '<a href="#compression">Compression</a>' in page
    section = page[page.index('id="compression"') : page.index('id="learning"')]
    assert section.count('<img src="data:image/png;base64,') == 1
    assert 'alt="Accuracy against batch-1 latency and against artifact size;' in section
    assert page.count('<img src="data:image/png;base64,') == 7  # 6 without variants
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?!data:|#)([^"'\s>]+)""", page)
    assert external == []


def test_one_row_per_variant_under_its_original(page: str) -> None:
    names = [cells(row)[0] for row in compression_rows(page)]
    assert names == ["mlp", "mlp+int8", "mlp+prune50-structured", "mlp+int8-static",
                     "ghost", "ghost→mlp"]  # fmt: skip
    assert "forest" not in names  # an original without variants is left out


def test_variant_compared_with_its_original(page: str) -> None:
    rows = {cells(row)[0]: row for row in compression_rows(page)}
    assert cells(rows["mlp"]) == ["mlp", "0.9000", "4.9 KiB", "0.01 ms", "90,000/s", "1,234"]
    assert cells(rows["mlp+int8"]) == [
        "mlp+int8",
        "0.8900 (−1.00)",  # accuracy, delta in percentage points
        "1.2 KiB (0.25×)",  # a quarter of the original's size
        "0.005 ms (2.00×)",  # speed-up: original latency / variant latency
        "180,000/s (2.00×)",
        "1,234",
    ]
    int8 = rows["mlp+int8"]
    assert '<span class="worse">(−1.00)</span>' in int8 and '<span class="better">(0.25×)' in int8
    slower = cells(rows["mlp+prune50-structured"])
    assert slower[1:4] == ["0.9100 (+1.00)", "4.9 KiB (1.00×)", "0.02 ms (0.50×)"]


def test_failed_variant_and_missing_original(page: str) -> None:
    rows = {cells(row)[0]: row for row in compression_rows(page)}
    failed = rows["mlp+int8-static"]
    assert 'class="variant failed"' in failed
    assert "failed: &lt;no calibration&gt; &amp; more" in failed
    assert "<no calibration>" not in page
    assert cells(rows["ghost"]) == ["ghost", "not on the leaderboard"]
    assert cells(rows["ghost→mlp"])[1:3] == ["0.8000 (−5.00)", "400 B"]  # no ratios to show


def test_no_section_without_variants(tmp_path: Path) -> None:
    run = add_variants(make_run(tmp_path / "run"), [])  # the columns, but no variant rows
    page = render_report(run).read_text(encoding="utf-8")
    assert 'id="compression"' not in page and 'href="#compression"' not in page
    assert '<table id="compression-table"' not in page


@pytest.mark.parametrize(
    "row",
    [
        ["lenet+int8", NAN, NAN, NAN, NAN, NAN, NAN, NAN, "failed: boom"],  # no lenet on board
        ["mlp+extra", NAN, 0.9, NAN, 10, 100, 0.1, 10.0, "ok"],  # finished: an original
        ["mlp", NAN, 0.9, NAN, 10, 100, 0.1, 10.0, "failed: boom"],  # a failed original
    ],
)
def test_rows_that_are_not_variants(row: list) -> None:
    board = pd.DataFrame([["mlp", NAN, 0.9, NAN, 10, 100, 0.1, 10.0, "ok"], row], columns=COLUMNS)
    assert compression_section(board) == ""


def test_failed_row_named_after_a_model_is_a_variant() -> None:
    board = pd.DataFrame(
        [
            ["mlp", NAN, 0.9, NAN, 10, 100, 0.1, 10.0, "ok"],
            ["mlp+int8", NAN, NAN, NAN, NAN, NAN, NAN, NAN, "failed: boom"],
        ],
        columns=COLUMNS,
    )
    section = compression_section(board)
    assert [cells(row)[0] for row in compression_rows(section)] == ["mlp", "mlp+int8"]
    assert "failed: boom" in section


def test_failed_original_keeps_its_variants_without_ratios() -> None:
    board = pd.DataFrame(
        [
            ["mlp+int8", "mlp", 0.9, -0.01, 10, 100, 0.1, 10.0, "ok"],
            ["mlp", NAN, NAN, NAN, NAN, NAN, NAN, NAN, "failed: retrain crashed"],
        ],
        columns=COLUMNS,
    )
    original, variant = (cells(row) for row in compression_rows(compression_section(board)))
    assert original == ["mlp", "failed: retrain crashed"]
    assert variant == ["mlp+int8", "0.9000 (−1.00)", "100 B", "0.1 ms", "10/s", "10"]
