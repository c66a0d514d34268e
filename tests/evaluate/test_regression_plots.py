"""Regression plots are written as PNG files, atomically, for every shape of input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ladder.evaluate.regression_plots import plot_predicted_vs_actual, plot_residual_histogram

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = [plot_predicted_vs_actual, plot_residual_histogram]


def assert_only_png(path: Path) -> None:
    """`path` is a PNG of more than a header and the only file in its folder (no temp files)."""
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 2000


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, size=n)
    return y, y + rng.normal(0, 1, size=n)


@pytest.mark.parametrize("plot", PLOTS)
@pytest.mark.parametrize("n", [20, 5000])
def test_plot_writes_png(tmp_path, plot, n):
    path = tmp_path / "plots" / "regression.png"  # the folder is created
    plot(*_data(n), path, title="A title")
    assert_only_png(path)


@pytest.mark.parametrize("plot", PLOTS)
def test_plot_one_row(tmp_path, plot):
    plot([2.5], [3.0], tmp_path / "one.png")
    assert_only_png(tmp_path / "one.png")


@pytest.mark.parametrize("plot", PLOTS)
def test_plot_constant_predictions_and_targets(tmp_path, plot):
    y, _ = _data(50)
    plot(y, np.full(50, 7.0), tmp_path / "constant.png")
    assert_only_png(tmp_path / "constant.png")
    plot(np.zeros(5), np.zeros(5), tmp_path / "constant.png")  # no spread at all, replaced
    assert_only_png(tmp_path / "constant.png")


@pytest.mark.parametrize("plot", PLOTS)
def test_plot_accepts_columns_and_rejects_mismatch(tmp_path, plot):
    y, pred = _data(10)
    plot(y[:, None], pred[:, None], tmp_path / "column.png")
    assert_only_png(tmp_path / "column.png")
    with pytest.raises(ValueError, match="y_pred has 9 rows but y_true has 10"):
        plot(y, pred[:9], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
