"""Classical models: config validation, building, seeds, class weights, safe persistence."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import make_classification
from sklearn.neighbors import KDTree
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from ladder.config import format_validation_error
from ladder.errors import ArtifactError, LadderError
from ladder.models import classical
from ladder.models.classical import (
    SPECS,
    load_estimator,
    save_estimator,
    with_class_weight,
    with_seed,
)

TYPES = ["logistic_regression", "decision_tree", "random_forest", "svm", "gradient_boosting", "knn"]
REGRESSION_ONLY = ["mean", "linear_regression", "ridge", "lasso", "elastic_net"]
CONFIGS = {spec.type: spec.config_cls for spec in SPECS}
FAST = {"gradient_boosting": {"max_iter": 20}, "random_forest": {"n_estimators": 20}}


@pytest.fixture(autouse=True)
def one_thread():
    """OpenMP threads cost far more than they save on these tiny fits (and on shared CPUs)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(
        n_samples=90, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    return x.astype(np.float32), y


def make(model_type: str, seed: int | None = 0, **params):
    """An unfitted estimator of `model_type` built through its config, as the pipeline does."""
    spec = next(s for s in SPECS if s.type == model_type)
    estimator = spec.build(spec.config_cls.model_validate(params), (4,), 3)
    return estimator if seed is None else with_seed(estimator, seed)


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.value.errors()}


# ----------------------------------------------------------------------------- registry and fit


def test_specs_register_the_six_classifier_types_then_the_regression_only_ones():
    assert [s.type for s in SPECS] == TYPES + REGRESSION_ONLY
    assert {s.family for s in SPECS} == {"classical"}
    assert all(s.summary and "tabular" in s.inputs for s in SPECS)


@pytest.mark.parametrize("model_type", TYPES)
def test_each_type_fits_and_predicts_probabilities(model_type, data):
    x, y = data
    estimator = make(model_type, **FAST.get(model_type, {})).fit(x, y)
    prob = estimator.predict_proba(x)
    assert prob.shape == (90, 3)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-6)
    assert (prob.argmax(axis=1) == y).mean() > 0.6  # it learned something


def test_svm_hyperparameters_go_to_the_calibrated_svc():
    estimator = make("svm", C=2.5, kernel="linear", gamma=0.1)
    assert type(estimator).__name__ == "CalibratedClassifierCV"
    assert estimator.ensemble is False
    svc = estimator.estimator
    assert (svc.C, svc.kernel, svc.gamma) == (2.5, "linear", 0.1)
    assert svc.get_params()["probability"] == "deprecated"  # no FutureWarning at fit


def test_logistic_regression_defaults_to_1000_iterations_unless_set():
    assert make("logistic_regression").max_iter == 1000
    assert make("logistic_regression", max_iter=50).max_iter == 50
    assert CONFIGS["logistic_regression"]().model_dump() == {"max_iter": 1000}


# ----------------------------------------------------------------------------- validation


def test_unknown_parameter_suggests_the_nearest_one():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["random_forest"].model_validate({"max_dept": 3})
    assert messages(exc) == {
        "max_dept": "unknown parameter 'max_dept' for random_forest; did you mean 'max_depth'?"
    }


def test_unknown_parameter_without_a_near_match_lists_the_valid_ones():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["knn"].model_validate({"zzz": 1})
    assert "unknown parameter 'zzz' for knn (parameters: algorithm," in messages(exc)["zzz"]


def test_invalid_value_reports_scikit_learns_message():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["random_forest"].model_validate({"max_depth": -1})
    assert messages(exc) == {
        "max_depth": "The 'max_depth' parameter of RandomForestClassifier must be an int in the "
        "range [1, inf) or None. Got -1 instead."
    }


def test_every_problem_is_reported_at_once_with_its_key():
    cls = CONFIGS["svm"]
    with pytest.raises(ValidationError) as exc:
        cls.model_validate({"C": -1, "kernal": "rbf", "probability": True})
    found = messages(exc)
    assert set(found) == {"C", "kernal", "probability"}
    assert found["C"].startswith("The 'C' parameter of SVC must be a float in the range")
    assert "did you mean 'kernel'?" in found["kernal"]
    lines = format_validation_error(exc.value, cls)  # what the config error shows
    assert any(line.startswith("kernal: unknown parameter 'kernal' for svm") for line in lines)


def test_parameters_ladder_cannot_load_are_rejected_at_config_time():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["knn"].model_validate({"metric": "hamming"})
    assert "knn metric must be one of minkowski" in messages(exc)["metric"]
    with pytest.raises(ValidationError) as exc:
        CONFIGS["gradient_boosting"].model_validate({"categorical_features": [0]})
    assert "categorical_features" in messages(exc)


def test_valid_parameters_are_kept_as_given():
    config = CONFIGS["gradient_boosting"].model_validate({"max_iter": 20, "learning_rate": 0.2})
    assert config.model_dump() == {"max_iter": 20, "learning_rate": 0.2}


# ----------------------------------------------------------------------------- seed and balance


def test_with_seed_sets_unset_random_states_only():
    assert make("random_forest", seed=7).random_state == 7
    assert make("random_forest", seed=7, random_state=3).random_state == 3
    assert make("svm", seed=7).estimator.random_state == 7
    knn = make("knn", seed=7)
    assert "random_state" not in knn.get_params()


@pytest.mark.parametrize("model_type", [t for t in TYPES if t != "knn"])
def test_with_class_weight_balances(model_type):
    estimator = with_class_weight(make(model_type), model_type)
    inner = estimator.estimator if model_type == "svm" else estimator
    assert inner.class_weight == "balanced"


