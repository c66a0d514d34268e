"""What a served model answers, one class per task, chosen once when the model loads: its
output tensors (Open Inference Protocol metadata and arrays) and its `/v1` predictions.

- classification: "probabilities" FP32 [-1, n_classes] (columns in label order) and "label"
  [-1] (INT64 when every label is an integer, else BYTES); `/v1`: the label and a
  probability per class.
- regression: "prediction" FP32 [-1], one value per row in the target's units; with a
  split-conformal interval in the artifact also "lower" and "upper" FP32 [-1]. The shape is
  [-1] ([n], not [n, 1]): one number per row, as "label" is, so a client's
  `as_numpy("prediction")` holds the values as `ladder.load(...).predict` returns them.
  `/v1`: `{"prediction": x}` per row (with "lower" and "upper"), from the float64 values.

The batcher runs `LoadedModel.predict_outputs_raw` on merged requests and splits its outputs
back by rows (axis 0): class probabilities (n, n_classes) or values (n,).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ladder.errors import ArtifactError
from ladder.export.artifact import LoadedModel
from ladder.serve.tensors import TensorSpec

PROBABILITIES, LABEL = "probabilities", "label"
PREDICTION, LOWER, UPPER = "prediction", "lower", "upper"


class Outputs(Protocol):
    """What one task's models answer."""

    specs: list[TensorSpec]  # the output tensors, in the order answers list them

    def of_batch(self, outputs: np.ndarray) -> np.ndarray:
        """A batch's outputs (from `predict_outputs_raw`) as the batcher splits them."""
        ...

    def empty(self) -> np.ndarray:
        """The outputs of a request of no rows."""
        ...

    def tensors(self, outputs: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """The output tensors called `names` (known names only) of a request's outputs."""
        ...

    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        """A `/v1` answer's fields (besides `model_name`), one prediction per row."""
        ...

    def schema(self) -> dict[str, Any]:
        """What the "try it" page needs to show an answer: task, labels, interval."""
        ...


class ClassificationOutputs:
    """Class probabilities and the most probable label."""

    def __init__(self, labels: list[Any]) -> None:
        self.labels = labels
        integer_labels = all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in labels
        )
        self.label_datatype = "INT64" if integer_labels else "BYTES"
        self.specs = [
            TensorSpec(PROBABILITIES, "FP32", [-1, len(labels)]),
            TensorSpec(LABEL, self.label_datatype, [-1]),
        ]

    def of_batch(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.astype(np.float32)

    def empty(self) -> np.ndarray:
        return np.zeros((0, len(self.labels)), dtype=np.float32)

    def tensors(self, outputs: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        return {
            name: outputs if name == PROBABILITIES else self.label_array(outputs.argmax(axis=1))
            for name in names
        }

    def label_array(self, classes: np.ndarray) -> np.ndarray:
        """The labels of class indices, as the "label" output's datatype."""
        if self.label_datatype == "INT64":
            return np.asarray([int(self.labels[c]) for c in classes], dtype=np.int64)
        array = np.empty(len(classes), dtype=object)
        array[:] = [str(self.labels[c]).encode("utf-8") for c in classes]
        return array

    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        labels = [str(v) for v in self.labels]
        return {
            "labels": labels,
            "predictions": [
                {
                    "label": self.labels[int(p.argmax())],
                    "probabilities": dict(zip(labels, map(float, p), strict=True)),
                }
                for p in outputs
            ],
        }

    def schema(self) -> dict[str, Any]:
        return {"task": "classification", "labels": [str(v) for v in self.labels], "interval": None}


class RegressionOutputs:
    """One value per row, and a split-conformal interval around it when the artifact has one."""

    def __init__(self, interval: dict[str, Any] | None) -> None:
        self.level = float(interval["level"]) if interval else None
        self.radius = float(interval["radius"]) if interval else None
        names = [PREDICTION, LOWER, UPPER] if interval else [PREDICTION]
        self.specs = [TensorSpec(name, "FP32", [-1]) for name in names]

    def of_batch(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs, dtype=np.float64).reshape(len(outputs))

    def empty(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float64)

    def columns(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """prediction (and lower, upper) of each row, float64."""
        if self.radius is None:
            return {PREDICTION: values}
        return {PREDICTION: values, LOWER: values - self.radius, UPPER: values + self.radius}

    def tensors(self, outputs: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        columns = self.columns(outputs)
        return {name: columns[name].astype(np.float32) for name in names}

    def answer(self, outputs: np.ndarray) -> dict[str, Any]:
        columns = self.columns(outputs)
        rows = zip(*columns.values(), strict=True)
        return {
            "predictions": [
                {name: _number(v) for name, v in zip(columns, row, strict=True)} for row in rows
            ]
        }

    def schema(self) -> dict[str, Any]:
        interval = None if self.level is None else {"level": self.level}
        return {"task": "regression", "labels": [], "interval": interval}


def _number(value: float) -> float | None:
    """A JSON number; null for a non-finite value (JSON has no NaN nor infinity)."""
    value = float(value)
    return value if math.isfinite(value) else None


def task_outputs(loaded: LoadedModel) -> Outputs:
    """The outputs of a loaded artifact's task; ArtifactError for a task ladder cannot serve."""
    if loaded.task == "classification":
        return ClassificationOutputs(loaded.labels)
    if loaded.task == "regression":
        return RegressionOutputs(loaded.manifest.get("interval"))
    raise ArtifactError(
        f"model {loaded.manifest.get('name')!r}: cannot serve task {loaded.task!r} "
        "(expected classification or regression)"
    )
