"""Metrics of a saved artifact on new labelled data (`ladder evaluate ARTIFACT DATA`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ladder.errors import DataError


def evaluate_artifact(artifact: str | Path, data: str) -> dict[str, Any]:
    """Load the artifact, read `data` the way its training data was read, and score it."""
    from ladder.config import DataConfig
    from ladder.data import load_dataset
    from ladder.evaluate.metrics import classification_metrics
    from ladder.export.artifact import load

    model = load(artifact)
    options = model.manifest.get("read_options", {})
    dataset = load_dataset(DataConfig(source=data, target=model.manifest["target"], **options))
    y_true = _to_artifact_classes(dataset.y, dataset.labels, model.labels, data)
    y_prob = model.predict_proba_raw(dataset.X)
    return classification_metrics(y_true, y_prob, model.labels)


def _to_artifact_classes(
    y: np.ndarray, data_labels: list[Any], model_labels: list[Any], source: str
) -> np.ndarray:
    """Re-index class ids of the new data onto the artifact's label order."""
    position = {_key(label): i for i, label in enumerate(model_labels)}
    unknown = [label for label in data_labels if _key(label) not in position]
    if unknown:
        raise DataError(
            f"{source}: labels {unknown} were not seen in training (the model knows {model_labels})"
        )
    lookup = np.array([position[_key(label)] for label in data_labels], dtype=np.int64)
    return lookup[y]


def _key(label: Any) -> str:
    """Labels compare by text, so 3 from a CSV matches '3' from an image folder name."""
    return str(label)
