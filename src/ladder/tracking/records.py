"""What ladder logs, as plain data: the parameters of a config or a model folder, flattened to
dotted keys, and the metrics of a model folder (per-epoch history, test scores)."""

from __future__ import annotations

import csv
import json
import math
import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ladder.config import Config
from ladder.urls import redacted

Metric = tuple[str, float, int]  # (key, value, step)

_NOT_IN_A_KEY = re.compile(r"[^/\w.\- ]")  # MLflow keys: letters, digits, _ - . / and space
_STEP_COLUMNS = ("epoch", "step")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys; other values (lists included) kept."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def key(name: str) -> str:
    """`name` as a valid MLflow param or metric key (other characters become _)."""
    return _NOT_IN_A_KEY.sub("_", name)[:250]


def param_text(value: Any) -> str:
    """A parameter value as MLflow stores it: lists and mappings as compact JSON."""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def config_params(config: Config) -> dict[str, str]:
    """The resolved config as params; models keyed by name (`models.net.hidden`), the tracking
    URI without its password."""
    data = config.model_dump(mode="json", exclude={"base_dir"})
    data["models"] = {
        str(entry.get("name", i)): {k: v for k, v in entry.items() if k != "name"}
        for i, entry in enumerate(data["models"])
    }
    if data["tracking"].get("mlflow"):
        data["tracking"]["mlflow"] = redacted(data["tracking"]["mlflow"])
    return {key(k): param_text(v) for k, v in flatten(data).items()}


def rung_params(model_dir: Path) -> dict[str, str]:
    """A model folder's params from artifact/manifest.json: model type, task, family, the
    model's config and, for a compressed variant, how it was made (`compression.*`)."""
    manifest = _json(model_dir / "artifact" / "manifest.json")
    params = {k: manifest[k] for k in ("model_type", "task", "family") if k in manifest}
    params.update(flatten(manifest.get("model_config") or {}))
    params.update(flatten(manifest.get("compression") or {}, "compression."))
    return {key(k): param_text(v) for k, v in params.items()}


def rung_metrics(model_dir: Path) -> list[Metric]:
    """A model folder's metrics: every numeric column of history.csv at each epoch (or row),
    and the numeric scalars of metrics.json as test_<name> (step 0)."""
    metrics = _history(model_dir / "history.csv")
    for name, value in _json(model_dir / "metrics.json").items():
        if number(value) is not None:
            metrics.append((key(f"test_{name}"), float(value), 0))
    return metrics


def _history(path: Path) -> list[Metric]:
    """(column, value, epoch) for each finite number of a history.csv."""
    if not path.is_file():
        return []
    metrics = []
    with path.open(newline="", encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            step = next((_int(row[c]) for c in _STEP_COLUMNS if _int(row.get(c)) is not None), None)
            for column, text in row.items():
                value = _float(text)
                if column not in _STEP_COLUMNS and value is not None:
                    metrics.append((key(column), value, index if step is None else step))
    return metrics


def _json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is missing."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def number(value: Any) -> float | None:
    """`value` as a float when it is a finite real number (not a bool, a string or None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _float(text: str | None) -> float | None:
    """A finite number from a CSV cell, else None."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int | None:
    """A whole number from a CSV cell (`3` or `3.0`), else None."""
    value = _float(text)
    return int(value) if value is not None and value.is_integer() else None
