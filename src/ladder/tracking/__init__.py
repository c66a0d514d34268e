"""Experiment tracking: each `ladder run`, `train` and `tune` as an MLflow run, its models and
tuning trials as nested runs. Off unless `tracking.mlflow` or $MLFLOW_TRACKING_URI names a
tracking URI; MLflow is imported only then."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ladder import __version__
from ladder.config import Config
from ladder.errors import LadderError
from ladder.tracking.base import Tracker
from ladder.tracking.mlflow_tracker import MlflowTracker
from ladder.tracking.null import NullTracker
from ladder.tracking.records import config_params
from ladder.tracking.server import host_port, tracking_uri, unreachable
from ladder.urls import redacted

__all__ = ["Tracker", "open_tracker"]


def open_tracker(
    config: Config, run_dir: Path, kind: str = "run", label: str | None = None
) -> Tracker:
    """The tracker of one `ladder <kind>` ("run", "train" or "tune") writing to `run_dir`;
    use it as `with tracker:` around the work.

    The null tracker when no tracking URI is set, in a torchrun worker other than rank 0, and
    (with one warning) when an http(s) server does not answer; with `tracking.required`, an
    unreachable server is a LadderError naming its host and port.
    """
    uri = tracking_uri(config)
    if uri is None or _other_worker():
        return NullTracker()
    why = unreachable(uri)
    if why is not None:
        if config.tracking.required:
            raise LadderError(
                f"tracking.mlflow: MLflow server {host_port(uri)} unreachable ({why}); "
                "tracking.required is true"
            )
        warnings.warn(
            f"tracking: MLflow server {redacted(uri)} unreachable ({why}); "
            "training goes on without tracking",
            RuntimeWarning,
            stacklevel=2,
        )
        return NullTracker()
    tags = {
        "ladder.run_dir": str(Path(run_dir).resolve()),
        "ladder.command": kind,
        "ladder.version": __version__,
    }
    experiment = config.tracking.experiment or config.name
    return MlflowTracker(
        uri, experiment, label or config.name, config_params(config), tags, config.tracking.required
    )


def _other_worker() -> bool:
    """Whether this process is a torchrun worker other than rank 0 (rank 0 alone logs)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0"
