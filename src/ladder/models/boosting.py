"""LightGBM and XGBoost through their scikit-learn APIs: the estimator of each task, quiet and
seeded builds, and persistence in each library's own non-executable format (LightGBM's text
model, XGBoost's JSON), never pickle.

The libraries are optional (`pip install 'ladder-ml[boost]'`) and imported on first use, so that
`import ladder` stays fast. Their configs are declared and validated with the other classical
types in `ladder.models.classical`, which also checks every tree of a loaded model (`trees`).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.errors import ArtifactError, LadderError
from ladder.io import atomic_write_bytes

TYPES = ("lightgbm", "xgboost")

# type -> task -> (module, class) of the estimator that receives the hyperparameters
ESTIMATORS: dict[str, dict[str, tuple[str, str]]] = {
    "lightgbm": {
        "classification": ("lightgbm", "LGBMClassifier"),
        "regression": ("lightgbm", "LGBMRegressor"),
    },
    "xgboost": {
        "classification": ("xgboost", "XGBClassifier"),
        "regression": ("xgboost", "XGBRegressor"),
    },
}

# Library parameters the scikit-learn API passes through without listing them in get_params.
EXTRA_PARAMS: dict[str, tuple[str, ...]] = {"lightgbm": ("verbose",), "xgboost": ()}

# Parameters the regressor accepts but only a classifier uses.
CLASSIFICATION_ONLY: dict[str, tuple[str, ...]] = {
    "lightgbm": ("class_weight",),
    "xgboost": ("scale_pos_weight",),
}

REJECTED: dict[str, dict[str, str]] = {
    "xgboost": {
        "callbacks": "xgboost 'callbacks' are Python code, which a config cannot hold; remove it",
        "early_stopping_rounds": "ladder fits xgboost without a validation set, so "
        "'early_stopping_rounds' cannot be used; remove it",
        "enable_categorical": "xgboost receives ladder's preprocessed numeric features, so "
        "'enable_categorical' cannot be used; remove it",
        "feature_types": "xgboost receives ladder's preprocessed numeric features, so "
        "'feature_types' cannot be used; remove it",
    },
}

FILES = {"lightgbm": "model.lightgbm.txt", "xgboost": "model.xgboost.json"}

SUMMARIES = {
    "lightgbm": "LightGBM gradient boosted trees (LGBMClassifier / LGBMRegressor)",
    "xgboost": "XGBoost gradient boosted trees (XGBClassifier / XGBRegressor)",
}


def library(model_type: str) -> Any:
    """The imported library of a boosting type; a one-line LadderError when it is missing."""
    try:
        return importlib.import_module(model_type)
    except ImportError as exc:
        raise LadderError(f"{model_type} is not installed; pip install 'ladder-ml[boost]'") from exc


def estimator_class(model_type: str, task: str) -> type:
    """The scikit-learn API class of a boosting type for `task`."""
    return getattr(library(model_type), ESTIMATORS[model_type][task][1])


# ----------------------------------------------------------------------------- building


def build(config: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """An unfitted classifier with the config's hyperparameters (shape and classes unused)."""
    return _build(config, "classification")


