"""LightGBM and XGBoost: both tasks fit and predict (missing values included), configs checked
against the libraries' parameters, quiet seeded builds, and native-format persistence."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.datasets import make_classification, make_friedman1

from ladder.errors import ArtifactError, LadderError
from ladder.models import boosting
from ladder.models.classical import (
    BOOSTING_SPECS,
    load_classical,
    save_classical,
    task_param_problems,
    with_class_weight,
    with_seed,
)

TYPES = ["lightgbm", "xgboost"]
TASKS = ["classification", "regression"]
CONFIGS = {spec.type: spec.config_cls for spec in BOOSTING_SPECS}


def tiny(task: str, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Float32 rows with some missing values: classes 0..k-1, or friedman1 targets."""
    if task == "regression":
        x, y = make_friedman1(n_samples=200, random_state=0)
    else:
        x, y = make_classification(
            n_samples=200,
            n_features=5,
            n_informative=3,
            n_redundant=0,
            n_classes=n_classes,
            random_state=0,
        )
    x = x.astype(np.float32)
    x[::5, 1] = np.nan
    x[::7, 3] = np.nan
    return x, y


def make(model_type: str, task: str, **params):
    """An unfitted, seeded estimator built through its config, as the pipeline does."""
    spec = next(s for s in BOOSTING_SPECS if s.type == model_type)
    config = spec.config_cls.model_validate({"n_estimators": 20, **params})
    return with_seed(spec.builder(task)(config, (5,), 3), 0)


def test_specs_register_both_libraries_for_both_tasks():
    assert [s.type for s in BOOSTING_SPECS] == TYPES
    for spec in BOOSTING_SPECS:
        assert spec.family == "classical" and spec.tasks == ("classification", "regression")
        assert spec.build is boosting.build and spec.build_regressor is boosting.build_regressor


@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_fits_and_predicts_probabilities_with_missing_values(model_type, n_classes):
    x, y = tiny("classification", n_classes)
    model = make(model_type, "classification").fit(x, y)
    prob = model.predict_proba(x)
    assert prob.shape == (200, n_classes) and not np.isnan(prob).any()
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-6)
    assert (prob.argmax(axis=1) == y).mean() > 0.8


@pytest.mark.parametrize("model_type", TYPES)
def test_regressor_fits_and_predicts_with_missing_values(model_type):
    x, y = tiny("regression")
    model = make(model_type, "regression").fit(x[:150], y[:150])
    prediction = model.predict(x[150:])
    assert prediction.shape == (50,) and not np.isnan(prediction).any()
    r2 = 1 - ((prediction - y[150:]) ** 2).sum() / ((y[150:] - y[150:].mean()) ** 2).sum()
    assert r2 > 0.5


@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("task", TASKS)
def test_save_load_round_trip_gives_identical_predictions(model_type, task, tmp_path):
    x, y = tiny(task)
    model = make(model_type, task).fit(x, y)
    name = save_classical(model, tmp_path, model_type)
    assert name == boosting.FILES[model_type]
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left, no pickle
    loaded = load_classical(tmp_path, name, model_type)
    assert isinstance(loaded, boosting.BoostedModel)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    if task == "classification":
        np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    else:
        assert not hasattr(loaded, "predict_proba")  # as scikit-learn's regressors
        with pytest.raises(AttributeError, match="regressor has no predict_proba"):
            loaded.predict_proba(x)


@pytest.mark.parametrize("model_type", TYPES)
def test_binary_classifier_round_trip_gives_both_columns(model_type, tmp_path):
    x, y = tiny("classification", 2)
    model = make(model_type, "classification").fit(x, y)
    loaded = load_classical(tmp_path, save_classical(model, tmp_path, model_type), model_type)
    prob = loaded.predict_proba(x)
    assert prob.shape == (200, 2)
    np.testing.assert_array_equal(prob, model.predict_proba(x))


def test_fitting_prints_nothing(capfd):
    for model_type in TYPES:
        for task in TASKS:
            make(model_type, task, n_estimators=3).fit(*tiny(task))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_builds_are_quiet_seeded_and_use_this_machines_cores():
    lgbm = make("lightgbm", "classification")
    assert lgbm.get_params()["verbose"] == -1 and lgbm.random_state == 0
    assert lgbm.n_jobs == boosting.default_jobs() >= 1
    xgbm = make("xgboost", "regression", n_jobs=1, random_state=4)
    assert (xgbm.verbosity, xgbm.n_jobs, xgbm.random_state) == (0, 1, 4)
    assert CONFIGS["lightgbm"]().model_dump() == {"verbose": -1}  # no machine-specific value


