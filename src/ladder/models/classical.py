"""Classical scikit-learn models: configs checked by scikit-learn's own rules, builders, and
safe persistence with skops (an allowlist of types, never pickle).

Each registered type passes its hyperparameters straight to one estimator, so any parameter the
estimator accepts is accepted here, and a wrong one is reported at config time with
scikit-learn's own message.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ladder.errors import ArtifactError, LadderError
from ladder.io import atomic_write_bytes
from ladder.models import tfidf
from ladder.models.spec import ModelSpec

# type -> (module, class) of the estimator that receives the hyperparameters. sklearn is
# imported on first use so that reading a config stays fast.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression"),
    "decision_tree": ("sklearn.tree", "DecisionTreeClassifier"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier"),
    "svm": ("sklearn.svm", "SVC"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "knn": ("sklearn.neighbors", "KNeighborsClassifier"),
}

# Parameters that exist on the estimator but that ladder does not accept, with the reason.
REJECTED: dict[str, dict[str, str]] = {
    "svm": {
        "probability": "svm always predicts probabilities (Platt scaling via "
        "CalibratedClassifierCV); remove 'probability'",
    },
    "gradient_boosting": {
        "categorical_features": "gradient_boosting receives ladder's preprocessed numeric "
        "features, so 'categorical_features' cannot be used; remove it",
    },
}

# knn metrics whose fitted neighbour index loads with the allowlist below.
KNN_METRICS = (
    "minkowski",
    "euclidean",
    "l2",
    "manhattan",
    "cityblock",
    "l1",
    "chebyshev",
    "infinity",
    "cosine",
)

# The scikit-learn internals (beyond the estimators skops trusts by default) that fitted models
# of the six types contain. Checked with every type, binary and multiclass, float32/float64 data,
# and each knn algorithm x metric above; anything else in a file is refused. The tfidf_* pipelines
# (binary and multiclass, with and without char n-grams and class weights) need nothing more.
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
)


def estimator_class(model_type: str) -> type:
    """The scikit-learn class that receives the hyperparameters of `model_type`."""
    module, name = ESTIMATORS[model_type]
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- configs


class ClassicalConfig(BaseModel):
    """Hyperparameters of a classical model: any parameter of its scikit-learn estimator."""

    model_config = ConfigDict(extra="allow")
    type_name: ClassVar[str]

    @model_validator(mode="after")
    def _check_estimator_params(self) -> ClassicalConfig:
        problems = param_problems(self.type_name, self.model_dump())
        if problems:
            details = [
                InitErrorDetails(
                    type=PydanticCustomError("value_error", "{message}", {"message": message}),
                    loc=(key,),
                    input=value,
                )
                for key, value, message in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self


class LogisticRegressionConfig(ClassicalConfig):
    type_name: ClassVar[str] = "logistic_regression"
    max_iter: Any = 1000  # scikit-learn's 100 often stops before convergence


class DecisionTreeConfig(ClassicalConfig):
    type_name: ClassVar[str] = "decision_tree"


class RandomForestConfig(ClassicalConfig):
    type_name: ClassVar[str] = "random_forest"


class SVMConfig(ClassicalConfig):
    type_name: ClassVar[str] = "svm"


class GradientBoostingConfig(ClassicalConfig):
    type_name: ClassVar[str] = "gradient_boosting"


class KNNConfig(ClassicalConfig):
    type_name: ClassVar[str] = "knn"


def default_params(model_type: str) -> dict[str, Any]:
    """The hyperparameters of `model_type` with their defaults (ladder's where it sets one)."""
    if model_type in tfidf.TYPES:  # explicit fields, not an estimator's parameters
        return tfidf.default_params(model_type)
    config_cls = next(spec.config_cls for spec in SPECS if spec.type == model_type)
    params = estimator_class(model_type)().get_params(deep=False)
    params.update(config_cls().model_dump())
    return {k: v for k, v in params.items() if k not in REJECTED.get(model_type, {})}


def param_problems(model_type: str, params: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Every invalid hyperparameter of `model_type` as (key, value, message)."""
    cls = estimator_class(model_type)
    rejected = REJECTED.get(model_type, {})
    valid = sorted(set(cls().get_params(deep=False)) - set(rejected))
    problems = []
    for key, value in params.items():
        if key in rejected:
            problems.append((key, value, rejected[key]))
        elif key not in valid:
            problems.append((key, value, _unknown_message(key, model_type, valid)))
        elif model_type == "knn" and key == "metric" and value not in KNN_METRICS:
            problems.append((key, value, f"knn metric must be one of {', '.join(KNN_METRICS)}"))
        else:
            try:
                cls(**{key: value})._validate_params()
            except (ValueError, TypeError) as exc:  # InvalidParameterError is both
                problems.append((key, value, str(exc)))
    return problems


def _unknown_message(key: str, model_type: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown parameter '{key}' for {model_type}; did you mean '{close[0]}'?"
    return f"unknown parameter '{key}' for {model_type} (parameters: {', '.join(valid)})"


# ----------------------------------------------------------------------------- building


def build(config: ClassicalConfig, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """An unfitted estimator with the config's hyperparameters (shape and classes are unused)."""
    estimator = estimator_class(config.type_name)(**config.model_dump())
    if config.type_name == "svm":
        from sklearn.calibration import CalibratedClassifierCV

        # scikit-learn 1.9's replacement for the deprecated SVC(probability=True)
        return CalibratedClassifierCV(estimator, ensemble=False)
    return estimator


def with_seed(estimator: Any, seed: int) -> Any:
    """Set every unset `random_state` of the estimator (and the one it wraps) to `seed`."""
    for key in _param_keys(estimator, "random_state"):
        if estimator.get_params()[key] is None:
            estimator.set_params(**{key: seed})
    return estimator


def with_class_weight(estimator: Any, model_type: str) -> Any:
    """Set `class_weight="balanced"` where the user left it unset; LadderError if unsupported."""
    keys = _param_keys(estimator, "class_weight")
    if not keys:
        raise LadderError(
            f"{model_type} does not support balance: class_weight; use balance: oversample"
        )
    for key in keys:
        if estimator.get_params()[key] is None:
            estimator.set_params(**{key: "balanced"})
    return estimator


def _param_keys(estimator: Any, name: str) -> list[str]:
    """Keys of `get_params(deep=True)` that name parameter `name` (`estimator__name` included)."""
    return [k for k in estimator.get_params() if k == name or k.endswith(f"__{name}")]


# ----------------------------------------------------------------------------- persistence


def save_estimator(estimator: Any, path: str | Path) -> None:
    """Write a fitted estimator to `path` in the skops format, atomically."""
    import skops.io as sio

    path = Path(path)
    with tfidf.packed_vocabularies(estimator):
        data = sio.dumps(estimator)
    refused = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if refused:  # fail now rather than when the artifact is loaded
        raise LadderError(f"{path}: cannot save {type(estimator).__name__} safely: {refused}")
    atomic_write_bytes(path, data)


def load_estimator(path: str | Path, model_type: str | None = None) -> Any:
    """Load an estimator saved by `save_estimator`; ArtifactError for anything unexpected.

    Args:
        path: the .skops file.
        model_type: the registered type it must be (any classical type when None).
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a damaged zip or schema can fail in many ways
        raise ArtifactError(f"{path}: not a readable skops model file ({exc})") from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactError(f"{path}: refusing to load untrusted types {refused}")
    try:
        estimator = sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable skops model file ({exc})") from exc
    if _check_type(estimator, path, model_type) in tfidf.TYPES:
        tfidf.check_fitted(estimator, path)
    _check_nested(estimator, path)
    return estimator


def _check_type(estimator: Any, path: Path, model_type: str | None) -> str:
    """The type `estimator` is (`model_type` if given); ArtifactError if none fits."""
    candidates = [model_type] if model_type else [*ESTIMATORS, *tfidf.TYPES]
    found = next((t for t in candidates if _is_type(estimator, t)), None)
    if found is None:
        expected = model_type or "one of " + ", ".join(candidates)
        raise ArtifactError(f"{path}: holds a {type(estimator).__name__}, expected {expected}")
    return found


def _is_type(estimator: Any, model_type: str) -> bool:
    if model_type in tfidf.TYPES:
        return tfidf.is_pipeline(estimator, model_type)
    if model_type not in ESTIMATORS:
        return False
    if model_type != "svm":
        return type(estimator) is estimator_class(model_type)
    from sklearn.calibration import CalibratedClassifierCV

    fitted = [c.estimator for c in getattr(estimator, "calibrated_classifiers_", [])]
    return type(estimator) is CalibratedClassifierCV and all(
        type(m) is estimator_class("svm") for m in [estimator.estimator, *fitted]
    )


def _check_nested(estimator: Any, path: Path) -> None:
    """Check the trees and rebuild the neighbour indexes of every estimator in the model.

    scikit-learn follows the node indices of trees and neighbour indexes without bounds checks,
    so a crafted file could otherwise read out-of-bounds memory at predict time.
    """
    for part in _estimators_in(estimator, set()):
        n_features = getattr(part, "n_features_in_", None)
        if hasattr(part, "tree_") and not _valid_tree(part.tree_, n_features):
            raise ArtifactError(f"{path}: inconsistent decision tree (damaged or tampered file)")
        for row in getattr(part, "_predictors", []):
            if not all(_valid_predictor(p, n_features) for p in row):
                raise ArtifactError(f"{path}: inconsistent boosted tree (damaged or tampered file)")
        if hasattr(part, "_fit_X") and hasattr(part, "_tree"):
            _rebuild_neighbor_index(part)


def _estimators_in(obj: Any, seen: set[int]) -> list[Any]:
    """Every scikit-learn estimator reachable from `obj` (itself included)."""
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, list | tuple) or (isinstance(obj, np.ndarray) and obj.dtype == object):
        return [e for item in obj for e in _estimators_in(item, seen)]
    if isinstance(obj, dict):
        return [e for item in obj.values() for e in _estimators_in(item, seen)]
    if not type(obj).__module__.startswith("sklearn.") or not hasattr(obj, "__dict__"):
        return []
    found = [obj] if hasattr(obj, "get_params") else []
    return found + [e for value in vars(obj).values() for e in _estimators_in(value, seen)]


def _valid_tree(tree: Any, n_features: Any) -> bool:
    """A scikit-learn Tree whose children follow their parent and whose features exist."""
    from sklearn.tree._tree import Tree

    if not isinstance(tree, Tree) or not 1 <= tree.node_count <= tree.capacity:
        return False
    left = tree.children_left
    return _valid_nodes(left, tree.children_right, tree.feature, left == -1, n_features)


def _valid_predictor(predictor: Any, n_features: Any) -> bool:
    """A HistGradientBoosting TreePredictor with consistent, non-categorical nodes."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    if not isinstance(predictor, TreePredictor) or len(predictor.nodes) == 0:
        return False
    nodes = predictor.nodes
    leaf = nodes["is_leaf"] != 0
    if np.any(nodes["is_categorical"][~leaf]):
        return False
    return _valid_nodes(nodes["left"], nodes["right"], nodes["feature_idx"], leaf, n_features)


def _valid_nodes(
    left: np.ndarray, right: np.ndarray, feature: np.ndarray, leaf: np.ndarray, n_features: Any
) -> bool:
    """Inner nodes point to later nodes in the array (no cycles) and to existing features."""
    if not isinstance(n_features, int | np.integer):
        return False
    inner = ~np.asarray(leaf, dtype=bool)
    index = np.arange(len(left))[inner]
    children = [np.asarray(c)[inner].astype(np.int64) for c in (left, right)]
    feature = np.asarray(feature)[inner].astype(np.int64)
    return all(np.all((c > index) & (c < len(left))) for c in children) and bool(
        np.all((feature >= 0) & (feature < n_features))
    )


def _rebuild_neighbor_index(estimator: Any) -> None:
    """Rebuild a neighbours estimator's KD/ball tree from its training rows, as `fit` does,
    instead of trusting the index arrays stored in the file."""
    from sklearn.neighbors import BallTree, KDTree

    index_cls = {"ball_tree": BallTree, "kd_tree": KDTree}.get(estimator._fit_method)
    estimator._tree = None
    if index_cls is not None:
        estimator._tree = index_cls(
            estimator._fit_X,
            estimator.leaf_size,
            metric=estimator.effective_metric_,
            **estimator.effective_metric_params_,
        )


# ----------------------------------------------------------------------------- registry

_SUMMARIES = {
    "logistic_regression": "logistic regression (scikit-learn LogisticRegression)",
    "decision_tree": "decision tree (scikit-learn DecisionTreeClassifier)",
    "random_forest": "random forest (scikit-learn RandomForestClassifier)",
    "svm": "support vector machine with calibrated probabilities (SVC)",
    "gradient_boosting": "histogram gradient boosting (HistGradientBoostingClassifier)",
    "knn": "k nearest neighbours (scikit-learn KNeighborsClassifier)",
}

SPECS: list[ModelSpec] = [
    ModelSpec(cls.type_name, "classical", cls, build, _SUMMARIES[cls.type_name])
    for cls in (
        LogisticRegressionConfig,
        DecisionTreeConfig,
        RandomForestConfig,
        SVMConfig,
        GradientBoostingConfig,
        KNNConfig,
    )
]
