"""`NumpyOptimizer`: the scratch optimizers as a torch optimizer, checkpointed and resumed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import resumable_fit, same_weights, without_seconds

from ladder.train.numpy_optim import NumpyOptimizer


@pytest.mark.parametrize("crash_at", [5, 9])  # mid-epoch; the first step of epoch 2
def test_a_crashed_numpy_rung_resumes_exactly(tmp_path, blobs, crash_at):
    reference = resumable_fit(tmp_path / "reference", blobs, model_type="scratch_mlp")
    crashed = tmp_path / "crashed"
    assert resumable_fit(crashed, blobs, crash_at=crash_at, model_type="scratch_mlp") is None
    resumed = resumable_fit(crashed, blobs, resume=True, model_type="scratch_mlp")
    assert isinstance(resumed.optimizer, NumpyOptimizer)
    assert same_weights(resumed.module, reference.module)  # dropout masks and Adam state too
    assert without_seconds(resumed.history) == without_seconds(reference.history)


@pytest.mark.parametrize(
    ("rule", "torch_class", "hyper"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
        ("adamw", torch.optim.AdamW, {"weight_decay": 0.1}),
        ("rmsprop", torch.optim.RMSprop, {"momentum": 0.5, "weight_decay": 0.0}),
    ],
)
def test_steps_and_a_schedule_match_torch_optim(rule, torch_class, hyper):
    start = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours, theirs = (torch.nn.Parameter(start.clone()) for _ in range(2))
    numpy_opt = NumpyOptimizer([ours], rule, lr=0.05, **hyper)
    torch_opt = torch_class([theirs], lr=0.05, **hyper)
    schedules = [
        torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5) for o in (numpy_opt, torch_opt)
    ]
    for step in range(20):
        for param, opt in ((ours, numpy_opt), (theirs, torch_opt)):
            opt.zero_grad()
            ((param - step / 10) ** 2).sum().backward()
            opt.step()
        for schedule in schedules:
            schedule.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)
    assert numpy_opt.param_groups[0]["lr"] == pytest.approx(0.05 / 16)


def test_its_state_round_trips_through_a_state_dict():
    param = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = NumpyOptimizer([param], "adam", lr=0.1, weight_decay=0.0)
    param.grad = torch.full_like(param, 0.5)
    opt.step()
    saved = opt.state_dict()
    again = NumpyOptimizer([param], "adam", lr=0.1, weight_decay=0.0)
    again.load_state_dict(saved)
    for key, value in opt.state[param].items():
        assert torch.equal(again.state[param][key], value), key