def build_regressor(config: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    """An unfitted regressor with the config's hyperparameters (shape and outputs unused)."""
    return _build(config, "regression")


def _build(config: Any, task: str) -> Any:
    params = config.model_dump()
    if params.get("n_jobs") is None:  # not in the config: the machine's cores are not the run's
        params["n_jobs"] = _cores()
    return estimator_class(config.type_name, task)(**params)


def _cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------- persistence


def save(estimator: Any, folder: Path, model_type: str) -> str:
    """Write a fitted LightGBM/XGBoost estimator into `folder` in its library's own format,
    atomically; returns the file name."""
    if not any(type(estimator) is estimator_class(model_type, t) for t in ESTIMATORS[model_type]):
        raise LadderError(f"cannot save a {type(estimator).__name__} as a {model_type} model")
    if model_type == "lightgbm":
        data = estimator.booster_.model_to_string().encode("utf-8")
    else:
        data = bytes(estimator.get_booster().save_raw("json"))
    name = FILES[model_type]
    atomic_write_bytes(Path(folder) / name, data)
    return name


@dataclass
class BoostedModel:
    """A LightGBM or XGBoost model read from its file; predicts as the estimator it was saved
    from did: `predict` (values, or class indices) and `predict_proba` (classes 0..k-1)."""

    model_type: str
    booster: Any
    n_classes: int  # 0: a regressor
    n_features_in_: int
    model: dict[str, Any]  # the parsed file: LightGBM's header and trees, XGBoost's JSON

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.n_classes == 0:
            return self._values(x)
        return self.predict_proba(x).argmax(axis=1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.n_classes == 0:
            raise AttributeError(f"a {self.model_type} regressor has no predict_proba")
        values = self._values(x)
        return np.column_stack([1.0 - values, values]) if values.ndim == 1 else values

    def _values(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got shape {x.shape}")
        if self.model_type == "lightgbm":
            return self.booster.predict(x)
        return self.booster.inplace_predict(x)


def load(path: Path, model_type: str) -> BoostedModel:
    """Read a model written by `save`; ArtifactError for a file that is not one."""
    reader = _read_lightgbm if model_type == "lightgbm" else _read_xgboost
    try:
        data = Path(path).read_bytes()
        return reader(data)
    except ArtifactError:
        raise
    except Exception as exc:  # the parsers raise many types for a damaged file
        raise ArtifactError(f"{path}: not a readable {model_type} model file ({exc})") from exc


def _read_lightgbm(data: bytes) -> BoostedModel:
    text = data.decode("utf-8")
    header, trees = _lightgbm_sections(text)
    objective = header["objective"].split()[0]
    classes = int(header["num_class"]) if objective.startswith("multiclass") else 2
    booster = library("lightgbm").Booster(model_str=text)
    n_classes = classes if objective in ("binary", "multiclass", "multiclassova") else 0
    model = {"header": header, "trees": trees}
    return BoostedModel("lightgbm", booster, n_classes, int(header["max_feature_idx"]) + 1, model)


def _lightgbm_sections(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """LightGBM's text model as (header keys, one dict of keys per tree)."""
    body = text.split("end of trees", 1)[0]
    blocks = body.split("\nTree=")
    header = dict(line.split("=", 1) for line in blocks[0].splitlines() if "=" in line)
    trees = [
        dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        for block in blocks[1:]
    ]
    return header, trees


def _read_xgboost(data: bytes) -> BoostedModel:
    model = json.loads(data)
    learner = model["learner"]
    objective = learner["objective"]["name"]
    n_classes = 0
    if objective.startswith("binary:"):
        n_classes = 2
    elif objective.startswith("multi:"):
        n_classes = int(learner["learner_model_param"]["num_class"])
    booster = library("xgboost").Booster()
    booster.load_model(bytearray(data))
    n_features = int(learner["learner_model_param"]["num_feature"])
    return BoostedModel("xgboost", booster, n_classes, n_features, model)


def trees(model: BoostedModel) -> Iterator[tuple[np.ndarray, ...]]:
    """Every tree of a loaded model as (left, right, feature, is_leaf) over one node array, for
    the bounds checks of `ladder.models.classical` (the libraries follow child indices without
    them); ArtifactError for categorical splits, which ladder's numeric features never need."""
    if model.model_type == "lightgbm":
        for tree in model.model["trees"]:
            yield _lightgbm_nodes(tree)
        return
    for tree in model.model["learner"]["gradient_booster"]["model"]["trees"]:
        if any(tree["split_type"]) or tree["categories"]:
            raise ArtifactError("categorical splits are not supported")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        feature = np.asarray(tree["split_indices"], dtype=np.int64)
        if not len(left) == len(right) == len(feature) == int(tree["tree_param"]["num_nodes"]):
            raise ArtifactError("a tree's node arrays differ in length")
        yield left, right, feature, left == -1


def _lightgbm_nodes(tree: dict[str, str]) -> tuple[np.ndarray, ...]:
    """A LightGBM tree (internal nodes 0..n-2; a negative child c is leaf ~c) as one array:
    internal nodes first, then leaf j at n-1+j."""
    if int(tree.get("num_cat", "0")) != 0:
        raise ArtifactError("categorical splits are not supported")
    n_leaves = int(tree["num_leaves"])
    n_inner = n_leaves - 1

    def ints(key: str) -> np.ndarray:
        return np.array(tree[key].split(), dtype=np.int64) if n_inner else np.zeros(0, np.int64)

    def node_index(children: np.ndarray) -> np.ndarray:
        inner = np.where(children < n_inner, children, -1)  # an index past the inner nodes
        return np.where(children >= 0, inner, n_inner + ~children)

    left, right, feature = ints("left_child"), ints("right_child"), ints("split_feature")
    if not len(left) == len(right) == len(feature) == n_inner:
        raise ArtifactError("a tree's node arrays differ in length")
    leaf = np.arange(n_inner + n_leaves) >= n_inner
    pad = np.zeros(n_leaves, dtype=np.int64)
    return (
        np.concatenate([node_index(left), pad]),
        np.concatenate([node_index(right), pad]),
        np.concatenate([feature, pad]),
        leaf,
    )
