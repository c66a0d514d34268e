"""Metrics of a saved artifact on new labelled data (`ladder evaluate ARTIFACT DATA`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.config import DataConfig
from ladder.data import load_dataset, records_where
from ladder.export.artifact import load
from ladder.tasks import get_task


def evaluate_artifact(artifact: str | Path, data: str) -> dict[str, Any]:
    """Load the artifact, read `data` the way its training data was read, and score it."""
    model = load(artifact)
    task = get_task(model.task)
    options = model.manifest.get("read_options", {})
    config = DataConfig(source=data, target=model.manifest["target"], task=task.name, **options)
    dataset = load_dataset(config).with_labels(model.labels, source=data)
    raw = model.check(dataset.X, records_where(data, model.input_spec))
    return task.metrics(dataset.y, model.predict_outputs_raw(raw), model.labels)
