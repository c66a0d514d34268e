"""Metrics of a saved artifact on new labelled data (`ladder evaluate ARTIFACT DATA`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.config import DataConfig
from ladder.data import load_dataset, records_where
from ladder.evaluate.metrics import classification_metrics
from ladder.export.artifact import load


def evaluate_artifact(artifact: str | Path, data: str) -> dict[str, Any]:
    """Load the artifact, read `data` the way its training data was read, and score it."""
    model = load(artifact)
    options = model.manifest.get("read_options", {})
    dataset = load_dataset(DataConfig(source=data, target=model.manifest["target"], **options))
    dataset = dataset.with_labels(model.labels, source=data)
    raw = model.check(dataset.X, records_where(data, model.input_spec))
    y_prob = model.predict_proba_raw(raw)
    return classification_metrics(dataset.y, y_prob, model.labels)
