"""Plots are written as valid PNG files, atomically, for every shape of input."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ladder.evaluate import plot_confusion_matrix, plot_learning_curves, plot_roc, plots
from ladder.evaluate.plots import plot_tradeoff

HISTORY = [
    {"epoch": 1, "lr": 1e-3, "train_loss": 1.2, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 1},
    {"epoch": 2, "lr": 1e-3, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.6, "seconds": 1},
    {"epoch": 3, "lr": 5e-4, "train_loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.7, "seconds": 1},
]


def assert_only_png(path: Path) -> None:
    """`path` is a readable, non-empty PNG and the only file in its folder (no temp files)."""
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"
        assert image.size[0] > 100 and image.size[1] > 100


def rows_of(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Noisy probabilities that mostly favour the true class."""
    scores = np.random.default_rng(seed).random((len(y), n)) + 1.5 * np.eye(n)[y]
    return scores / scores.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("as_frame", [False, True])
def test_learning_curves(tmp_path, as_frame):
    history = pd.DataFrame(HISTORY) if as_frame else HISTORY
    path = tmp_path / "plots" / "learning_curve.png"  # the folder is created
    plot_learning_curves(history, path)
    assert_only_png(path)


def test_learning_curves_without_validation(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": None} for e in (1, 2)]
    plot_learning_curves(history, tmp_path / "curve.png")
    assert_only_png(tmp_path / "curve.png")


@pytest.mark.parametrize("n", [2, 3, 40])
def test_confusion_matrix(tmp_path, n):
    cm = np.random.default_rng(n).integers(0, 20, size=(n, n))
    plot_confusion_matrix(cm, [f"class {i}" for i in range(n)], tmp_path / "cm.png")
    assert_only_png(tmp_path / "cm.png")


def test_roc_binary(tmp_path):
    y = np.array([0, 1] * 20)
    plot_roc(y, rows_of(y, 2), ["no", "yes"], tmp_path / "roc.png")
    assert_only_png(tmp_path / "roc.png")


@pytest.mark.parametrize("n", [3, 15])
def test_roc_multiclass(tmp_path, n):
    y = np.arange(60) % n
    plot_roc(y, rows_of(y, n), list(range(n)), tmp_path / "roc.png")
    assert_only_png(tmp_path / "roc.png")


def test_roc_skips_classes_missing_from_y_true(tmp_path):
    y = np.array([0, 1, 0, 1, 0, 1])  # class 2 never occurs
    plot_roc(y, rows_of(y, 3), ["a", "b", "c"], tmp_path / "roc.png")
    assert_only_png(tmp_path / "roc.png")


def test_roc_with_a_single_class_still_draws(tmp_path):
    y = np.zeros(5, dtype=int)
    plot_roc(y, rows_of(y, 2), ["a", "b"], tmp_path / "roc.png")
    assert_only_png(tmp_path / "roc.png")


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_savefig(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_confusion_matrix(np.eye(2, dtype=int), [0, 1], tmp_path / "cm.png")
    assert list(tmp_path.iterdir()) == []


def test_existing_plot_is_replaced(tmp_path):
    path = tmp_path / "cm.png"
    path.write_bytes(b"old")
    plot_confusion_matrix(np.eye(2, dtype=int), [0, 1], path)
    assert_only_png(path)


NAN = math.nan
BOARD_COLUMNS = ["model", "variant_of", "accuracy", "size_bytes", "latency_ms", "status"]
ORIGINALS = [
    ["lenet", NAN, 0.985, 250_000, 0.35, "ok"],
    ["mlp", NAN, 0.975, 1_100_000, 0.12, "ok"],
    ["logreg", NAN, 0.960, 20_000, 0.05, "ok"],
    ["minilm", NAN, 0.930, 90_000_000, 12.0, "ok"],
]
VARIANTS = [
    ["lenet+int8", "lenet", 0.983, 80_000, 0.30, "ok"],
    ["lenet+int8-static", "lenet", 0.981, 78_000, 0.22, "ok"],
    ["lenet+prune90", "lenet", 0.970, 250_000, 0.35, "ok"],
    ["mlp+int8-torch", "mlp", 0.974, 300_000, 0.10, "ok"],
    ["mlp+prune50-structured", "mlp", 0.968, 560_000, 0.08, "ok"],
    ["minilm→textcnn", "minilm", 0.910, 3_000_000, 0.9, "ok"],
]


def board_of(*rows: list) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=BOARD_COLUMNS)


@pytest.fixture
def captured(monkeypatch) -> list[Figure]:
    """The figures plot_tradeoff would save, kept for inspection (nothing is written)."""
    figures: list[Figure] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    return figures


def texts_of(fig: Figure) -> list[list]:
    """Per panel, the non-empty texts drawn on it (point labels and notes)."""
    return [[t for t in ax.texts if t.get_text()] for ax in fig.axes]


def test_tradeoff_with_variants(tmp_path):
    path = tmp_path / "tradeoff.png"
    plot_tradeoff(board_of(*ORIGINALS, *VARIANTS), path)
    assert_only_png(path)


def test_tradeoff_with_only_originals(tmp_path):
    path = tmp_path / "plots" / "tradeoff.png"  # the folder is created
    plot_tradeoff(board_of(*ORIGINALS).to_dict("records"), path)  # a list of rows works too
    assert_only_png(path)


def test_tradeoff_skips_failed_rows_and_missing_values(tmp_path, captured):
    board = board_of(
        *ORIGINALS,
        ["broken", NAN, NAN, NAN, NAN, "failed: ValueError: boom"],
        ["mlp+int8", NAN, NAN, NAN, NAN, "failed: no calibration data"],
        ["lenet+prune50", "lenet", 0.99, 250_000, 0.35, "failed: late failure"],
        ["no-accuracy", NAN, NAN, 1000, 0.2, "ok"],
        ["no-latency", NAN, 0.9, 1000, NAN, "ok"],
        ["zero-size", NAN, 0.9, 0, 0.2, "ok"],
    )
    plot_tradeoff(board, tmp_path / "tradeoff.png")
    latency, size = ([t.get_text() for t in panel] for panel in texts_of(captured[0]))
    originals = [row[0] for row in ORIGINALS]
    assert sorted(latency) == sorted([*originals, "zero-size"])
    assert sorted(size) == sorted([*originals, "no-latency"])
    assert all(ax.get_xscale() == "log" for ax in captured[0].axes)


def test_tradeoff_with_nothing_to_draw(tmp_path, captured):
    board = board_of(["broken", NAN, NAN, NAN, NAN, "failed: boom"], ["idle", NAN, NAN, 1, 1, "ok"])
    plot_tradeoff(board, tmp_path / "tradeoff.png")
    notes = [[t.get_text() for t in panel] for panel in texts_of(captured[0])]
    assert notes == [
        ["no model has both accuracy and latency"],
        ["no model has both accuracy and size"],
    ]


def test_tradeoff_links_variants_to_their_originals(tmp_path, captured):
    # the variant of an original missing from the board keeps its full name and has no arrow
    orphan = ["ghost+int8", "ghost", 0.95, 50_000, 0.2, "ok"]
    plot_tradeoff(board_of(*ORIGINALS, *VARIANTS, orphan), tmp_path / "tradeoff.png")
    fig = captured[0]
    for ax in fig.axes:
        labels = {t.get_text() for t in ax.texts if t.get_text()}
        assert labels == {"lenet", "mlp", "logreg", "minilm", "+int8", "+int8-static",
                          "+prune90", "+int8-torch", "+prune50-structured", "→textcnn",
                          "ghost+int8"}  # fmt: skip
        arrows = [t for t in ax.texts if not t.get_text() and t.arrow_patch is not None]
        assert len(arrows) == len(VARIANTS)
        assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["original model", "compressed variant (arrow from its original)"]


def test_tradeoff_labels_do_not_overlap(tmp_path, captured):
    plot_tradeoff(board_of(*ORIGINALS, *VARIANTS), tmp_path / "tradeoff.png")
    fig = captured[0]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    for panel in texts_of(fig):
        boxes = [t.get_window_extent(renderer) for t in panel]
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b)
