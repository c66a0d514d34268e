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
from collections.abc import Callable, Iterator
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
    if params.get("n_jobs") is None:  # not in the config: a machine's cores are not a run's
        params["n_jobs"] = default_jobs()
    return estimator_class(config.type_name, task)(**params)


def default_jobs() -> int:
    """Threads for a fit whose config sets no n_jobs: half the cores this process may use (a
    container's share, not the host's), at least 1.

    Both libraries ask for physical cores, not hyperthreads, and their OpenMP threads wait
    for each other by spinning: with every core busy elsewhere (other rungs, tests, a server)
    a 2-thread fit of a small table took 2-5 s instead of 0.01 s on a 2-core machine.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // 2)


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
class ModelFile:
    """A saved LightGBM/XGBoost model, parsed in Python but not yet given to its library: its
    trees are checked first (`trees`), as the libraries trust their files' indices."""

    model_type: str
    text: str
    model: dict[str, Any]  # LightGBM: {"header": {...}, "trees": [{...}]}; XGBoost: its JSON
    n_classes: int  # 0: a regressor
    n_features: int


@dataclass
class BoostedModel:
    """A LightGBM or XGBoost model read from its file; predicts as the estimator it was saved
    from did: `predict` (values, or class indices) and `predict_proba` (classes 0..k-1)."""

    model_type: str
    booster: Any
    n_classes: int  # 0: a regressor
    n_features_in_: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.n_classes == 0:
            return self._values(x)
        return self.predict_proba(x).argmax(axis=1)

    @property
    def predict_proba(self) -> Callable[[np.ndarray], np.ndarray]:
        """Class probabilities (N, n_classes); a regressor has none (`hasattr` says so, as
        for scikit-learn's regressors)."""
        if self.n_classes == 0:
            raise AttributeError(f"a {self.model_type} regressor has no predict_proba")
        return self._probabilities

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        values = self._values(x)
        return np.column_stack([1.0 - values, values]) if values.ndim == 1 else values

    def _values(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got shape {x.shape}")
        if self.model_type == "lightgbm":
            return self.booster.predict(x)
        return self.booster.inplace_predict(x)


def read(path: Path, model_type: str) -> ModelFile:
    """Parse a file written by `save` (without the library); ArtifactError if it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        if model_type == "lightgbm":
            return _read_lightgbm(text)
        return _read_xgboost(text)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{path}: not a readable {model_type} model file ({exc!r})") from exc


def open_model(found: ModelFile) -> BoostedModel:
    """The library's model of a checked `ModelFile`."""
    if found.model_type == "lightgbm":
        # without tree_sizes LightGBM parses the trees one after the other and raises on a
        # bad one; with them it parses in parallel threads, where an error aborts the process
        lines = found.text.splitlines(keepends=True)
        text = "".join(line for line in lines if not line.startswith("tree_sizes="))
        booster = library("lightgbm").Booster(model_str=text)
    else:
        booster = library("xgboost").Booster()
        booster.load_model(bytearray(found.text.encode("utf-8")))
    return BoostedModel(found.model_type, booster, found.n_classes, found.n_features)


def _read_lightgbm(text: str) -> ModelFile:
    body = text.split("\nend of trees", 1)[0]
    blocks = body.split("\nTree=")
    header = dict(line.split("=", 1) for line in blocks[0].splitlines() if "=" in line)
    trees = [
        dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        for block in blocks[1:]
    ]
    objective = header["objective"].split()[0]
    n_classes = 0
    if objective in ("binary", "multiclass", "multiclassova"):
        n_classes = 2 if objective == "binary" else int(header["num_class"])
    model = {"header": header, "trees": trees}
    return ModelFile("lightgbm", text, model, n_classes, int(header["max_feature_idx"]) + 1)


def _read_xgboost(text: str) -> ModelFile:
    model = json.loads(text)
    learner = model["learner"]
    objective = learner["objective"]["name"]
    n_classes = 0
    if objective.startswith("binary:"):
        n_classes = 2
    elif objective.startswith("multi:"):
        n_classes = int(learner["learner_model_param"]["num_class"])
    n_features = int(learner["learner_model_param"]["num_feature"])
    return ModelFile("xgboost", text, model, n_classes, n_features)


def trees(found: ModelFile) -> Iterator[tuple[np.ndarray, ...]]:
    """Every tree of a parsed model as (left, right, feature, is_leaf) over one node array, for
    the bounds checks of `ladder.models.classical`; ArtifactError for node arrays of the wrong
    length and for categorical or linear trees, which ladder's numeric features never need."""
    if found.model_type == "lightgbm":
        for tree in found.model["trees"]:
            yield _lightgbm_nodes(tree)
        return
    for tree in found.model["learner"]["gradient_booster"]["model"]["trees"]:
        if any(tree["split_type"]) or tree["categories"]:
            raise ArtifactError("categorical splits are not supported")
        n_nodes = int(tree["tree_param"]["num_nodes"])
        arrays = ("left_children", "right_children", "split_indices", "split_conditions")
        if any(len(tree[key]) != n_nodes for key in (*arrays, "default_left", "base_weights")):
            raise ArtifactError("a tree's node arrays differ in length")
        left, right, feature = (np.asarray(tree[key], dtype=np.int64) for key in arrays[:3])
        yield left, right, feature, left == -1


def _lightgbm_nodes(tree: dict[str, str]) -> tuple[np.ndarray, ...]:
    """A LightGBM tree (internal nodes 0..n-2; a negative child c is leaf ~c) as one array:
    internal nodes first, then leaf j at n-1+j."""
    if int(tree.get("num_cat", "0")) != 0 or int(tree.get("is_linear", "0")) != 0:
        raise ArtifactError("categorical or linear trees are not supported")
    n_leaves = int(tree["num_leaves"])
    n_inner = n_leaves - 1

    def numbers(key: str, count: int, dtype: type) -> np.ndarray:
        values = np.array(tree[key].split() if count else [], dtype=dtype)
        if len(values) != count:
            raise ArtifactError(f"a tree's {key} has {len(values)} values, not {count}")
        return values

    numbers("leaf_value", n_leaves, np.float64)
    numbers("threshold", n_inner, np.float64)
    if np.any(numbers("decision_type", n_inner, np.int64) & 1):  # bit 0: a categorical split
        raise ArtifactError("categorical splits are not supported")
    left, right, feature = (
        numbers(key, n_inner, np.int64) for key in ("left_child", "right_child", "split_feature")
    )

    def node_index(children: np.ndarray) -> np.ndarray:
        inner = np.where(children < n_inner, children, -1)  # an index past the inner nodes
        return np.where(children >= 0, inner, n_inner + ~children)

    leaf = np.arange(n_inner + n_leaves) >= n_inner
    pad = np.zeros(n_leaves, dtype=np.int64)
    return (
        np.concatenate([node_index(left), pad]),
        np.concatenate([node_index(right), pad]),
        np.concatenate([feature, pad]),
        leaf,
    )
