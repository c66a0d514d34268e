"""What a study leaves in `tune/<model>/`: the trials table, the best values as a config
snippet, the parameter importances and the study's summary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna  # noqa: TID253
import pandas as pd  # noqa: TID253
import yaml

from ladder.io import atomic_write_text
from ladder.tuning.space import Param, apply_values

TRIALS_FILE, BEST_FILE, STUDY_FILE = "trials.csv", "best.yaml", "study.json"
IMPORTANCE_FILE = "importance.json"
HISTORY_PLOT, IMPORTANCE_PLOT = "optimization_history.png", "param_importance.png"


def trial_records(study: optuna.Study, params: dict[str, Param]) -> list[dict[str, Any]]:
    """Every trial of the study as plain data: number, state, value, params (config values),
    error, duration_s, epochs and the intermediate (per-epoch) scores."""
    records = []
    for trial in study.get_trials(deepcopy=False):
        values = {
            name: params[name].decode(value) if name in params else value
            for name, value in trial.params.items()
        }
        records.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "value": trial.value if trial.state.name == "COMPLETE" else None,
                "params": values,
                "error": trial.user_attrs.get("error"),
                "duration_s": trial.user_attrs.get("duration_s"),
                "epochs": trial.user_attrs.get("epochs"),
                "intermediate": dict(trial.intermediate_values),
            }
        )
    return records


def trials_frame(records: list[dict[str, Any]], params: dict[str, Param]) -> pd.DataFrame:
    """The trials table: number, state, value, duration_s, epochs, error, param.<name>..."""
    rows = []
    for record in records:
        row = {k: record[k] for k in ("number", "state", "value", "duration_s", "epochs", "error")}
        for name in params:
            value = record["params"].get(name)
            row[f"param.{name}"] = json.dumps(value) if isinstance(value, list | dict) else value
        rows.append(row)
    columns = ["number", "state", "value", "duration_s", "epochs", "error"]
    return pd.DataFrame(rows, columns=[*columns, *(f"param.{n}" for n in params)])


def best_snippet(raw: dict[str, Any], values: dict[str, Any], note: str) -> str:
    """The model entry with the best values, as a `models:` item ready to paste (YAML)."""
    entry = apply_values({k: v for k, v in raw.items() if k != "tune"}, values)
    body = yaml.safe_dump({"models": [entry]}, sort_keys=False, default_flow_style=None)
    return f"# {note}\n{body}"


def importances(study: optuna.Study, seed: int) -> dict[str, float]:
    """Each parameter's share of the variance of the completed trials' values (fANOVA);
    empty with fewer than two completed trials or a single parameter value."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError):  # e.g. every trial drew the same values
        return {}
    return {name: round(float(v), 4) for name, v in found.items() if math.isfinite(v)}


def write_outputs(
    folder: Path,
    records: list[dict[str, Any]],
    params: dict[str, Param],
    summary: dict[str, Any],
    snippet: str | None,
    importance: dict[str, float],
) -> None:
    """trials.csv, best.yaml, importance.json, study.json and the two plots into `folder`."""
    from ladder.tuning.plots import plot_history, plot_importance  # noqa: PLC0415  (matplotlib)

    folder.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(records, params)
    atomic_write_text(folder / TRIALS_FILE, frame.to_csv(index=False))
    if snippet is not None:
        atomic_write_text(folder / BEST_FILE, snippet)
    atomic_write_text(folder / IMPORTANCE_FILE, json.dumps(importance, indent=2))
    plot_history(frame, summary["direction"], summary["metric"], folder / HISTORY_PLOT)
    plot_importance(importance, folder / IMPORTANCE_PLOT)
    atomic_write_text(folder / STUDY_FILE, json.dumps(summary, indent=2, default=str))
