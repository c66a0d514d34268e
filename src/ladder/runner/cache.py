"""The run folder's cache: a model whose resolved config is unchanged is not trained again, and
a run folder holds the results of one dataset and split only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ladder.config import Config, DataConfig, ModelEntry
from ladder.errors import LadderError


def config_hash(config: Config, entry: ModelEntry) -> str:
    """A hash of everything that decides a model's result: its entry, training, data, seed."""
    key = {
        "model": entry.describe(),
        "train": entry.train.model_dump(mode="json"),
        "text": entry.text.model_dump(mode="json"),
        "data": config.data.model_dump(mode="json"),
        "seed": config.seed,
        "evaluate": config.evaluate.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def cached_status(run_dir: Path, config: Config, entry: ModelEntry) -> str:
    """ "cached" when the model's metrics.json carries this config's hash, else "absent"."""
    path = run_dir / "models" / entry.name / "metrics.json"
    try:
        saved = json.loads(path.read_text()).get("config_hash")
    except (OSError, ValueError):
        return "absent"
    ok = saved == config_hash(config, entry) and (path.parent / "artifact").is_dir()
    return "cached" if ok else "absent"


def refuse_other_data(run_dir: Path, config: Config, data: Any, force: bool) -> None:
    """A run folder holds one dataset and split; another config's results are not mixed in."""
    old_file = run_dir / "config.yaml"
    if force or not old_file.exists():
        return
    old = yaml.safe_load(old_file.read_text()) or {}
    old["data"] = _with_defaults(old.get("data"))  # keys added since: their defaults
    new = {"data": config.data.model_dump(mode="json"), "seed": config.seed}
    changed = [key for key in new if old.get(key) != new[key]]
    old_data = run_dir / "data.json"
    if old_data.exists() and json.loads(old_data.read_text()).get("sha256") != data.info["sha256"]:
        changed.append("the data itself (sha256 differs)")
    if changed:
        raise LadderError(
            f"{run_dir} holds results of a different config ({', '.join(changed)} changed); "
            "use --force to replace them or --out for a new run folder"
        )


def _with_defaults(data: Any) -> Any:
    """A saved data section completed with today's defaults (as saved, when it is not valid)."""
    try:
        return DataConfig.model_validate(data).model_dump(mode="json")
    except ValidationError:
        return data
