"""Every registered model type passes the conformance suite (`ladder.testing.check_model`)."""

from __future__ import annotations

import pytest

from ladder.registry import MODEL_TYPES
from ladder.testing import check_model

SMALL = {"mlp": {"hidden": [8]}, "cnn": {"channels": [4]}, "random_forest": {"n_estimators": 5}}


@pytest.mark.parametrize("model_type", list(MODEL_TYPES))
def test_every_registered_model_conforms(model_type, tmp_path):
    metrics = check_model(model_type, tmp_path, **SMALL.get(model_type, {}))
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_lenet5_conforms(tmp_path):
    check_model("cnn", tmp_path, arch="lenet5")


def test_a_broken_check_is_reported(tmp_path, monkeypatch):
    import ladder.export.artifact as artifact

    original = artifact.LoadedModel.predict_proba_raw
    monkeypatch.setattr(
        artifact.LoadedModel, "predict_proba_raw", lambda self, raw: original(self, raw)[:, ::-1]
    )
    with pytest.raises(AssertionError, match="check_model: loaded artifact"):
        check_model("logistic_regression", tmp_path)
