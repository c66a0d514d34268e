"""Classification metrics on small examples checked by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from ladder.config import METRIC_NAMES
from ladder.errors import LadderError
from ladder.evaluate import METRICS, classification_metrics, metric_value, validation_metrics

KEYS = {
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "roc_auc",
    "log_loss",
    "confusion_matrix",
    "labels",
}

# 3 classes, 4 rows: rows 0, 1, 3 right, row 2 (a "2") predicted as 1.
Y3 = np.array([0, 1, 2, 2])
P3 = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])


def test_perfect_prediction():
    y = np.array([0, 1, 2, 2])
    m = classification_metrics(y, np.eye(3)[y], ["a", "b", "c"])
    assert set(m) == KEYS
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc"):
        assert m[key] == 1.0, key
    assert 0 <= m["log_loss"] < 1e-12  # clipped, so finite
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert m["labels"] == ["a", "b", "c"]


def test_binary_example():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.8])
    m = classification_metrics(y, np.column_stack([1 - p1, p1]), [0, 1])
    assert m["accuracy"] == 0.5
    assert m["precision_macro"] == m["recall_macro"] == m["f1_macro"] == 0.5
    assert m["roc_auc"] == 0.75  # 3 of the 4 (positive, negative) pairs ranked right
    # -(ln 0.9 + ln 0.4 + ln 0.4 + ln 0.8) / 4
    assert m["log_loss"] == pytest.approx(0.540271, abs=1e-6)
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]


def test_multiclass_example():
    m = classification_metrics(Y3, P3, ["x", "y", "z"])
    assert m["accuracy"] == 0.75
    # per class precision 1, 1/2, 1; recall 1, 1, 1/2; F1 1, 2/3, 2/3 (supports 1, 1, 2)
    assert m["precision_macro"] == pytest.approx(2.5 / 3)
    assert m["recall_macro"] == pytest.approx(2.5 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2.5 / 3)
    assert m["f1_macro"] == pytest.approx(7 / 9)
    assert m["f1_weighted"] == pytest.approx(0.75)
    # one-vs-rest AUCs: 1, 2/3, 0.875 (class 2 has one tie at 0.3)
    assert m["roc_auc"] == pytest.approx((1 + 2 / 3 + 0.875) / 3)
    assert m["log_loss"] == pytest.approx(-np.log([0.7, 0.4, 0.3, 0.8]).mean())
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_missing_class_gives_no_auc_and_no_warning():
    y = np.array([0, 0, 1, 1])  # class 2 never occurs, but is predicted once
    p = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    m = classification_metrics(y, p, [0, 1, 2])
    assert m["roc_auc"] is None
    assert m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.75  # mean recall over the classes present: (1 + 1/2) / 2
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert math.isnan(metric_value("roc_auc", y, p))


def test_constant_predictor_of_the_class_priors():
    y = np.array([0, 0, 0, 1])
    m = classification_metrics(y, np.tile([0.75, 0.25], (4, 1)), ["neg", "pos"])
    assert m["accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.5
    assert m["roc_auc"] == 0.5  # every score ties
    assert m["precision_macro"] == 0.375  # class "pos" is never predicted: counts as 0
    assert m["recall_macro"] == 0.5
    assert m["f1_macro"] == pytest.approx((6 / 7) / 2)
    # -(3 ln 0.75 + ln 0.25) / 4
    assert m["log_loss"] == pytest.approx(0.562335, abs=1e-6)


def test_results_are_plain_json_values():
    m = classification_metrics(Y3, P3.astype(np.float32), list(np.array([3, 5, 7])))
    assert m["labels"] == [3, 5, 7] and all(type(v) is int for v in m["labels"])
    assert all(type(m[k]) is float for k in KEYS - {"confusion_matrix", "labels"})
    assert json.loads(json.dumps(m)) == m


def test_float32_probabilities_that_do_not_sum_exactly_to_one():
    logits = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.arange(50) % 4
    m = classification_metrics(y, prob, [0, 1, 2, 3])
    assert 0 <= m["roc_auc"] <= 1


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(Y3, P3[:3], [0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        classification_metrics(Y3, P3, [0, 1])
    with pytest.raises(ValueError, match="class indices"):
        classification_metrics(np.array([0, 1, 2, 3]), P3, [0, 1, 2])
    with pytest.raises(ValueError, match="nan"):
        classification_metrics(Y3, np.full_like(P3, np.nan), [0, 1, 2])


def test_metric_value_matches_classification_metrics():
    full = classification_metrics(Y3, P3, [0, 1, 2])
    for name in METRICS:
        assert metric_value(name, Y3, P3) == pytest.approx(full[name]), name


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(LadderError, match="unknown metric 'acuracy'; did you mean 'accuracy'") as e:
        metric_value("acuracy", Y3, P3)
    assert "metrics: accuracy, balanced_accuracy, f1_macro" in str(e.value)


def test_validation_metrics_always_include_accuracy():
    compute = validation_metrics(["f1_macro", "log_loss"])
    values = compute(Y3, P3)
    assert list(values) == ["accuracy", "f1_macro", "log_loss"]
    assert values["accuracy"] == 0.75
    assert values["f1_macro"] == pytest.approx(7 / 9)
    assert list(validation_metrics([])(Y3, P3)) == ["accuracy"]


def test_validation_metrics_reject_unknown_names_up_front():
    with pytest.raises(LadderError, match="unknown metric 'f1'"):
        validation_metrics(["f1"])


def test_metric_names_match_the_config_schema():
    assert list(METRICS) == list(METRIC_NAMES)


def test_importing_the_package_stays_light():
    code = (
        "import sys, ladder.evaluate; print(sorted({'sklearn', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
