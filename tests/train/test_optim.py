"""Optimizers, schedules, initialisation and the L1 penalty."""

from __future__ import annotations

import io
import math
from itertools import pairwise

import pytest
import torch
from torch import nn

from ladder.config import OptimizerConfig, SchedulerConfig
from ladder.train.optim import (
    build_optimizer,
    build_scheduler,
    init_weights,
    l1_penalty,
    optimizer_step,
)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def lrs(optimizer_lr: float, cfg: SchedulerConfig, epochs: int, steps: int) -> list[float]:
    """The learning rate used at each of epochs * steps optimizer steps."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=optimizer_lr)
    scheduler = build_scheduler(optimizer, cfg, epochs, steps)
    out = []
    for _ in range(epochs * steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("adagrad", torch.optim.Adagrad),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_each_optimizer_builds_and_steps(name, cls):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = build_optimizer(net, OptimizerConfig(name=name, lr=0.1, momentum=0.5))
    assert isinstance(optimizer, cls)
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(8, 4)).pow(2).mean().backward()
    optimizer.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))


def test_sgd_momentum_and_nesterov():
    cfg = OptimizerConfig(name="sgd", momentum=0.9, nesterov=True)
    group = build_optimizer(tiny_net(), cfg).param_groups[0]
    assert (group["momentum"], group["nesterov"]) == (0.9, True)


def test_weight_decay_applies_to_all_parameters_in_one_group():
    net = tiny_net()
    optimizer = build_optimizer(net, OptimizerConfig(name="adam", weight_decay=0.1))
    (group,) = optimizer.param_groups
    assert group["weight_decay"] == 0.1
    assert len(group["params"]) == len(list(net.parameters()))


def test_frozen_parameters_are_not_optimized():
    net = tiny_net()
    net[0].weight.requires_grad_(False)
    (group,) = build_optimizer(net, OptimizerConfig()).param_groups
    assert all(p is not net[0].weight for p in group["params"])
    assert len(group["params"]) == len(list(net.parameters())) - 1


def test_linear_warmup_values():
    cfg = SchedulerConfig(name="none", warmup_epochs=1)
    assert lrs(0.1, cfg, epochs=2, steps=4) == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1]
    )


def test_constant_schedule_needs_no_scheduler():
    optimizer = build_optimizer(tiny_net(), OptimizerConfig())
    assert build_scheduler(optimizer, SchedulerConfig(name="none"), 3, 4) is None


def test_fractional_warmup():
    cfg = SchedulerConfig(name="none", warmup_epochs=0.5)
    assert lrs(1.0, cfg, epochs=1, steps=4) == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_step_schedule_decays_every_step_size_epochs():
    cfg = SchedulerConfig(name="step", step_size=2, gamma=0.5)
    got = lrs(1.0, cfg, epochs=5, steps=2)
    assert got == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_cosine_after_warmup_decays_to_min_lr():
    cfg = SchedulerConfig(name="cosine", warmup_epochs=1, min_lr=0.01)
    got = lrs(0.1, cfg, epochs=5, steps=4)
    assert got[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert got[4] == pytest.approx(0.1)
    middle = 0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 8 / 16))
    assert got[12] == pytest.approx(middle)
    assert all(a >= b for a, b in pairwise(got[4:]))
    assert got[-1] > 0.01 and got[-1] == pytest.approx(0.01, abs=1e-3)


def test_onecycle_warms_up_from_lr_over_25_then_anneals():
    got = lrs(1.0, SchedulerConfig(name="onecycle"), epochs=10, steps=10)
    assert got[28] < got[29] == pytest.approx(1.0)  # warm-up: 30% of the 100 steps
    assert got[0] == pytest.approx(1 / 25 + (1 - 1 / 25) / 30)
    assert max(got) == pytest.approx(1.0) and got[30] == pytest.approx(1.0)
    assert got[-1] < 0.01


@pytest.mark.parametrize("name", ["none", "step", "cosine", "onecycle"])
def test_scheduler_state_dict_saves_and_loads_weights_only(name):
    net = tiny_net()
    optimizer = build_optimizer(net, OptimizerConfig(lr=0.1))
    scheduler = build_scheduler(optimizer, SchedulerConfig(name=name, warmup_epochs=1), 3, 5)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    fresh_opt = build_optimizer(tiny_net(), OptimizerConfig(lr=0.1))
    fresh = build_scheduler(fresh_opt, SchedulerConfig(name=name, warmup_epochs=1), 3, 5)
    fresh.load_state_dict(state)
    fresh_opt.step()
    fresh.step()
    optimizer.step()
    scheduler.step()
    assert fresh.get_last_lr() == pytest.approx(scheduler.get_last_lr())


@pytest.mark.parametrize("scheme", ["xavier", "kaiming"])
def test_init_schemes_change_weights_and_zero_biases(scheme):
    net, reference = tiny_net(), tiny_net()
    init_weights(net, scheme)
    assert not torch.equal(net[0].weight, reference[0].weight)
    assert not torch.equal(net[3].weight, reference[3].weight)
    assert torch.count_nonzero(net[0].bias) == 0 and torch.count_nonzero(net[3].bias) == 0
    assert torch.equal(net[1].weight, reference[1].weight)  # batchnorm untouched


def test_init_default_leaves_weights_alone():
    net, reference = tiny_net(), tiny_net()
    init_weights(net, "default")
    for a, b in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_xavier_and_kaiming_scales():
    torch.manual_seed(0)
    layer = nn.Linear(400, 400)
    init_weights(layer, "kaiming")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.05)
    init_weights(layer, "xavier")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.05)


def test_l1_penalty_sums_weights_only():
    net = tiny_net()
    with torch.no_grad():
        net[0].bias.fill_(100.0)
        net[1].weight.fill_(100.0)
    expected = net[0].weight.abs().sum() + net[3].weight.abs().sum()
    assert l1_penalty(net).item() == pytest.approx(expected.item())


def test_l1_penalty_has_gradient_sign_of_weights():
    layer = nn.Linear(3, 2)
    l1_penalty(layer).backward()
    assert torch.equal(layer.weight.grad, torch.sign(layer.weight.detach()))
    assert layer.bias.grad is None


def test_optimizer_step_when_the_grad_scaler_skips_the_first_step():
    net = nn.Linear(2, 1)
    optimizer = build_optimizer(net, OptimizerConfig(name="sgd", lr=0.1))
    scheduler = build_scheduler(optimizer, SchedulerConfig(name="cosine"), 1, 4)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(net(torch.ones(1, 2)).sum()).backward()
    net.weight.grad[0, 0] = float("inf")  # as fp16 gradients overflow while the scale is high
    before = net.weight.detach().clone()
    # torch warns when the schedule steps before the optimizer did; pytest makes that an error
    optimizer_step(optimizer, scheduler, scaler, net.parameters(), 1.0, step=0)
    assert torch.equal(net.weight, before)  # skipped
    assert scheduler.last_epoch == 1 and scaler.get_scale() < 2.0**16


def test_linear_schedule_with_warmup_fraction_decays_to_min_lr():
    cfg = SchedulerConfig(name="linear", warmup_fraction=0.2)
    got = lrs(1.0, cfg, epochs=2, steps=5)  # 10 steps: 2 of warm-up, 8 of linear decay
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])


def test_warmup_fraction_alone_makes_a_scheduler():
    cfg = SchedulerConfig(name="none", warmup_fraction=0.5)
    assert lrs(1.0, cfg, epochs=1, steps=4) == pytest.approx([0.5, 1.0, 1.0, 1.0])


class Grouped(nn.Module):
    """A module with its own parameter groups (as the pretrained model has)."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 4), nn.Linear(4, 2)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        return [
            {"params": list(self.head.parameters()), "lr": lr, "weight_decay": weight_decay},
            {"params": list(self.body.parameters()), "lr": lr / 10, "weight_decay": 0.0},
        ]


def test_a_module_may_bring_its_own_parameter_groups():
    optimizer = build_optimizer(Grouped(), OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.5))
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (0.1, 0.5),
        (0.01, 0.0),
    ]
    cfg = SchedulerConfig(name="linear")
    scheduler = build_scheduler(optimizer, cfg, epochs=1, steps_per_epoch=2)
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.005])
