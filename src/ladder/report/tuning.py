"""The report's Tuning section: each study `ladder tune` left under `tune/<model>/`.

A study folder holds study.json (the summary), trials.csv (one row per trial), best.yaml (the
best trial as a `models:` entry), importance.json and the two plots of `ladder.tuning.plots`;
plots missing from the folder are drawn here from trials.csv and importance.json. Every value
read from the folder is HTML-escaped.
"""

from __future__ import annotations

import json
import math
import numbers
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd  # noqa: TID253

from ladder.report.parts import drawn_png, embed_png, fact_list, is_missing, note, to_float
from ladder.tuning.plots import DIRECTIONS, plot_history, plot_importance

_TOP = 10  # trials shown in the table (best first), and failed trials listed
_EXPLAINED = (
    "Each study searched one model's hyperparameters, scoring every trial on the validation "
    "split. The tuned model was then trained with the best trial's values and scored on the "
    "test split like every other model (it is a row of the leaderboard). Pruned trials were "
    "stopped early by the pruner; failed trials raised an error."
)


def tuning_section(run_dir: Path) -> str:
    """The Tuning section (one part per study under `run_dir/tune/`) as HTML, or "" when the
    run has no study."""
    folders = sorted(path.parent for path in (Path(run_dir) / "tune").glob("*/study.json"))
    if not folders:
        return ""
    studies = "".join(_study(folder) for folder in folders)
    return f'<section id="tuning"><h2>Tuning</h2>{note(_EXPLAINED)}{studies}</section>'


