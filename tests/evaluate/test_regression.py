"""Regression metrics, bootstrap intervals, the paired test and conformal intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_rel
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from ladder.evaluate.regression import (
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    conformal_radius,
    interval_coverage,
    regression_bootstrap_ci,
    regression_metrics,
    squared_error_p,
)


def _data(n: int, noise: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets away from 0 and predictions off by Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(5, 15, size=n)
    return y, y + rng.normal(0, noise, size=n)


# regression_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    y, pred = _data(200, seed=seed)
    metrics = regression_metrics(y, pred)
    assert set(metrics) == set(REGRESSION_METRICS)  # no notes when every metric is defined
    assert metrics["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert metrics["r2"] == pytest.approx(r2_score(y, pred), rel=1e-12)
    assert metrics["mape"] == pytest.approx(mean_absolute_percentage_error(y, pred), rel=1e-12)
    assert all(type(metrics[key]) is float for key in REGRESSION_METRICS)


def test_metrics_accept_column_arrays():
    y, pred = _data(30)
    assert regression_metrics(y[:, None], pred[:, None]) == regression_metrics(y, pred)


def test_metrics_hand_checked():
    metrics = regression_metrics([1.0, 2.0, 4.0], [2.0, 2.0, 2.0])
    assert metrics["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert metrics["mae"] == pytest.approx(1.0)
    assert metrics["mape"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert metrics["r2"] == pytest.approx(1 - 5 / (14 / 3))


def test_mape_skipped_when_a_target_is_zero():
    metrics = regression_metrics([0.0, 1.0, 0.0, 3.0], [0.5, 1.0, 0.1, 2.0])
    assert metrics["mape"] is None
    assert metrics["notes"] == ["mape skipped: 2 test targets are 0"]
    assert metrics["mae"] == pytest.approx((0.5 + 0 + 0.1 + 1) / 4)


def test_r2_none_for_constant_targets():
    metrics = regression_metrics([0.1] * 7, np.linspace(0, 1, 7))
    assert metrics["r2"] is None
    assert len(metrics["notes"]) == 1 and metrics["notes"][0].startswith("r2 skipped")
    assert metrics["mape"] is not None


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([1.0, 2.0], [1.0], "y_pred has 1 rows but y_true has 2"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "y_true has 1 non-finite"),
        ([1.0, 2.0], [np.inf, 2.0], "y_pred has 1 non-finite"),
        (np.ones((3, 2)), np.ones(3), r"shape \(n,\) or \(n, 1\), got \(3, 2\)"),
    ],
)
def test_metrics_reject_bad_inputs(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        regression_metrics(y_true, y_pred)


def test_lower_is_better():
    assert set(REGRESSION_METRICS) - LOWER_IS_BETTER == {"r2"}


# regression_bootstrap_ci


@pytest.mark.parametrize("metric", REGRESSION_METRICS)
def test_bootstrap_contains_point_estimate_and_is_seeded(metric):
    y, pred = _data(300)
    low, high = regression_bootstrap_ci(y, pred, metric, n_resamples=500, seed=0)
    assert low < regression_metrics(y, pred)[metric] < high
    assert regression_bootstrap_ci(y, pred, metric, n_resamples=500, seed=0) == (low, high)
    assert regression_bootstrap_ci(y, pred, metric, n_resamples=500, seed=1) != (low, high)


def test_bootstrap_narrows_with_more_rows():
    small = regression_bootstrap_ci(*_data(50), n_resamples=500, seed=0)
    large = regression_bootstrap_ci(*_data(5000), n_resamples=500, seed=0)
    assert large[1] - large[0] < (small[1] - small[0]) / 3


def test_bootstrap_chunks_give_the_same_interval(monkeypatch):
    y, pred = _data(100)
    whole = regression_bootstrap_ci(y, pred, "r2", n_resamples=300, seed=3)
    monkeypatch.setattr("ladder.evaluate.regression._MAX_BOOTSTRAP_CELLS", 100 * 7)
    assert regression_bootstrap_ci(y, pred, "r2", n_resamples=300, seed=3) == whole


def test_bootstrap_edge_cases():
    y, pred = _data(20)
    assert all(math.isnan(v) for v in regression_bootstrap_ci(y, pred, n_resamples=0))
    zero = regression_bootstrap_ci([0.0, 1.0, 2.0], [0.5, 1.0, 2.5], "mape", n_resamples=50)
    assert all(math.isnan(v) for v in zero)
    constant = regression_bootstrap_ci([3.0, 3.0, 3.0], [1.0, 2.0, 3.0], "r2", n_resamples=50)
    assert all(math.isnan(v) for v in constant)
    assert regression_bootstrap_ci([1.0, 2.0], [1.0, 2.0], "mae", n_resamples=50) == (0.0, 0.0)
    with pytest.raises(ValueError, match="did you mean 'rmse'"):
        regression_bootstrap_ci(y, pred, "rsme")
    with pytest.raises(ValueError, match="level"):
        regression_bootstrap_ci(y, pred, level=95)
    with pytest.raises(ValueError, match="n_resamples"):
        regression_bootstrap_ci(y, pred, n_resamples=-1)


# squared_error_p


def test_squared_error_p_identical_predictions():
    y, pred = _data(100)
    assert squared_error_p(y, pred, pred.copy()) == 1.0


def _two_models(n: int, noise_a: float, noise_b: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Targets and the predictions of two models whose errors are independent noise."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(5, 15, size=n)
    return y, y + rng.normal(0, noise_a, size=n), y + rng.normal(0, noise_b, size=n)


def test_squared_error_p_clearly_better_model():
    y, good, bad = _two_models(500, noise_a=0.5, noise_b=2.0)
    assert squared_error_p(y, good, bad) < 1e-6


def test_squared_error_p_symmetric_and_matches_scipy():
    y, a, b = _two_models(80, noise_a=1.0, noise_b=1.1, seed=4)
    p = squared_error_p(y, a, b)
    assert 0.01 < p < 1
    assert squared_error_p(y, b, a) == p
    expected = ttest_rel((y - a) ** 2, (y - b) ** 2).pvalue
    assert p == pytest.approx(expected, rel=1e-9)


def test_squared_error_p_edge_cases():
    # every row: a errs by 1, b by 2, so the difference is -3 with no variance
    assert squared_error_p([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]) == 0.0
    assert math.isnan(squared_error_p([1.0], [2.0], [3.0]))
    with pytest.raises(ValueError, match="pred_b has 1 rows"):
        squared_error_p([1.0, 2.0], [1.0, 2.0], [1.0])


# conformal intervals


def test_conformal_coverage_on_fresh_rows():
    rng = np.random.default_rng(0)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(-2, 2, size=n)
        truth = 3 * x + 1
        return truth + rng.standard_t(df=5, size=n), truth  # heavy-ish tails, not Gaussian

    radius = conformal_radius(*rows(2000), level=0.9)
    y_test, pred_test = rows(2000)
    coverage, width = interval_coverage(y_test, pred_test - radius, pred_test + radius)
    assert 0.87 <= coverage <= 0.93
    assert width == pytest.approx(2 * radius)


def test_conformal_radius_rank():
    residuals = np.arange(1.0, 10.0)  # 9 rows with absolute residuals 1..9
    # (9 + 1) * 0.5 = 5: the 5th smallest residual
    assert conformal_radius(residuals, np.zeros(9), level=0.5) == 5.0
    # (9 + 1) * 0.9 = 9 exactly (in floats too): the largest residual, not inf
    assert conformal_radius(-residuals, np.zeros(9), level=0.9) == 9.0
    assert conformal_radius(residuals, np.zeros(9), level=0.95) == math.inf  # 9.5 > 9 rows


def test_conformal_radius_rejects_bad_level_and_empty():
    with pytest.raises(ValueError, match="level"):
        conformal_radius([1.0], [1.0], level=1.0)
    with pytest.raises(ValueError, match="empty"):
        conformal_radius([], [], level=0.9)


def test_interval_coverage_hand_checked():
    coverage, width = interval_coverage([1.0, 2.0, 5.0, 3.0], [0, 2, 0, 3.5], [1, 4, 4, 4])
    assert coverage == 0.5  # rows 0 and 1: bounds are inclusive
    assert width == pytest.approx((1 + 2 + 4 + 0.5) / 4)
    assert interval_coverage([1.0], [-math.inf], [math.inf]) == (1.0, math.inf)
    with pytest.raises(ValueError, match="lower exceeds upper in 1 rows"):
        interval_coverage([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])
