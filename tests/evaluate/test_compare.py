"""Leaderboard pieces on small examples checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ladder.errors import LadderError
from ladder.evaluate.compare import (
    LEADERBOARD_COLUMNS,
    bootstrap_ci,
    build_leaderboard,
    count_params,
    leaderboard_markdown,
    mcnemar_p,
    pareto_front,
    time_predictions,
)


def _labels(n: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and predictions of which exactly `n_right` are correct."""
    y = np.arange(n) % 2
    pred = y.copy()
    pred[n_right:] = 1 - pred[n_right:]
    return y, pred


def test_columns_are_the_contract():
    assert LEADERBOARD_COLUMNS == (
        "model",
        "type",
        "variant_of",
        "accuracy",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "accuracy_delta",
        "f1_macro",
        "roc_auc",
        "log_loss",
        "params",
        "size_bytes",
        "train_seconds",
        "latency_ms",
        "throughput_per_s",
        "mcnemar_p",
        "pareto",
        "status",
    )


# bootstrap_ci


def test_bootstrap_ci_contains_point_accuracy_and_is_seeded():
    y, pred = _labels(100, 80)
    low, high = bootstrap_ci(y, pred, n_resamples=2000, seed=0)
    assert 0.0 <= low < 0.8 < high <= 1.0
    # binomial standard error sqrt(0.8 * 0.2 / 100) = 0.04: the 95% interval is about ±0.08
    assert high - low == pytest.approx(0.157, abs=0.03)
    assert bootstrap_ci(y, pred, n_resamples=2000, seed=0) == (low, high)
    assert bootstrap_ci(y, pred, n_resamples=2000, seed=1) != (low, high)


def test_bootstrap_ci_narrows_with_more_data():
    small = bootstrap_ci(*_labels(50, 40), n_resamples=1000, seed=0)
    large = bootstrap_ci(*_labels(5000, 4000), n_resamples=1000, seed=0)
    assert large[1] - large[0] < (small[1] - small[0]) / 5  # width shrinks like 1/sqrt(n)
    assert large[0] < 0.8 < large[1]


