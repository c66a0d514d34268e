"""The tuning study's plots: the best-so-far line, and PNGs for every shape of study."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ladder.tuning import plots
from ladder.tuning.plots import best_so_far, plot_history, plot_importance

PNG = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


def trials_frame(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
    """trials.csv as the study writes it (value empty unless COMPLETE), read back."""
    frame = pd.DataFrame(rows, columns=["number", "state", "value"])
    frame["duration_s"], frame["epochs"], frame["error"] = 1.0, NAN, NAN
    frame["param.optimizer.lr"] = 1e-3
    return frame


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes().startswith(PNG)
    assert not list(path.parent.glob(f".{path.name}.*"))  # written atomically: no temp left


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(
    ("values", "direction", "expected"),
    [
        ([0.5, 0.7, 0.6, 0.9, 0.8], "maximize", [0.5, 0.7, 0.7, 0.9, 0.9]),
        ([0.5, 0.7, 0.6, 0.9, 0.8], "minimize", [0.5, 0.5, 0.5, 0.5, 0.5]),
        ([3.0, 2.0, 2.5, 1.0], "minimize", [3.0, 2.0, 2.0, 1.0]),
        ([NAN, 0.4, NAN, 0.2], "maximize", [NAN, 0.4, 0.4, 0.4]),
        ([NAN, 0.4, NAN, 0.2], "minimize", [NAN, 0.4, 0.4, 0.2]),
        ([0.3], "maximize", [0.3]),
        ([], "minimize", []),
    ],
)
def test_best_so_far(values: list[float], direction: str, expected: list[float]) -> None:
    assert same(best_so_far(values, direction), expected)


def test_best_so_far_rejects_an_unknown_direction() -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        best_so_far([1.0], "up")


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_history_of_a_mixed_study(tmp_path: Path, direction: str) -> None:
    trials = trials_frame(
        [
            (0, "COMPLETE", 0.81),
            (1, "PRUNED", NAN),
            (2, "COMPLETE", 0.86),
            (3, "FAIL", NAN),
            (4, "COMPLETE", 0.84),
            (5, "RUNNING", NAN),
        ]
    )
    path = plot_history(trials, direction, "accuracy", tmp_path / "tune" / "history.png")
    assert path == tmp_path / "tune" / "history.png"
    assert_png(path)


def test_history_of_trials_read_from_csv_out_of_order(tmp_path: Path) -> None:
    csv = tmp_path / "trials.csv"
    trials_frame([(2, "COMPLETE", 0.3), (0, "COMPLETE", 0.5), (1, "PRUNED", NAN)]).to_csv(
        csv, index=False
    )
    assert_png(plot_history(pd.read_csv(csv), "minimize", "log_loss", tmp_path / "h.png"))


@pytest.mark.parametrize(
    "rows",
    [
        [(0, "FAIL", NAN), (1, "FAIL", NAN)],  # every trial failed
        [(0, "PRUNED", NAN)],  # nothing complete
        [(0, "COMPLETE", 0.9)],  # a single trial
        [],  # a study with no trials yet
    ],
    ids=["all-failed", "all-pruned", "single", "empty"],
)
def test_history_of_degenerate_studies(tmp_path: Path, rows: list) -> None:
    assert_png(plot_history(trials_frame(rows), "maximize", "accuracy", tmp_path / "h.png"))


def test_history_of_an_in_memory_table_with_none_values(tmp_path: Path) -> None:
    """The study passes its table before writing it: values of unfinished trials are None."""
    trials = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "PRUNED", "FAIL"]})
    trials["value"] = pd.Series([0.7, None, None], dtype=object)
    assert_png(plot_history(trials, "maximize", "accuracy", tmp_path / "h.png"))


def test_history_rejects_an_unknown_direction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="direction"):
        plot_history(trials_frame([]), "sideways", "accuracy", tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_importance_bars(tmp_path: Path) -> None:
    importances = {"optimizer.lr": 0.62, "hidden": 0.3, "dropout": 0.08}
    path = plot_importance(importances, tmp_path / "importance.png")
    assert path == tmp_path / "importance.png"
    assert_png(path)


@pytest.mark.parametrize("importances", [{}, {"only": 1.0}], ids=["empty", "one"])
def test_importance_edge_cases(tmp_path: Path, importances: dict[str, float]) -> None:
    assert_png(plot_importance(importances, tmp_path / "importance.png"))


def test_history_overwrites_an_earlier_plot(tmp_path: Path) -> None:
    path = tmp_path / "h.png"
    path.write_bytes(b"old")
    plot_history(trials_frame([(0, "COMPLETE", 0.5)]), "maximize", "accuracy", path)
    assert_png(path)


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("maximize", [0.81, 0.86, 0.86]), ("minimize", [0.81, 0.81, 0.79])],
)
def test_history_draws_the_best_so_far_of_complete_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direction: str, expected: list[float]
) -> None:
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    trials = trials_frame(
        [
            (3, "COMPLETE", 0.79),  # out of order: drawn by trial number
            (0, "COMPLETE", 0.81),
            (1, "PRUNED", NAN),
            (2, "COMPLETE", 0.86),
            (4, "FAIL", NAN),
        ]
    )
    plot_history(trials, direction, "accuracy", tmp_path / "h.png")
    (ax,) = figures[0].axes
    (line,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert list(line.get_xdata()) == [0, 2, 3]
    assert list(line.get_ydata()) == expected
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["complete (3)", "best so far", "pruned (1)", "failed (1)"]
