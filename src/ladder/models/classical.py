"""Classical models (scikit-learn, and LightGBM/XGBoost through their scikit-learn APIs):
configs checked by the estimators' own rules, builders for each task, and safe persistence:
skops with an allowlist of types for scikit-learn, each boosting library's own format
(`ladder.models.boosting`), never pickle.

Each registered type passes its hyperparameters straight to one estimator per task (the
classifier or the regressor of the same name), so any parameter either accepts is accepted at
config time, when the task may not be known yet, and a wrong one is reported with the library's
own message; `task_param_problems` then names those the chosen task's estimator lacks.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ladder.errors import ArtifactError, LadderError, first_line
from ladder.io import atomic_write_bytes
from ladder.models import boosting, tfidf
from ladder.models.spec import ModelSpec

# type -> (module, class) of the estimator that receives the hyperparameters, per task.
# scikit-learn is imported on first use so that reading a config stays fast.
CLASSIFIERS: dict[str, tuple[str, str]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression"),
    "decision_tree": ("sklearn.tree", "DecisionTreeClassifier"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier"),
    "svm": ("sklearn.svm", "SVC"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "knn": ("sklearn.neighbors", "KNeighborsClassifier"),
}
REGRESSORS: dict[str, tuple[str, str]] = {
    "decision_tree": ("sklearn.tree", "DecisionTreeRegressor"),
    "random_forest": ("sklearn.ensemble", "RandomForestRegressor"),
    "svm": ("sklearn.svm", "SVR"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingRegressor"),
    "knn": ("sklearn.neighbors", "KNeighborsRegressor"),
    "mean": ("sklearn.dummy", "DummyRegressor"),
    "linear_regression": ("sklearn.linear_model", "LinearRegression"),
    "ridge": ("sklearn.linear_model", "Ridge"),
    "lasso": ("sklearn.linear_model", "Lasso"),
    "elastic_net": ("sklearn.linear_model", "ElasticNet"),
}
_BY_TASK = {"classification": CLASSIFIERS, "regression": REGRESSORS}

# The scikit-learn estimator each type is known by (its classifier where it has one).
ESTIMATORS: dict[str, tuple[str, str]] = {**REGRESSORS, **CLASSIFIERS}

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
    "mean": {
        key: "mean always predicts the training targets' mean: it takes no parameters; "
        f"remove '{key}'"
        for key in ("strategy", "constant", "quantile")
    },
    **boosting.REJECTED,
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
# of the scikit-learn types contain. Checked with every type and task, binary and multiclass,
# float32/float64 data, every HistGradientBoostingRegressor loss, and each knn algorithm x
# metric above (uniform and distance weights); anything else in a file is refused. The
# regressors need nothing the classifiers do not. The tfidf_* pipelines (binary and
# multiclass, with and without char n-grams and class weights) need nothing more.
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

SKOPS_FILE = "model.skops"


def tasks_of(model_type: str) -> tuple[str, ...]:
    """The tasks a classical type learns: those it has an estimator for."""
    if model_type in boosting.TYPES:
        return tuple(boosting.ESTIMATORS[model_type])
    return tuple(task for task, table in _BY_TASK.items() if model_type in table)


def estimator_class(model_type: str, task: str = "classification") -> type:
    """The class that receives the hyperparameters of `model_type` for `task`."""
    if model_type in boosting.TYPES:
        return boosting.estimator_class(model_type, task)
    module, name = _BY_TASK[task][model_type]
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- configs


class ClassicalConfig(BaseModel):
    """Hyperparameters of a classical model: any parameter of its estimators."""

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


class LightGBMConfig(ClassicalConfig):
    type_name: ClassVar[str] = "lightgbm"
    verbose: Any = -1  # LightGBM otherwise logs every fit's warnings to stdout


class XGBoostConfig(ClassicalConfig):
    type_name: ClassVar[str] = "xgboost"
    verbosity: Any = 0


class MeanConfig(ClassicalConfig):
    type_name: ClassVar[str] = "mean"


class LinearRegressionConfig(ClassicalConfig):
    type_name: ClassVar[str] = "linear_regression"


class RidgeConfig(ClassicalConfig):
    type_name: ClassVar[str] = "ridge"


class LassoConfig(ClassicalConfig):
    type_name: ClassVar[str] = "lasso"


class ElasticNetConfig(ClassicalConfig):
    type_name: ClassVar[str] = "elastic_net"


def default_params(model_type: str) -> dict[str, Any]:
    """The hyperparameters of `model_type` with their defaults (ladder's where it sets one):
    the classifier's, then those only the regressor has. A boosting type whose library is not
    installed shows ladder's defaults only."""
    if model_type in tfidf.TYPES:  # explicit fields, not an estimator's parameters
        return tfidf.default_params(model_type)
    specs = [*SPECS, *BOOSTING_SPECS]
    config_cls = next(spec.config_cls for spec in specs if spec.type == model_type)
    params: dict[str, Any] = {}
    try:
        for task in tasks_of(model_type):
            own = estimator_class(model_type, task)().get_params(deep=False)
            params.update({k: v for k, v in own.items() if k not in params})
    except LadderError:  # an optional library that is missing
        params = {}
    params.update(config_cls().model_dump())
    return {k: v for k, v in params.items() if k not in REJECTED.get(model_type, {})}


def param_problems(model_type: str, params: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Every invalid hyperparameter of `model_type` as (key, value, message), checked against
    the union of its estimators' parameters (a value passes if one estimator that has the key
    accepts it): the task may be known only once the data is read."""
    rejected = REJECTED.get(model_type, {})
    names = {task: _param_names(model_type, task) for task in tasks_of(model_type)}
    valid = sorted(set().union(*names.values()) - set(rejected))
    problems = []
    for key, value in params.items():
        if key in rejected:
            problems.append((key, value, rejected[key]))
        elif key not in valid:
            problems.append((key, value, _unknown_message(key, model_type, valid)))
        elif model_type == "knn" and key == "metric" and value not in KNN_METRICS:
            problems.append((key, value, f"knn metric must be one of {', '.join(KNN_METRICS)}"))
        else:
            found = [
                _value_problem(estimator_class(model_type, task), key, value)
                for task in names
                if key in names[task]
            ]
            if all(found):
                problems.append((key, value, str(found[0])))
    return problems


def task_param_problems(model_type: str, params: dict[str, Any], task: str) -> list[str]:
    """One line per hyperparameter that `model_type`'s estimator for `task` does not take
    (or takes with other values), or why the type cannot learn `task` at all; for the run
    layer once the task is known. Config validation has checked the rest."""
    tasks = tasks_of(model_type)
    if task not in tasks:
        return [f"{model_type} cannot learn {task} (it learns {', '.join(tasks)})"]
    cls = estimator_class(model_type, task)
    names = _param_names(model_type, task)
    rejected = REJECTED.get(model_type, {})
    problems = []
    for key, value in params.items():
        if key in rejected:
            continue  # reported at config time
        if key not in names:
            other = next((t for t in tasks if key in _param_names(model_type, t)), None)
            why = f" (it is a {other} option)" if other else ""
            problems.append(f"{key}: {cls.__name__} takes no {key}{why}; remove it")
        else:
            message = _value_problem(cls, key, value)
            if message:
                problems.append(f"{key}: {message}")
    return problems


def _param_names(model_type: str, task: str) -> set[str]:
    """The hyperparameters `model_type`'s estimator for `task` takes."""
    names = set(estimator_class(model_type, task)().get_params(deep=False))
    if model_type in boosting.TYPES:
        names |= set(boosting.EXTRA_PARAMS[model_type])
        if task != "classification":
            names -= set(boosting.CLASSIFICATION_ONLY[model_type])
    return names


def _value_problem(cls: type, key: str, value: Any) -> str | None:
    """scikit-learn's message when `cls` refuses `value` for `key`; None when it accepts it
    or has no validation of its own (the boosting libraries check values when fitting)."""
    if not hasattr(cls, "_parameter_constraints"):
        return None
    try:
        cls(**{key: value})._validate_params()
    except (ValueError, TypeError) as exc:  # InvalidParameterError is both
        return str(exc)
    return None


def _unknown_message(key: str, model_type: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown parameter '{key}' for {model_type}; did you mean '{close[0]}'?"
    if not valid:
        return f"unknown parameter '{key}' for {model_type} (it takes no parameters)"
    return f"unknown parameter '{key}' for {model_type} (parameters: {', '.join(valid)})"


# ----------------------------------------------------------------------------- building


def build(config: ClassicalConfig, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """An unfitted classifier with the config's hyperparameters (shape and classes unused)."""
    estimator = estimator_class(config.type_name)(**config.model_dump())
    if config.type_name == "svm":
        from sklearn.calibration import CalibratedClassifierCV

        # scikit-learn 1.9's replacement for the deprecated SVC(probability=True)
        return CalibratedClassifierCV(estimator, ensemble=False)
    return estimator


def build_regressor(config: ClassicalConfig, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    """An unfitted regressor with the config's hyperparameters (shape and outputs unused)."""
    return estimator_class(config.type_name, "regression")(**config.model_dump())


def with_seed(estimator: Any, seed: int) -> Any:
    """Set every unset `random_state` of the estimator (and the one it wraps) to `seed`."""
    for key in _param_keys(estimator, "random_state"):
        if estimator.get_params()[key] is None:
            estimator.set_params(**{key: seed})
    return estimator


def with_class_weight(estimator: Any, model_type: str) -> Any:
    """Set `class_weight="balanced"` where the user left it unset; LadderError if unsupported
    (a regressor, or a classifier without class weights)."""
    from sklearn.base import is_regressor

    if is_regressor(estimator):
        raise LadderError(
            f"{model_type}: balance: class_weight is for classification; remove it for regression"
        )
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


def save_classical(estimator: Any, folder: Path, model_type: str) -> str:
    """Write a fitted classical model into `folder`, atomically, and return its file name:
    scikit-learn models as skops (`model.skops`), LightGBM and XGBoost in their own formats."""
    if model_type in boosting.TYPES:
        return boosting.save(estimator, folder, model_type)
    save_estimator(estimator, Path(folder) / SKOPS_FILE)
    return SKOPS_FILE


def load_classical(folder: Path, file_name: str, model_type: str) -> Any:
    """Load the model `save_classical` wrote as `file_name` in `folder`; ArtifactError for a
    missing, unexpected, untrusted or inconsistent file.

    LightGBM and XGBoost load as a `boosting.BoostedModel` (`predict`, `predict_proba`).
    """
    path = Path(folder) / file_name
    expected = boosting.FILES.get(model_type, SKOPS_FILE)
    if file_name != expected:
        raise ArtifactError(f"{path}: a {model_type} model is saved as {expected}")
    if model_type not in boosting.TYPES:
        return load_estimator(path, model_type)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    found = boosting.read(path, model_type)
    try:  # before the library sees the file: it follows the trees' indices unchecked
        valid = all(_valid_nodes(*tree, found.n_features) for tree in boosting.trees(found))
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a readable {model_type} model file ({exc!r})") from exc
    if not valid:
        raise ArtifactError(f"{path}: inconsistent boosted tree (damaged or tampered file)")
    try:
        return boosting.open_model(found)
    except Exception as exc:  # LightGBMError, XGBoostError
        first = first_line(exc)[:200]
        raise ArtifactError(f"{path}: not a readable {model_type} model file ({first})") from exc


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
    classes = [estimator_class(model_type, task) for task in tasks_of(model_type)]
    if model_type != "svm" or type(estimator) in classes[1:]:  # the SVR is not calibrated
        return type(estimator) in classes
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
    "logistic_regression": "logistic regression (scikit-learn LogisticRegression); "
    "classification only",
    "decision_tree": "decision tree (DecisionTreeClassifier / DecisionTreeRegressor)",
    "random_forest": "random forest (RandomForestClassifier / RandomForestRegressor)",
    "svm": "support vector machine: SVC with calibrated probabilities / SVR",
    "gradient_boosting": "histogram gradient boosting "
    "(HistGradientBoostingClassifier / HistGradientBoostingRegressor)",
    "knn": "k nearest neighbours (KNeighborsClassifier / KNeighborsRegressor)",
    "mean": "the training targets' mean (DummyRegressor), the floor every regression "
    "leaderboard shows; regression only",
    "linear_regression": "ordinary least squares (LinearRegression); regression only",
    "ridge": "least squares with an L2 penalty (Ridge); regression only",
    "lasso": "least squares with an L1 penalty (Lasso); regression only",
    "elastic_net": "least squares with L1 and L2 penalties (ElasticNet); regression only",
}


def _spec(cls: type[ClassicalConfig]) -> ModelSpec:
    tasks = tasks_of(cls.type_name)
    return ModelSpec(
        cls.type_name,
        "classical",
        cls,
        build if "classification" in tasks else None,
        _SUMMARIES[cls.type_name],
        tasks=tasks,  # type: ignore[arg-type]
        build_regressor=build_regressor if "regression" in tasks else None,
    )


# The scikit-learn types: the classification ladder's six, then the regression-only ones.
SPECS: list[ModelSpec] = [
    _spec(cls)
    for cls in (
        LogisticRegressionConfig,
        DecisionTreeConfig,
        RandomForestConfig,
        SVMConfig,
        GradientBoostingConfig,
        KNNConfig,
        MeanConfig,
        LinearRegressionConfig,
        RidgeConfig,
        LassoConfig,
        ElasticNetConfig,
    )
]

BOOSTING_SPECS: list[ModelSpec] = [
    ModelSpec(
        cls.type_name,
        "classical",
        cls,
        boosting.build,
        boosting.SUMMARIES[cls.type_name],
        tasks=("classification", "regression"),
        build_regressor=boosting.build_regressor,
    )
    for cls in (LightGBMConfig, XGBoostConfig)
]