def test_bootstrap_ci_lower_level_is_narrower():
    y, pred = _labels(200, 150)
    wide = bootstrap_ci(y, pred, n_resamples=1000, seed=0, level=0.99)
    narrow = bootstrap_ci(y, pred, n_resamples=1000, seed=0, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([0, 1], [0, 1], n_resamples=0, seed=0))
    assert bootstrap_ci([0, 1, 1], [0, 1, 1], n_resamples=50, seed=0) == (1.0, 1.0)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([0, 1], [0], n_resamples=10, seed=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([0, 1], [0, 1], n_resamples=10, seed=0, level=95)


# mcnemar_p


def test_mcnemar_known_value():
    # b = 10 rows only a gets right, c = 2 only b gets right:
    # p = 2 * P[Binom(12, 0.5) <= 2] = 2 * (1 + 12 + 66) / 4096 = 0.03857
    y = np.ones(15, dtype=int)
    a = np.array([1] * 10 + [0] * 2 + [1, 0, 0])
    b = np.array([0] * 10 + [1] * 2 + [1, 0, 0])  # last 3 rows: both right / both wrong
    assert mcnemar_p(y, a, b) == pytest.approx(158 / 4096)
    assert mcnemar_p(y, b, a) == pytest.approx(158 / 4096)  # symmetric


def test_mcnemar_no_difference():
    y, pred = _labels(20, 15)
    assert mcnemar_p(y, pred, pred) == 1.0
    # b = c = 1: 2 * P[Binom(2, 0.5) <= 1] = 1.5, capped at 1
    assert mcnemar_p([1, 1], [1, 0], [0, 1]) == 1.0


def test_mcnemar_length_mismatch():
    with pytest.raises(ValueError, match="equal lengths"):
        mcnemar_p([0, 1], [0, 1], [0])


# pareto_front


def test_pareto_front():
    # a: best and slowest; b: dominated by c (less accurate, slower); c: fast; d: fastest
    accuracy = [0.95, 0.85, 0.90, 0.70]
    latency = [10.0, 5.0, 2.0, 0.5]
    assert pareto_front(accuracy, latency) == [True, False, True, True]


def test_pareto_front_ties_and_nan():
    # identical models do not dominate each other; equal accuracy but slower is dominated
    assert pareto_front([0.9, 0.9, 0.9], [1.0, 1.0, 2.0]) == [True, True, False]
    # NaN latency counts as slowest: dominated unless it is the most accurate
    assert pareto_front([0.8, 0.9], [1.0, float("nan")]) == [True, True]
    assert pareto_front([0.9, 0.8], [1.0, float("nan")]) == [True, False]
    assert pareto_front([], []) == []


# time_predictions


def test_time_predictions_positive():
    calls = []

    def predict(x):
        calls.append(len(x))
        return [0] * len(x)

    latency_ms, throughput = time_predictions(predict, [1], list(range(256)), repeats=5)
    assert latency_ms > 0
    assert throughput > 0
    # warm-up + 5 timed single calls, then warm-up + max(3, 5 // 5) = 3 batch calls
    assert calls == [1] * 6 + [256] * 4


def test_time_predictions_rejects_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        time_predictions(len, [1], [])


# count_params


def test_count_params_torch_linear():
    torch = pytest.importorskip("torch")
    assert count_params(torch.nn.Linear(3, 2)) == 8  # 3 * 2 weights + 2 biases


def test_count_params_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = np.arange(60) % 3
    # multinomial: coef_ (3, 3) + intercept_ (3,); classes_ and n_iter_ are not counted
    assert count_params(LogisticRegression().fit(x, y)) == 12
    assert count_params(LogisticRegression().fit(x, y % 2)) == 4  # binary: coef_ (1, 3)
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    assert count_params(tree) == tree.tree_.node_count
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    assert count_params(pipe) == 3 * 3 + 12  # scaler mean_, var_, scale_ + the model
    assert count_params(LogisticRegression()) is None  # not fitted: nothing learned
    assert count_params(object()) is None


# build_leaderboard and leaderboard_markdown

ROWS = [
    {"model": "slow", "type": "mlp", "accuracy": 0.80, "log_loss": 0.40, "status": "ok"},
    {"model": "broken", "type": "cnn", "status": "failed: CUDA out of memory"},
    {"model": "best", "type": "logreg", "accuracy": 0.90, "log_loss": 0.50, "params": 1234},
    {"model": "mid", "type": "forest", "accuracy": 0.85, "log_loss": 0.30, "extra": 1},
]


def test_build_leaderboard_columns_and_order():
    df = build_leaderboard(ROWS)
    assert tuple(df.columns) == LEADERBOARD_COLUMNS
    assert list(df["model"]) == ["best", "mid", "slow", "broken"]
    assert list(df["status"]) == ["ok", "ok", "ok", "failed: CUDA out of memory"]
    assert math.isnan(df.loc[1, "params"])  # missing values are NaN
    assert df.loc[0, "params"] == 1234


def test_build_leaderboard_log_loss_ascending_and_failed_last():
    df = build_leaderboard(ROWS, primary="log_loss")
    assert list(df["model"]) == ["mid", "slow", "best", "broken"]
    # failed rows come after every ok row even when their metric would rank first
    rows = [*ROWS, {"model": "odd", "accuracy": 0.99, "status": "failed: timeout"}]
    assert list(build_leaderboard(rows)["model"]) == ["best", "mid", "slow", "odd", "broken"]


def test_build_leaderboard_ranks_cached_rows_with_fresh_ones():
    rows = [
        {"model": "fresh", "accuracy": 0.97, "status": "ok"},
        {"model": "kept", "accuracy": 0.98, "status": "cached"},
        {"model": "gone", "status": "not run"},
        {"model": "broken", "accuracy": 0.99, "status": "failed: boom"},
    ]
    assert list(build_leaderboard(rows)["model"]) == ["kept", "fresh", "broken", "gone"]


def test_build_leaderboard_nan_primary_sorts_after_numbers():
    rows = [{"model": "a"}, {"model": "b", "accuracy": 0.5}]
    assert list(build_leaderboard(rows)["model"]) == ["b", "a"]
    assert list(build_leaderboard([]).columns) == list(LEADERBOARD_COLUMNS)


def test_build_leaderboard_unknown_primary():
    with pytest.raises(LadderError, match="did you mean 'accuracy'"):
        build_leaderboard(ROWS, primary="acuracy")


def test_leaderboard_markdown():
    rows = [
        {
            "model": "best",
            "type": "logreg",
            "accuracy": 0.912345,
            "params": 1234567,
            "size_bytes": 2048,
            "latency_ms": 1234.5,
            "throughput_per_s": 98765.4,
            "mcnemar_p": 1.0,
            "pareto": True,
        },
        {"model": "fast", "type": "tree", "accuracy": 0.8, "latency_ms": 0.012345, "pareto": False},
        {"model": "bad", "type": "cnn", "status": "failed: a | b"},
    ]
    text = leaderboard_markdown(build_leaderboard(rows))
    lines = text.strip().split("\n")
    assert len(lines) == 2 + 3  # header, rule, one line per model
    assert lines[0] == "| " + " | ".join(LEADERBOARD_COLUMNS) + " |"
    assert lines[1].startswith("|---|---|---|---:|")
    assert all(line.count("|") == lines[0].count("|") for line in lines[:2])
    best = lines[2]
    for cell in ("0.9123", "1,234,567", "2,048", "1,230", "98,765", "1.0000", "yes", "ok"):
        assert f" {cell} " in best
    assert " 0.0123 " in lines[3] and " no " in lines[3]
    assert "failed: a \\| b" in lines[4]
    assert " — " in lines[4]


def test_count_params_sees_inside_calibrated_svms_and_boosting():
    from sklearn.datasets import load_iris

    from ladder.models.classical import SPECS

    X, y = load_iris(return_X_y=True)
    specs = {spec.type: spec for spec in SPECS}
    svm = specs["svm"].build(specs["svm"].config_cls(), (4,), 3).fit(X, y)
    boosting = specs["gradient_boosting"].config_cls(max_iter=3)
    hgb = specs["gradient_boosting"].build(boosting, (4,), 3).fit(X, y)
    n_support = svm.calibrated_classifiers_[0].estimator.support_vectors_.size
    assert count_params(svm) > n_support  # support vectors, dual coefficients, intercepts
    n_nodes = sum(len(tree.nodes) for trees in hgb._predictors for tree in trees)
    assert count_params(hgb) == n_nodes
