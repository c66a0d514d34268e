"""Plots are written as valid PNG files, atomically, for every shape of input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ladder.evaluate import plot_confusion_matrix, plot_learning_curves, plot_roc

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
