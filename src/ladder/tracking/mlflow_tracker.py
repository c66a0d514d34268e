"""Logging a ladder run to MLflow: one parent run per `ladder run`/`train`/`tune`, one nested
run per model folder and per tuning trial. MLflow is imported only here, when a run opens.

A tracking failure never stops training: the first failed call warns once and the tracker goes
quiet. Its HTTP calls retry once and time out after 10 s, and MLflow prints no run links on
stdout (unless the MLFLOW_HTTP_REQUEST_* and MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT variables
say otherwise).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from ladder.console import VERBOSE, say, verbosity
from ladder.errors import LadderError, first_line
from ladder.tracking.records import (
    Metric,
    flatten,
    key,
    number,
    param_text,
    rung_metrics,
    rung_params,
)
from ladder.urls import redacted

_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # stdout carries ladder's results only
}
_TRIAL_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED"}  # PRUNED, RUNNING...: KILLED
_PARAMS_PER_CALL, _METRICS_PER_CALL = 100, 1000  # MLflow's log_batch limits


class MlflowTracker:
    """A Tracker that logs to the MLflow tracking server or store at `uri`.

    Args:
        uri: the tracking URI (http(s)://, sqlite:///, file:, databricks, ...).
        experiment: the MLflow experiment, created when missing.
        run_name: the parent run's name.
        params: the parent run's params (dotted keys, text values).
        tags: the parent run's tags.
        required: a failure to open the parent run raises LadderError instead of a warning.
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        params: dict[str, str],
        tags: dict[str, str],
        required: bool = False,
    ) -> None:
        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        self.params, self.tags, self.required = params, tags, required
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._failed = False
        self._logged: set[Path] = set()

    def __enter__(self) -> MlflowTracker:
        try:
            self._open()
        except Exception as exc:
            if self.required:
                raise LadderError(
                    f"tracking.mlflow: MLflow at {redacted(self.uri)} failed "
                    f"({first_line(exc)}); tracking.required is true"
                ) from exc
            self._fail(exc)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = "FINISHED" if exc_type is None else "FAILED"
        self._call(lambda: self._client.set_terminated(self._parent, status))

    def log_rung(self, model_dir: Path) -> None:
        """A nested run named after the folder: manifest params, per-epoch and test metrics,
        artifact/ (as "artifact") and plots/, tagged ladder.model_dir. Each folder once."""
        folder = Path(model_dir).resolve()
        if folder not in self._logged:
            self._logged.add(folder)
            self._call(lambda: self._log_rung(folder))

    def log_trials(self, model: str, metric: str, trials: list[dict[str, Any]]) -> None:
        """One nested run per trial, "<model> trial <number>": its params, val_<metric>, the
        pruner's val_<metric>_by_epoch, duration_s, tags state and error."""
        for trial in trials:
            self._call(lambda trial=trial: self._log_trial(model, metric, trial))

    def log_report(self, run_dir: Path) -> None:
        """report.html, leaderboard.csv/.md and config.yaml of the run folder, and its tune/
        folder, as artifacts of the parent run."""
        self._call(lambda: self._log_report(Path(run_dir)))

    # ------------------------------------------------------------------------- the steps

    def _open(self) -> None:
        """Create the client, find (or make) the experiment, start the parent run."""
        for name, value in _ENV_DEFAULTS.items():
            os.environ.setdefault(name, value)
        from mlflow.tracking import MlflowClient  # heavy, optional: only when tracking

        if verbosity() < VERBOSE:  # MLflow's INFO lines (database migrations, ...)
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
        self._client = MlflowClient(tracking_uri=self.uri)
        self._experiment_id = self._experiment()
        self._parent = self._start(self.run_name, self.tags)
        self._log(self._parent, self.params, [])
        say(f"tracking: MLflow run {self._where()}")

    def _where(self) -> str:
        """The parent run's page on an http(s) server, else the store and the run's id."""
        if self.uri.startswith(("http://", "https://")):
            page = f"#/experiments/{self._experiment_id}/runs/{self._parent}"
            return f"{redacted(self.uri).rstrip('/')}/{page}"
        return f"{self._parent} in {redacted(self.uri)} (experiment {self.experiment})"

    def _experiment(self) -> str:
        """The experiment's id; created when missing, restored when deleted."""
        from mlflow.exceptions import MlflowException

        found = self._client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self._client.create_experiment(self.experiment)
            except MlflowException:  # another process created it meanwhile
                found = self._client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            self._client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def _start(self, name: str, tags: dict[str, str]) -> str:
        """A new run (nested under the parent once there is one); its id."""
        if self._parent is not None:
            tags = {**tags, "mlflow.parentRunId": self._parent}
        run = self._client.create_run(self._experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def _log(self, run_id: str, params: dict[str, str], metrics: Iterable[Metric]) -> None:
        """Params and metrics of a run, in as few calls as MLflow's batch limits allow."""
        from mlflow.entities import Metric as Point
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        items = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            self._client.log_batch(run_id, params=items[start : start + _PARAMS_PER_CALL])
        now = int(time.time() * 1000)
        points = [Point(k, v, now, step) for k, v, step in metrics]
        for start in range(0, len(points), _METRICS_PER_CALL):
            self._client.log_batch(run_id, metrics=points[start : start + _METRICS_PER_CALL])

    def _log_rung(self, folder: Path) -> None:
        run_id = self._start(folder.name, {"ladder.model_dir": str(folder)})
        self._log(run_id, rung_params(folder), rung_metrics(folder))
        for sub in ("artifact", "plots"):
            if (folder / sub).is_dir():
                self._client.log_artifacts(run_id, str(folder / sub), sub)
        for name in ("metrics.json", "history.csv"):
            if (folder / name).is_file():
                self._client.log_artifact(run_id, str(folder / name))
        self._client.set_terminated(run_id, "FINISHED")

    def _log_trial(self, model: str, metric: str, trial: dict[str, Any]) -> None:
        state = str(trial.get("state", ""))
        tags = {"state": state, "ladder.trial": str(trial.get("number"))}
        if trial.get("error"):
            tags["error"] = str(trial["error"])[:5000]
        run_id = self._start(f"{model} trial {trial.get('number')}", tags)
        params = {key(k): param_text(v) for k, v in flatten(trial.get("params") or {}).items()}
        steps = (trial.get("intermediate") or {}).items()
        raw = [(f"val_{metric}", trial.get("value"), 0), ("duration_s", trial.get("duration_s"), 0)]
        raw += [(f"val_{metric}_by_epoch", value, int(step)) for step, value in steps]
        metrics = [(key(k), x, step) for k, v, step in raw if (x := number(v)) is not None]
        self._log(run_id, params, metrics)
        self._client.set_terminated(run_id, _TRIAL_STATUS.get(state, "KILLED"))

    def _log_report(self, run_dir: Path) -> None:
        for name in ("report.html", "leaderboard.csv", "leaderboard.md", "config.yaml"):
            if (run_dir / name).is_file():
                self._client.log_artifact(self._parent, str(run_dir / name))
        if (run_dir / "tune").is_dir():
            self._client.log_artifacts(self._parent, str(run_dir / "tune"), "tune")

    # ------------------------------------------------------------------------- failures

    def _call(self, step: Callable[[], Any]) -> None:
        """Run one tracking step unless tracking failed before; a failure warns once."""
        if self._failed or self._parent is None:
            return
        try:
            step()
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Turn tracking off for the rest of the run, with one warning saying why."""
        self._failed = True
        warnings.warn(
            f"tracking: MLflow {redacted(self.uri)} failed ({first_line(exc)}); "
            "training goes on without tracking",
            RuntimeWarning,
            stacklevel=3,
        )