# ----------------------------------------------------------------------------- validation


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in exc.value.errors()}


def test_unknown_parameter_suggests_the_nearest_one():
    with pytest.raises(ValidationError) as exc:
        CONFIGS["lightgbm"].model_validate({"num_leaf": 15})
    assert messages(exc) == {
        "num_leaf": "unknown parameter 'num_leaf' for lightgbm; did you mean 'num_leaves'?"
    }
    with pytest.raises(ValidationError) as exc:
        CONFIGS["xgboost"].model_validate({"max_dept": 3, "early_stopping_rounds": 5})
    found = messages(exc)
    assert found["max_dept"].endswith("did you mean 'max_depth'?")
    assert "without a validation set" in found["early_stopping_rounds"]


def test_library_parameters_are_kept_as_given():
    config = CONFIGS["xgboost"].model_validate({"max_depth": 3, "learning_rate": 0.2})
    assert config.model_dump() == {"verbosity": 0, "max_depth": 3, "learning_rate": 0.2}


def test_classification_only_parameters_are_named_for_regression():
    params = {"class_weight": "balanced", "num_leaves": 7}
    assert task_param_problems("lightgbm", params, "classification") == []
    assert task_param_problems("lightgbm", params, "regression") == [
        "class_weight: LGBMRegressor takes no class_weight (it is a classification option); "
        "remove it"
    ]


def test_class_weight_balancing():
    assert with_class_weight(make("lightgbm", "classification"), "lightgbm").class_weight == (
        "balanced"
    )
    with pytest.raises(LadderError, match="xgboost does not support balance: class_weight"):
        with_class_weight(make("xgboost", "classification"), "xgboost")
    with pytest.raises(LadderError, match="is for classification"):
        with_class_weight(make("lightgbm", "regression"), "lightgbm")


def test_a_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost raises ImportError
    with pytest.raises(
        LadderError, match=r"xgboost is not installed; pip install 'ladder-ml\[boost\]'"
    ):
        make("xgboost", "classification")


# ----------------------------------------------------------------------------- damaged files


def saved(model_type: str, tmp_path) -> str:
    model = make(model_type, "classification", n_estimators=3).fit(*tiny("classification"))
    return save_classical(model, tmp_path, model_type)


def test_a_damaged_file_is_refused(tmp_path):
    for model_type in TYPES:
        name = saved(model_type, tmp_path)
        (tmp_path / name).write_text("tree\nversion=v4\ngarbage")
        with pytest.raises(ArtifactError, match=f"not a readable {model_type} model file"):
            load_classical(tmp_path, name, model_type)
    with pytest.raises(ArtifactError, match="model file not found"):
        load_classical(tmp_path / "absent", "model.xgboost.json", "xgboost")


def test_a_lightgbm_tree_with_an_out_of_range_child_is_refused(tmp_path):
    name = saved("lightgbm", tmp_path)
    text = (tmp_path / name).read_text()
    start = text.index("\nleft_child=") + len("\nleft_child=")
    (tmp_path / name).write_text(text[:start] + "99 " + text[start:].split(" ", 1)[1])
    with pytest.raises(ArtifactError, match="inconsistent boosted tree"):
        load_classical(tmp_path, name, "lightgbm")


def test_an_xgboost_tree_with_an_out_of_range_feature_is_refused(tmp_path):
    name = saved("xgboost", tmp_path)
    model = json.loads((tmp_path / name).read_text())
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["split_indices"][0] = 10**6
    (tmp_path / name).write_text(json.dumps(model))
    with pytest.raises(ArtifactError, match="inconsistent boosted tree"):
        load_classical(tmp_path, name, "xgboost")


def test_a_model_of_another_library_is_refused(tmp_path):
    model = make("lightgbm", "regression", n_estimators=2).fit(*tiny("regression"))
    with pytest.raises(LadderError, match="cannot save a LGBMRegressor as a xgboost model"):
        save_classical(model, tmp_path, "xgboost")
