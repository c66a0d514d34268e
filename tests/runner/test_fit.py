"""The run's one Trainer set-up: what a rung and a pruned model's fine-tuning train with."""

from __future__ import annotations

import numpy as np

from ladder.config import validate_config
from ladder.runner.fit import trainer_setup
from ladder.tasks import get_task
from ladder.tasks.options import with_task
from ladder.train.objective import Classification, Regression


def _config(task: str, **data):
    """A config as the run sees it once the data decided the task."""
    loss = {"loss": "huber", "huber_delta": 2.0} if task == "regression" else {}
    raw = {
        "name": "t",
        "data": {"source": "x.csv", **data},
        "models": [{"name": "m", "type": "mlp", **loss}],
    }
    return with_task(validate_config(raw), get_task(task))


def test_classification_gets_class_weights_and_validation_metrics():
    config = _config("classification", balance="class_weight")
    y = np.array([0, 0, 0, 1])
    setup = trainer_setup(config, config.model("m"), get_task("classification"), y, 2, None)
    assert isinstance(setup.objective, Classification)
    assert setup.class_weights is not None and setup.class_weights[1] > setup.class_weights[0]
    assert setup.val_metrics is not None and setup.sample_weights is None


def test_oversampling_weighs_the_rare_class_rows():
    config = _config("classification", balance="oversample")
    y = np.array([0, 0, 0, 1])
    setup = trainer_setup(config, config.model("m"), get_task("classification"), y, 2, None)
    assert setup.class_weights is None
    assert setup.sample_weights is not None and setup.sample_weights[3] > setup.sample_weights[0]


def test_regression_gets_its_loss_and_no_class_machinery():
    config = _config("regression")
    y = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    setup = trainer_setup(config, config.model("m"), get_task("regression"), y, 1, None)
    assert setup.objective == Regression("huber", 2.0)
    assert setup.class_weights is None and setup.sample_weights is None
    assert setup.val_metrics is None  # val_loss, in the loss the model trains on
