"""Classical models: config validation, building, seeds, class weights, safe persistence."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import make_classification, make_friedman1
from sklearn.metrics import r2_score
from sklearn.neighbors import KDTree
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from ladder.config import format_validation_error
from ladder.errors import ArtifactError, LadderError
from ladder.models import classical
from ladder.models.classical import (
    SPECS,
    load_classical,
    load_estimator,
    save_classical,
    save_estimator,
    task_param_problems,
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


# ----------------------------------------------------------------------------- regression

REGRESSORS = ["decision_tree", "random_forest", "svm", "gradient_boosting", "knn", *REGRESSION_ONLY]
# scikit-learn's alpha=1 shrinks every friedman1 coefficient to (nearly) zero
REGRESSION_PARAMS = {**FAST, "lasso": {"alpha": 0.05}, "elastic_net": {"alpha": 0.05}}


@pytest.fixture(scope="module")
def friedman() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_friedman1(n_samples=200, random_state=0)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def new_rows() -> np.ndarray:
    """Rows a model was not fitted on (on its own rows, knn's distance weights divide by
    distances of ~0, where the last bit of a float32 distance decides the prediction)."""
    return make_friedman1(n_samples=50, random_state=1)[0]


def make_regressor(model_type: str, **params):
    """An unfitted, seeded regressor of `model_type` built through its config."""
    spec = next(s for s in SPECS if s.type == model_type)
    config = spec.config_cls.model_validate(params)
    return with_seed(spec.builder("regression")(config, (10,), 1), 0)


def test_types_learn_either_task_where_scikit_learn_has_both():
    tasks = {spec.type: spec.tasks for spec in SPECS}
    assert tasks["logistic_regression"] == ("classification",)
    for model_type in REGRESSORS[:5]:
        assert tasks[model_type] == ("classification", "regression")
    for model_type in REGRESSION_ONLY:
        spec = next(s for s in SPECS if s.type == model_type)
        assert tasks[model_type] == ("regression",) and spec.build is None
        assert spec.summary.endswith("regression only")


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_each_regressor_fits_and_beats_the_mean(model_type, friedman):
    x, y = friedman
    params = REGRESSION_PARAMS.get(model_type, {})
    model = make_regressor(model_type, **params).fit(x[:150], y[:150])
    assert type(model).__name__.endswith(
        ("Regressor", "SVR", "Regression", "Ridge", "Lasso", "Net")
    )
    prediction = model.predict(x[150:])
    assert prediction.shape == (50,)
    floor = r2_score(y[150:], make_regressor("mean").fit(x[:150], y[:150]).predict(x[150:]))
    if model_type == "mean":
        assert np.all(prediction == y[:150].mean()) and floor < 0.01
    else:
        assert r2_score(y[150:], prediction) > floor + 0.3


def test_svm_regressor_is_a_plain_svr():
    model = make_regressor("svm", C=2.0, epsilon=0.2)
    assert type(model).__name__ == "SVR" and (model.C, model.epsilon) == (2.0, 0.2)


REGRESSION_ROUND_TRIPS = (
    [(t, REGRESSION_PARAMS.get(t, {})) for t in REGRESSORS]
    + [
        ("knn", {"algorithm": algorithm, "metric": metric, "weights": weights})
        for algorithm, metric in [
            ("ball_tree", "minkowski"),
            ("kd_tree", "manhattan"),
            ("ball_tree", "chebyshev"),
            ("brute", "cosine"),
        ]
        for weights in ("uniform", "distance")
    ]
    + [("gradient_boosting", {"max_iter": 5, "loss": "poisson"})]
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("model_type", "params"), REGRESSION_ROUND_TRIPS)
def test_regressor_save_load_round_trip_gives_identical_predictions(
    model_type, params, dtype, friedman, new_rows, tmp_path
):
    x, y = friedman
    model = make_regressor(model_type, **params).fit(x.astype(dtype), y)
    name = save_classical(model, tmp_path, model_type)
    assert name == "model.skops" and [p.name for p in tmp_path.iterdir()] == [name]
    loaded = load_classical(tmp_path, name, model_type)
    assert type(loaded) is type(model)
    rows = new_rows.astype(dtype)
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))


def test_classifiers_save_and_load_through_the_dispatch_as_before(data, tmp_path):
    model = make("random_forest", n_estimators=5).fit(*data)
    name = save_classical(model, tmp_path, "random_forest")
    assert name == "model.skops"
    loaded = load_classical(tmp_path, name, "random_forest")
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), model.predict_proba(data[0]))


def test_load_classical_refuses_the_wrong_file_or_type(friedman, tmp_path):
    save_classical(make_regressor("ridge").fit(*friedman), tmp_path, "ridge")
    with pytest.raises(ArtifactError, match="holds a Ridge, expected lasso"):
        load_classical(tmp_path, "model.skops", "lasso")
    with pytest.raises(ArtifactError, match=r"a lightgbm model is saved as model\.lightgbm\.txt"):
        load_classical(tmp_path, "model.skops", "lightgbm")
    with pytest.raises(ArtifactError, match=r"a ridge model is saved as model\.skops"):
        load_classical(tmp_path, "other.skops", "ridge")


def test_load_classical_refuses_untrusted_types(tmp_path):
    import skops.io as sio

    sio.dump({"model": Sneaky()}, tmp_path / "model.skops")
    with pytest.raises(ArtifactError, match="refusing to load untrusted types"):
        load_classical(tmp_path, "model.skops", "linear_regression")


def test_regression_tree_with_out_of_range_child_is_refused(friedman, tmp_path):
    tree = make_regressor("decision_tree").fit(*friedman)
    cls, args, state = tree.tree_.__reduce__()
    nodes = state["nodes"].copy()
    nodes["right_child"][0] = 10**6
    crafted = cls(*args)
    crafted.__setstate__({**state, "nodes": nodes})
    tree.tree_ = crafted
    save_classical(tree, tmp_path, "decision_tree")
    with pytest.raises(ArtifactError, match="inconsistent decision tree"):
        load_classical(tmp_path, "model.skops", "decision_tree")


def test_with_seed_works_for_regressors():
    assert make_regressor("random_forest").random_state == 0
    assert make_regressor("gradient_boosting", random_state=5).random_state == 5
    assert "random_state" not in make_regressor("svm").get_params()


def test_class_weight_is_for_classification_only():
    with pytest.raises(LadderError, match="random_forest: balance: class_weight is for classif"):
        with_class_weight(make_regressor("random_forest"), "random_forest")


# ----------------------------------------------------------------------------- task parameters


def test_config_accepts_the_union_of_both_tasks_parameters():
    forest = CONFIGS["random_forest"].model_validate({"class_weight": "balanced"})
    assert forest.model_dump() == {"class_weight": "balanced"}  # the classifier's
    CONFIGS["random_forest"].model_validate({"criterion": "squared_error"})  # the regressor's
    CONFIGS["random_forest"].model_validate({"criterion": "gini"})  # the classifier's
    assert CONFIGS["svm"].model_validate({"epsilon": 0.3}).model_dump() == {"epsilon": 0.3}


def test_a_value_neither_task_accepts_is_refused_with_the_classifiers_message():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["random_forest"].model_validate({"criterion": "nonsense"})
    assert "The 'criterion' parameter of RandomForestClassifier" in messages(exc)["criterion"]


def test_unknown_parameters_of_regression_types_suggest_the_nearest():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["ridge"].model_validate({"alpah": 1.0})
    assert messages(exc) == {"alpah": "unknown parameter 'alpah' for ridge; did you mean 'alpha'?"}


def test_mean_takes_no_parameters():
    assert CONFIGS["mean"]().model_dump() == {} and classical.default_params("mean") == {}
    with pytest.raises(ValidationError) as exc:
        CONFIGS["mean"].model_validate({"strategy": "median", "foo": 1})
    found = messages(exc)
    assert "mean always predicts the training targets' mean" in found["strategy"]
    assert found["foo"] == "unknown parameter 'foo' for mean (it takes no parameters)"


def test_task_param_problems_names_what_the_tasks_estimator_lacks():
    params = {"class_weight": "balanced", "criterion": "gini", "n_estimators": 5}
    weight, criterion = task_param_problems("random_forest", params, "regression")
    assert weight == (
        "class_weight: RandomForestRegressor takes no class_weight (it is a classification "
        "option); remove it"
    )
    assert criterion.startswith("criterion: The 'criterion' parameter of RandomForestRegressor")
    assert criterion.endswith("Got 'gini' instead.")  # scikit-learn lists the valid ones
    assert task_param_problems("random_forest", params, "classification") == []
    assert task_param_problems("svm", {"epsilon": 0.1}, "classification") == [
        "epsilon: SVC takes no epsilon (it is a regression option); remove it"
    ]
    assert task_param_problems("logistic_regression", {}, "regression") == [
        "logistic_regression cannot learn regression (it learns classification)"
    ]
    assert task_param_problems("ridge", {"alpha": 2.0}, "regression") == []


def test_default_params_show_both_tasks():
    params = classical.default_params("svm")
    assert params["epsilon"] == 0.1 and "probability" not in params  # SVR's, SVC's rejected
    assert classical.default_params("ridge")["alpha"] == 1.0