def test_with_class_weight_keeps_the_users_weights():
    estimator = with_class_weight(make("decision_tree", class_weight={0: 1, 1: 5}), "decision_tree")
    assert estimator.class_weight == {0: 1, 1: 5}


def test_knn_has_no_class_weight():
    expected = "knn does not support balance: class_weight; use balance: oversample"
    with pytest.raises(LadderError, match=expected):
        with_class_weight(make("knn"), "knn")


# ----------------------------------------------------------------------------- persistence


ROUND_TRIPS = [(t, {}) for t in TYPES] + [
    ("knn", {"algorithm": "ball_tree"}),
    ("knn", {"algorithm": "brute"}),
    ("knn", {"algorithm": "kd_tree", "metric": "manhattan"}),
    ("knn", {"algorithm": "ball_tree", "p": 3, "weights": "distance"}),
]


@pytest.mark.parametrize(("model_type", "params"), ROUND_TRIPS)
def test_save_load_round_trip_gives_identical_probabilities(model_type, params, data, tmp_path):
    x, y = data
    estimator = make(model_type, **{**FAST.get(model_type, {}), **params}).fit(x, y)
    path = tmp_path / "model.skops"
    save_estimator(estimator, path)
    loaded = load_estimator(path, model_type)
    assert type(loaded) is type(estimator)
    np.testing.assert_array_equal(loaded.predict_proba(x), estimator.predict_proba(x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.skops"]  # no temp file left


def test_load_without_a_type_accepts_any_classical_model(data, tmp_path):
    save_estimator(make("decision_tree").fit(*data), tmp_path / "m.skops")
    assert type(load_estimator(tmp_path / "m.skops")).__name__ == "DecisionTreeClassifier"


def test_load_refuses_a_model_of_another_type(data, tmp_path):
    save_estimator(make("decision_tree").fit(*data), tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="holds a DecisionTreeClassifier, expected knn"):
        load_estimator(tmp_path / "m.skops", "knn")


class Sneaky:
    """A class outside the allowlist (loading it would mean importing this test module)."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def shout(x):
    return x


def test_load_refuses_untrusted_types(tmp_path):
    import skops.io as sio

    path = tmp_path / "evil.skops"
    sio.dump({"model": Sneaky()}, path)
    with pytest.raises(
        ArtifactError, match=r"evil\.skops: refusing to load untrusted types"
    ) as exc:
        load_estimator(path)
    assert "Sneaky" in str(exc.value)


def test_load_refuses_a_pipeline_with_a_custom_function(data, tmp_path):
    import skops.io as sio

    pipeline = make_pipeline(FunctionTransformer(shout), make("decision_tree")).fit(*data)
    sio.dump(pipeline, tmp_path / "p.skops")
    with pytest.raises(ArtifactError, match="shout"):
        load_estimator(tmp_path / "p.skops")


def test_load_refuses_a_trusted_estimator_that_is_not_a_ladder_model(data, tmp_path):
    import skops.io as sio

    pipeline = make_pipeline(FunctionTransformer(np.log1p), make("decision_tree"))
    sio.dump(pipeline.fit(np.abs(data[0]), data[1]), tmp_path / "p.skops")
    with pytest.raises(ArtifactError, match="holds a Pipeline, expected one of"):
        load_estimator(tmp_path / "p.skops")


def test_save_refuses_what_load_would_refuse(data, tmp_path):
    pipeline = make_pipeline(FunctionTransformer(shout), make("decision_tree")).fit(*data)
    with pytest.raises(LadderError, match="cannot save Pipeline safely"):
        save_estimator(pipeline, tmp_path / "p.skops")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_missing_file_names_the_file(tmp_path):
    path = tmp_path / "broken.skops"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ArtifactError, match=r"broken\.skops: not a readable skops model file"):
        load_estimator(path)
    with pytest.raises(ArtifactError, match=r"absent\.skops: model file not found"):
        load_estimator(tmp_path / "absent.skops")


def test_tree_with_out_of_range_child_is_refused(data, tmp_path):
    tree = make("decision_tree").fit(*data)
    cls, args, state = tree.tree_.__reduce__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6  # would be followed without bounds checks at predict time
    crafted = cls(*args)
    crafted.__setstate__({**state, "nodes": nodes})
    tree.tree_ = crafted
    save_estimator(tree, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="inconsistent decision tree"):
        load_estimator(tmp_path / "m.skops")


def test_boosted_tree_with_out_of_range_feature_is_refused(data, tmp_path):
    model = make("gradient_boosting", max_iter=3).fit(*data)
    nodes = model._predictors[0][0].nodes
    nodes["feature_idx"][nodes["is_leaf"] == 0] = 99
    save_estimator(model, tmp_path / "m.skops")
    with pytest.raises(ArtifactError, match="inconsistent boosted tree"):
        load_estimator(tmp_path / "m.skops", "gradient_boosting")


def test_knn_index_is_rebuilt_not_trusted(data, tmp_path):
    x, y = data
    knn = make("knn", algorithm="kd_tree").fit(x, y)
    expected = knn.predict_proba(x)
    knn._tree = KDTree(np.zeros((3, 4)))  # a stored index that disagrees with the data
    save_estimator(knn, tmp_path / "m.skops")
    np.testing.assert_array_equal(load_estimator(tmp_path / "m.skops").predict_proba(x), expected)


def test_allowlist_is_only_sklearn_internals():
    assert all(name.startswith("sklearn.") for name in classical.TRUSTED_TYPES)