def _study(folder: Path) -> str:
    """One study: facts, test metrics tuned vs untuned, best.yaml, plots, the best trials."""
    model = folder.name
    heading = f"<h3>{escape(model)}</h3>"
    try:
        study = json.loads((folder / "study.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return heading + note(f"{folder / 'study.json'} could not be read: {error}")
    if not isinstance(study, dict):
        return heading + note(f"{folder / 'study.json'} is not a JSON object")
    direction = str(study.get("direction") or "")
    metric = str(study.get("metric") or "value")
    trials = _read_trials(folder / "trials.csv")
    best = _fmt(study.get("best_value"))
    if not is_missing(study.get("best_trial")):
        best += f" (trial {_fmt(study.get('best_trial'))})"
    facts = {
        "study": study.get("study", ""),
        "objective": f"validation {metric}, {direction or 'direction unknown'}",
        "trials": _states(study),
        "best value": best,
        "pruner": study.get("pruner", ""),
        "storage": study.get("storage", ""),
        "tuned model": study.get("tuned_model") or "none (no complete trial)",
    }
    history = _history_img(folder, trials, direction, metric)
    importance = _importance_img(folder)
    return (
        f'<div class="study">{heading}<div class="grid"><div>{fact_list(facts)}'
        f"<h4>Test metrics, untuned and tuned</h4>{_test_table(study, metric, direction)}</div>"
        f"<div><h4>Best trial as a models: entry (best.yaml)</h4>{_best_yaml(folder)}</div></div>"
        f'<div class="grid"><div><h4>Optimization history</h4>{history}</div>'
        f"<div><h4>Parameter importance</h4>{importance}</div></div>"
        f"{_trials_table(trials, direction)}</div>"
    )


def _states(study: dict[str, Any]) -> str:
    """`20 (14 complete, 5 pruned, 1 fail)`: the trial count and how many ended in each state."""
    states = study.get("states") if isinstance(study.get("states"), dict) else {}
    counts = ", ".join(f"{_fmt(n)} {str(state).lower()}" for state, n in states.items())
    total = study.get("n_trials")
    total = _fmt(total) if not is_missing(total) else _fmt(sum(map(to_float, states.values())))
    return f"{total} ({counts})" if counts else total


def _test_table(study: dict[str, Any], metric: str, direction: str) -> str:
    """Each numeric test metric of the untuned and the tuned model, and the change; the
    study's metric first, coloured by whether tuning improved it."""
    tuned = study.get("test") if isinstance(study.get("test"), dict) else {}
    untuned = study.get("untuned_test") if isinstance(study.get("untuned_test"), dict) else {}
    names = [n for n in dict.fromkeys([*tuned, *untuned]) if _scalar(tuned.get(n, untuned.get(n)))]
    if not names:
        return note("No test metrics recorded for the tuned model.")
    names.sort(key=lambda name: name != metric)  # stable: the study's metric first
    rows = []
    for name in names:
        before, after = to_float(untuned.get(name)), to_float(tuned.get(name))
        change = after - before
        cell = f'<td class="num">{escape(f"{change:+.4g}")}</td>'
        if not math.isfinite(change):
            cell = '<td class="num">–</td>'
        elif name == metric and direction in DIRECTIONS and change != 0:
            better = (change > 0) == (direction == "maximize")
            tone = "better" if better else "worse"
            cell = f'<td class="num"><span class="{tone}">{escape(f"{change:+.4g}")}</span></td>'
        rows.append(
            f'<tr><td>{escape(str(name))}</td><td class="num">{escape(_fmt(before))}</td>'
            f'<td class="num">{escape(_fmt(after))}</td>{cell}</tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("test metric", "untuned", "tuned", "change"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _best_yaml(folder: Path) -> str:
    path = folder / "best.yaml"
    if not path.is_file():
        return note("No best.yaml (the study has no complete trial).")
    return f"<pre><code>{escape(path.read_text(encoding='utf-8', errors='replace'))}</code></pre>"


def _history_img(folder: Path, trials: pd.DataFrame | None, direction: str, metric: str) -> str:
    alt = f"Optimization history, {folder.name}"
    image = embed_png(folder / "optimization_history.png", alt)
    if image is None and trials is not None and direction in DIRECTIONS:
        image = drawn_png(lambda path: plot_history(trials, direction, metric, path), alt)
    return image or note("No optimization history saved.")


def _importance_img(folder: Path) -> str:
    alt = f"Parameter importance, {folder.name}"
    image = embed_png(folder / "param_importance.png", alt)
    if image is None and (folder / "importance.json").is_file():
        try:
            raw = json.loads((folder / "importance.json").read_text(encoding="utf-8"))
            importances = {str(k): float(v) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            importances = None
        if importances is not None:
            image = drawn_png(lambda path: plot_importance(importances, path), alt)
    return image or note("No parameter importance saved.")


def _read_trials(path: Path) -> pd.DataFrame | None:
    """trials.csv (only empty cells are missing: a parameter may be the string "null"), or None
    when it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None


def _trials_table(trials: pd.DataFrame | None, direction: str) -> str:
    """The best complete trials (at most 10) with their parameters, and the failed trials'
    errors."""
    if trials is None or "state" not in trials or "value" not in trials:
        return note("No trials.csv.")
    states = trials["state"].astype(str).str.upper()
    values = pd.to_numeric(trials["value"], errors="coerce")
    complete = trials[(states == "COMPLETE") & values.notna()].assign(value=values)
    best = complete.sort_values("value", ascending=direction == "minimize", kind="stable")
    best = best.head(_TOP)
    params = [c for c in trials.columns if str(c).startswith("param.")]
    extra = [c for c in ("duration_s", "epochs") if c in trials and trials[c].notna().any()]
    columns = ["number", "value", *extra, *params]
    names = {"number": "trial", "duration_s": "seconds"}
    head = "".join(
        f"<th>{escape(names.get(str(c), str(c).removeprefix('param.')))}</th>" for c in columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>"
        for row in best.to_dict("records")
    )
    order = "highest" if direction == "maximize" else "lowest"
    shown = note(f"The {len(best)} {order} of {len(complete)} complete trials.")
    table = (
        f"<h4>Best trials</h4>{shown}"
        f'<div class="scroll"><table class="trials"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
        if len(best)
        else note("No trial completed.")
    )
    return table + _failures(trials[states == "FAIL"])


def _failures(failed: pd.DataFrame) -> str:
    """A folded list of the failed trials' errors (the first 10)."""
    if failed.empty:
        return ""
    rows = "".join(
        f'<tr><td class="num">{escape(_fmt(row.get("number")))}</td>'
        f"<td>{escape(_fmt(row.get('error')))}</td></tr>"
        for row in failed.head(_TOP).to_dict("records")
    )
    more = f", the first {_TOP} shown" if len(failed) > _TOP else ""
    return (
        f"<details><summary>{len(failed)} failed trial{'' if len(failed) == 1 else 's'}{more}"
        "</summary>"
        f"<table><thead><tr><th>trial</th><th>error</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></details>"
    )


def _cell(value: Any) -> str:
    text = escape(_fmt(value))
    number = not isinstance(value, (str, bool)) and math.isfinite(to_float(value))
    return f'<td class="num">{text}</td>' if number else f"<td>{text}</td>"


def _scalar(value: Any) -> bool:
    """A number (not a bool, a list or a dict): a metric that fits in one cell."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    """A value as text: numbers to 4 significant digits (whole numbers in full), "–" for none."""
    if is_missing(value) or value == "":
        return "–"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
