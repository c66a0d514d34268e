"""render_report on a hand-made run folder: structure, escaping, no network references."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ladder.errors import LadderError
from ladder.evaluate.plots import plot_confusion_matrix, plot_roc
from ladder.report import render_report

MODELS = ["forest", "mlp", "broken"]  # leaderboard order: best first, the failed one last
FAILED_STATUS = 'failed: ValueError: x < 0 & "y"'
CONFIG = """\
name: demo-run
seed: 0
# a comment with markup that must come out escaped: <script>alert(1)</script> & "quotes"
data:
  source: builtin:digits
models:
  - {name: forest, type: random_forest}
  - {name: mlp, type: mlp, hidden: [16]}
  - {name: broken, type: cnn}
"""


def make_run(root: Path) -> Path:
    """A run folder as `ladder run` leaves it: 3 models, one failed, one with a history."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG)
    labels = ["cat", "dog", "<bird>"]
    classes = [
        {"label": lab, "train": 40 + 5 * i, "val": 5, "test": 10 + i, "total": 55 + 6 * i}
        for i, lab in enumerate(labels)
    ]
    data = {
        "source": "builtin:demo",
        "kind": "tabular",
        "labels": labels,
        "rows": {"train": 135, "val": 15, "test": 33, "total": 183},
        "classes": classes,
        "features": {
            "count": 2,
            "columns": [{"name": "weight", "dtype": "float64"}, {"name": "legs", "dtype": "int64"}],
        },
        "sha256": "ab" * 32,
    }
    (root / "data.json").write_text(json.dumps(data))
    nan = math.nan
    board = pd.DataFrame(
        [
            ["forest", "random_forest", 0.95, 0.90, 0.98, 0.94, 0.99, 0.2, nan, 2_000_000,
             3.5, 0.05, 20000.0, nan, True, "ok"],
            ["mlp", "mlp", 0.90, 0.84, 0.95, 0.89, 0.97, 0.3, 1234, 5000,
             12.0, 0.01, 90000.0, 0.04, True, "ok"],
            ["broken", "cnn", nan, nan, nan, nan, nan, nan, nan, nan,
             nan, nan, nan, nan, False, FAILED_STATUS],
        ],
        columns=[
            "model", "type", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "f1_macro",
            "roc_auc", "log_loss", "params", "size_bytes", "train_seconds", "latency_ms",
            "throughput_per_s", "mcnemar_p", "pareto", "status",
        ],
    )  # fmt: skip
    board.to_csv(root / "leaderboard.csv", index=False)

    cm = [[10, 0, 0], [1, 9, 1], [0, 1, 11]]
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 60)
    y_prob = rng.dirichlet(np.ones(3), 60) + np.eye(3)[y_true]
    y_prob /= y_prob.sum(axis=1, keepdims=True)
    for name in ("forest", "mlp"):
        model_dir = root / "models" / name
        metrics = {"accuracy": 0.95, "f1_macro": 0.94, "confusion_matrix": cm, "labels": labels}
        model_dir.mkdir(parents=True)
        (model_dir / "metrics.json").write_text(json.dumps(metrics))
    plots = root / "models" / "forest" / "plots"
    plot_confusion_matrix(cm, labels, plots / "confusion_matrix.png")
    plot_roc(y_true, y_prob, labels, plots / "roc.png")
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "lr": [1e-3, 1e-3, 5e-4],
            "train_loss": [1.0, 0.6, 0.4],
            "val_loss": [1.1, 0.7, 0.5],
            "val_accuracy": [0.6, 0.8, 0.9],
            "seconds": [0.5, 0.5, 0.5],
        }
    )
    history.to_csv(root / "models" / "mlp" / "history.csv", index=False)
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = render_report(make_run(tmp_path_factory.mktemp("report") / "run"))
    return path, path.read_text(encoding="utf-8")


def leaderboard_rows(page: str) -> list[str]:
    match = re.search(r'<table id="leaderboard">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert match, "no leaderboard table"
    return re.findall(r"<tr\b.*?</tr>", match.group(1), re.S)


def test_writes_report_html_atomically(report: tuple[Path, str]) -> None:
    path, page = report
    assert path.name == "report.html" and path.parent.name == "run"
    assert page.startswith("<!DOCTYPE html>")
    assert not list(path.parent.glob(".report.html.*"))  # no temporary file left behind


def test_leaderboard_has_one_row_per_model(report: tuple[Path, str]) -> None:
    rows = leaderboard_rows(report[1])
    assert len(rows) == len(MODELS)
    for row, model in zip(rows, MODELS, strict=True):
        assert f'data-value="{model}"' in row
    assert 'class="failed"' in rows[2]
    assert "&lt; 0 &amp; &quot;y&quot;" in rows[2]  # the failed status, escaped
    assert "1.9 MiB" in rows[0] and "4.9 KiB" in rows[1] and "1,234" in rows[1]


def test_no_network_references(report: tuple[Path, str]) -> None:
    page = report[1]
    assert "http://" not in page and "https://" not in page
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page, re.I)
    references += re.findall(r"""url\(\s*["']?([^"')\s]*)""", page, re.I)
    assert references, "expected inline images and anchors"
    external = [ref for ref in references if not ref.startswith(("data:", "#"))]
    assert external == []
    assert "<link" not in page and "@import" not in page


def test_config_text_is_present_and_escaped(report: tuple[Path, str]) -> None:
    page = report[1]
    assert "name: demo-run" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert "<script>alert(1)" not in page
    assert "&lt;bird&gt;" in page and "<bird>" not in page


def test_embeds_existing_plots_and_draws_the_rest(report: tuple[Path, str]) -> None:
    path, page = report
    roc = (path.parent / "models" / "forest" / "plots" / "roc.png").read_bytes()
    assert base64.b64encode(roc).decode() in page
    # class balance, accuracy vs latency, accuracy CI, mlp learning curve (from history.csv),
    # forest confusion matrix and ROC
    assert page.count('<img src="data:image/png;base64,') == 6
    assert 'alt="Learning curve, mlp"' not in page  # drawn, not embedded: alt names the model
    assert "<h3>mlp</h3>" in page
    assert "Best model: forest" in page


def test_environment_section(report: tuple[Path, str]) -> None:
    page = report[1]
    section = page[page.index('id="environment"') :]
    for name in ("ladder", "python", "torch", "scikit-learn", "numpy", "platform", "cpu", "gpu"):
        assert f"<dt>{name}</dt>" in section


def test_image_dataset_and_missing_plots(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    data = json.loads((run / "data.json").read_text())
    data["kind"] = "image"
    data["features"] = {"channels": 1, "height": 8, "width": 8}
    (run / "data.json").write_text(json.dumps(data))
    for png in (run / "models" / "forest" / "plots").iterdir():
        png.unlink()
    page = render_report(run).read_text()
    assert "1 × 8 × 8" in page
    assert "No ROC plot saved" in page
    assert 'alt="Confusion, forest"' in page  # drawn from metrics.json instead


def test_text_dataset_is_described(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    data = json.loads((run / "data.json").read_text())
    data["kind"] = "text"
    data["features"] = {
        "text_column": "review",
        "empty_texts": 3,
        "mean_words": 21.5,
        "max_words": 59,
    }
    (run / "data.json").write_text(json.dumps(data))
    page = render_report(run).read_text()
    assert "Text (column review): 21.5 words on average, at most 59" in page
    assert "3 empty texts" in page


def test_empty_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(LadderError, match=r"no results to report \(no leaderboard.csv\)"):
        render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
