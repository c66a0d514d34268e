"""The report's Tuning section: present when runs/<name>/tune/ holds a study, escaped, inline."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from test_html import make_run

from ladder.report import render_report
from ladder.report.tuning import tuning_section
from ladder.tuning.plots import plot_history, plot_importance

NAN = math.nan
BEST_YAML = """\
# best of study "demo-run/mlp" <trial 2> & co
- name: mlp
  type: mlp
  hidden: [64]
  optimizer: {lr: 0.003}
"""
TRIALS = [  # number, state, value, duration_s, epochs, error, param.optimizer.lr, param.hidden
    [0, "COMPLETE", 0.81, 2.5, 5, NAN, 1e-3, "[32]"],
    [1, "PRUNED", NAN, 0.7, 1, NAN, 1e-4, "[16]"],
    [2, "COMPLETE", 0.93, 2.9, 5, NAN, 3e-3, "[64]"],
    [3, "FAIL", NAN, 0.1, NAN, 'RuntimeError: <oom> & "boom"', 5e-2, "[128]"],
    [4, "COMPLETE", 0.88, 2.4, 5, NAN, 2e-3, "[<b>]"],
]
STUDY = {
    "study": "demo-run/mlp <tuned>",
    "storage": "journal:runs/demo-run/tune/journal.log",
    "direction": "maximize",
    "metric": "accuracy",
    "best_value": 0.93,
    "best_trial": 2,
    "best_params": {"optimizer.lr": 3e-3, "hidden": [64]},
    "n_trials": 5,
    "states": {"COMPLETE": 3, "PRUNED": 1, "FAIL": 1},
    "space": {"optimizer.lr": {"low": 1e-4, "high": 1e-1, "log": True}},
    "pruner": "median",
    "tuned_model": "mlp (tuned)",
    "test": {"accuracy": 0.92, "f1_macro": 0.91, "confusion_matrix": [[1, 0], [0, 1]]},
    "untuned_test": {"accuracy": 0.90, "f1_macro": 0.89},
}


def add_study(run: Path, model: str = "mlp", study: dict | None = None, plots: bool = True) -> Path:
    """A tune/<model>/ folder as `ladder tune` leaves it."""
    folder = run / "tune" / model
    folder.mkdir(parents=True)
    study = STUDY if study is None else study
    (folder / "study.json").write_text(json.dumps(study))
    columns = ["number", "state", "value", "duration_s", "epochs", "error"]
    trials = pd.DataFrame(TRIALS, columns=[*columns, "param.optimizer.lr", "param.hidden"])
    trials.to_csv(folder / "trials.csv", index=False)
    (folder / "best.yaml").write_text(BEST_YAML)
    importances = {"optimizer.lr": 0.8, "hidden": 0.2}
    (folder / "importance.json").write_text(json.dumps(importances))
    if plots:
        frame = pd.read_csv(folder / "trials.csv")
        history = folder / "optimization_history.png"
        plot_history(frame, study["direction"], study["metric"], history)
        plot_importance(importances, folder / "param_importance.png")
    return folder


def section_of(page: str) -> str:
    start = page.index('<section id="tuning">')
    return page[start : page.index("</section>", start)]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run = make_run(tmp_path_factory.mktemp("tuning") / "run")
    folder = add_study(run)
    return folder, render_report(run).read_text(encoding="utf-8")


def test_section_and_nav_link(tuned: tuple[Path, str]) -> None:
    page = tuned[1]
    assert '<section id="tuning"><h2>Tuning</h2>' in page
    assert '<a href="#tuning">Tuning</a>' in page
    assert page.index('id="tuning"') < page.index('id="learning"')  # after the trade-offs


def test_study_facts_are_escaped(tuned: tuple[Path, str]) -> None:
    section = section_of(tuned[1])
    assert "<h3>mlp</h3>" in section
    assert "demo-run/mlp &lt;tuned&gt;" in section and "<tuned>" not in section
    assert "validation accuracy, maximize" in section
    assert "5 (3 complete, 1 pruned, 1 fail)" in section
    assert "0.93 (trial 2)" in section
    assert "<dd>median</dd>" in section and "<dd>mlp (tuned)</dd>" in section


def test_tuned_test_metrics_next_to_untuned(tuned: tuple[Path, str]) -> None:
    section = section_of(tuned[1])
    rows = re.findall(r"<tr><td>(\w+)</td>(.*?)</tr>", section, re.S)
    by_metric = {name: re.sub(r"<[^>]+>", " ", cells).split() for name, cells in rows}
    assert list(by_metric)[:2] == ["accuracy", "f1_macro"]  # the study's metric first
    assert by_metric["accuracy"] == ["0.9", "0.92", "+0.02"]
    assert by_metric["f1_macro"] == ["0.89", "0.91", "+0.02"]
    assert '<span class="better">+0.02</span>' in section  # the study's metric, improved
    assert "confusion_matrix" not in section  # only scalar metrics


def test_best_yaml_is_shown_escaped(tuned: tuple[Path, str]) -> None:
    section = section_of(tuned[1])
    assert (
        "# best of study &quot;demo-run/mlp&quot; &lt;trial 2&gt; &amp; co\n- name: mlp" in section
    )
    assert "optimizer: {lr: 0.003}" in section
    assert "<trial 2>" not in section


def test_plots_are_inlined_from_the_study_folder(tuned: tuple[Path, str]) -> None:
    folder, page = tuned
    section = section_of(page)
    assert section.count('<img src="data:image/png;base64,') == 2
    for name in ("optimization_history.png", "param_importance.png"):
        assert base64.b64encode((folder / name).read_bytes()).decode() in section
    assert 'alt="Optimization history, mlp"' in section
    assert 'alt="Parameter importance, mlp"' in section
    assert "http://" not in page and "https://" not in page


def test_trials_table_best_first_with_escaped_params(tuned: tuple[Path, str]) -> None:
    section = section_of(tuned[1])
    table = re.search(r'<table class="trials">(.*?)</table>', section, re.S).group(1)
    head = re.findall(r"<th>(.*?)</th>", table)
    assert head == ["trial", "value", "seconds", "epochs", "optimizer.lr", "hidden"]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    first_cells = [re.search(r"<td[^>]*>(.*?)</td>", row).group(1) for row in rows]
    assert first_cells == ["2", "4", "0"]  # complete trials only, highest value first
    assert "[&lt;b&gt;]" in table and "<b>" not in table
    assert "The 3 highest of 3 complete trials." in section


def test_failed_trials_list_their_errors_escaped(tuned: tuple[Path, str]) -> None:
    section = section_of(tuned[1])
    assert "<summary>1 failed trial</summary>" in section
    assert "RuntimeError: &lt;oom&gt; &amp; &quot;boom&quot;" in section


def test_no_section_without_a_study(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    assert tuning_section(run) == ""
    (run / "tune").mkdir()
    (run / "tune" / "journal.log").write_text("")  # a storage but no finished study
    page = render_report(run).read_text(encoding="utf-8")
    assert '<section id="tuning"' not in page and 'href="#tuning"' not in page
    assert "<h2>Tuning</h2>" not in page


def test_minimize_study_without_plots_draws_them(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    study = {
        **STUDY,
        "direction": "minimize",
        "metric": "log_loss",
        "best_value": 0.81,
        "best_trial": 0,
        "test": {"log_loss": 0.35},
        "untuned_test": {"log_loss": 0.30},
    }
    add_study(run, "forest", study, plots=False)
    section = section_of(render_report(run).read_text(encoding="utf-8"))
    assert section.count('<img src="data:image/png;base64,') == 2  # drawn from the files
    assert '<span class="worse">+0.05</span>' in section  # a higher loss is worse
    table = re.search(r'<table class="trials">(.*?)</table>', section, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert [re.search(r"<td[^>]*>(.*?)</td>", r).group(1) for r in rows] == ["0", "4", "2"]
    assert "The 3 lowest of 3 complete trials." in section


def test_study_without_trials_or_test_metrics(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    folder = run / "tune" / "mlp"
    folder.mkdir(parents=True)
    study = {
        **STUDY,
        "best_value": None,
        "best_trial": None,
        "n_trials": 2,
        "states": {"FAIL": 2},
        "tuned_model": None,
        "test": None,
        "untuned_test": None,
    }
    (folder / "study.json").write_text(json.dumps(study))
    section = tuning_section(run)
    assert "none (no complete trial)" in section
    assert "No test metrics recorded" in section
    assert "No best.yaml" in section and "No trials.csv." in section
    assert "No optimization history saved." in section
    assert "No parameter importance saved." in section


def test_unreadable_study_json_is_a_note(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    (run / "tune" / "<x>").mkdir(parents=True)
    (run / "tune" / "<x>" / "study.json").write_text("{not json")
    section = tuning_section(run)
    assert "<h3>&lt;x&gt;</h3>" in section and "could not be read" in section
