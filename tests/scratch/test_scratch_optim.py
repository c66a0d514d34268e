"""ladder.scratch.optim: every rule and learner against torch.optim, step by step, float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.errors import LadderError
from ladder.scratch import optim
from ladder.scratch.gradcheck import relative_error

TORCH = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
CLASSES = {
    "sgd": optim.SGD,
    "adagrad": optim.AdaGrad,
    "rmsprop": optim.RMSProp,
    "adam": optim.Adam,
    "adamw": optim.AdamW,
}
# (rule, hyperparameters): the same keywords go to the NumPy rule and to torch.optim
CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05, "nesterov": True}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),  # torch's default weight decay 0.01, ours too
    ("adamw", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
]
IDS = [f"{rule}-{'-'.join(f'{k}={v}' for k, v in hyper.items())}" for rule, hyper in CASES]
STEPS = 20


class Problem:
    """A noisy quadratic: g(p, t) = D * (p - target) + noise_t, each array its own D and target."""

    def __init__(self, shapes=((3, 4), (5,)), seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.start = [rng.normal(size=s).astype(dtype) for s in shapes]
        self.scale = [rng.uniform(0.5, 2.0, size=s).astype(dtype) for s in shapes]
        self.target = [rng.normal(size=s).astype(dtype) for s in shapes]
        self.noise = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(STEPS)]

    def grads(self, params, t):
        return [
            d * (p - c) + n
            for p, d, c, n in zip(params, self.scale, self.target, self.noise[t], strict=True)
        ]


def torch_run(rule, hyper, problem, steps=STEPS, lr_at=None):
    """Parameters after each of `steps` torch.optim steps, and the final optimizer."""
    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in problem.start]
    opt = TORCH[rule](params, **hyper)
    history = []
    for t in range(steps):
        if lr_at is not None and t == lr_at[0]:
            opt.param_groups[0]["lr"] = lr_at[1]
        grads = problem.grads([p.detach().numpy() for p in params], t)
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.from_numpy(g)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, opt, params


def assert_states_match(states, opt, torch_params):
    for state, p in zip(states, torch_params, strict=True):
        for key, value in opt.state[p].items():
            if value is None:
                continue  # torch SGD without momentum keeps momentum_buffer=None
            assert relative_error(state[key], value.numpy()) <= 1e-12, key


@pytest.mark.parametrize(("rule", "hyper"), CASES, ids=IDS)
def test_update_rule_matches_torch_for_20_steps(rule, hyper):
    problem = Problem()
    expected, opt, torch_params = torch_run(rule, hyper, problem)
    params = [p.copy() for p in problem.start]
    states = [optim.new_state(rule, p) for p in params]
    held = [dict(s) for s in states]  # the arrays as created, to check they are never rebound
    for t in range(STEPS):
        grads = problem.grads(params, t)
        for p, g, s in zip(params, grads, states, strict=True):
            optim.update(rule, p, g, s, **hyper)
        for mine, theirs in zip(params, expected[t], strict=True):
            assert relative_error(mine, theirs) <= 1e-12, f"step {t + 1}"
    assert_states_match(states, opt, torch_params)
    for state, before in zip(states, held, strict=True):
        assert state.keys() == before.keys()
        assert all(state[k] is before[k] for k in state)
    assert all(float(s["step"]) == STEPS for s in states)


@pytest.mark.parametrize(("rule", "hyper"), CASES, ids=IDS)
def test_learner_class_matches_torch_for_20_steps(rule, hyper):
    problem = Problem(seed=1)
    expected, opt, torch_params = torch_run(rule, hyper, problem)
    params = [p.copy() for p in problem.start]
    learner = CLASSES[rule](params, **hyper)
    assert learner.lr == hyper["lr"]
    held = [dict(s) for s in learner.states]
    for t in range(STEPS):
        learner.step(problem.grads(params, t))
        for mine, theirs in zip(params, expected[t], strict=True):
            assert relative_error(mine, theirs) <= 1e-12, f"step {t + 1}"
    assert learner.params[0] is params[0]  # updated in place, not replaced
    assert_states_match(learner.states, opt, torch_params)
    for state, before in zip(learner.states, held, strict=True):
        assert all(state[k] is before[k] for k in state)


@pytest.mark.parametrize("rule", list(TORCH))
def test_learning_rate_changed_between_steps(rule):
    """`.lr` is read at every step, as torch reads param_groups[0]["lr"] (a schedule)."""
    hyper = {"lr": 0.05, "momentum": 0.5} if rule in ("sgd", "rmsprop") else {"lr": 0.05}
    problem = Problem(seed=2)
    expected, _, _ = torch_run(rule, hyper, problem, lr_at=(10, 0.005))
    params = [p.copy() for p in problem.start]
    learner = CLASSES[rule](params, **hyper)
    for t in range(STEPS):
        if t == 10:
            learner.lr = 0.005
        learner.step(problem.grads(params, t))
    for mine, theirs in zip(params, expected[-1], strict=True):
        assert relative_error(mine, theirs) <= 1e-12


@pytest.mark.parametrize(("rule", "hyper"), [CASES[3], CASES[5], CASES[7], CASES[9], CASES[11]])
def test_state_living_in_torch_memory(rule, hyper):
    """The rung keeps each state array in a torch tensor and passes `.numpy()` views: updates
    must land in the tensors' memory."""
    problem = Problem(seed=3)
    _, opt, torch_params = torch_run(rule, hyper, problem)
    params = [p.copy() for p in problem.start]
    tensors = [
        {k: torch.from_numpy(v.copy()) for k, v in optim.new_state(rule, p).items()} for p in params
    ]
    for t in range(STEPS):
        grads = problem.grads(params, t)
        for p, g, ts in zip(params, grads, tensors, strict=True):
            optim.update(rule, p, g, {k: v.numpy() for k, v in ts.items()}, **hyper)
    states = [{k: v.numpy() for k, v in ts.items()} for ts in tensors]
    assert_states_match(states, opt, torch_params)
    assert float(tensors[0]["step"]) == STEPS


@pytest.mark.parametrize("rule", list(TORCH))
def test_float32_stays_float32_and_matches_torch(rule):
    hyper = {"lr": 0.01, "weight_decay": 0.01}
    problem = Problem(seed=4, dtype=np.float32)
    expected, _, _ = torch_run(rule, hyper, problem)
    params = [p.copy() for p in problem.start]
    learner = CLASSES[rule](params, **hyper)
    for t in range(STEPS):
        learner.step(problem.grads(params, t))
    for state in learner.states:
        assert all(v.dtype == np.float32 for k, v in state.items() if k != "step")
        assert state["step"].dtype == np.float64
    for mine, theirs in zip(params, expected[-1], strict=True):
        assert mine.dtype == np.float32
        assert relative_error(mine, theirs) <= 1e-5


def test_gradient_is_not_modified():
    param, grad = np.ones((2, 3)), np.full((2, 3), 0.5)
    for rule in TORCH:
        state = optim.new_state(rule, param)
        extra = {"momentum": 0.9} if rule in ("sgd", "rmsprop") else {}
        optim.update(rule, param, grad, state, lr=0.1, weight_decay=0.1, **extra)
        np.testing.assert_array_equal(grad, 0.5)


def test_new_state_layout():
    param = np.zeros((4, 2), dtype=np.float32)
    expected = {
        "sgd": {"momentum_buffer", "step"},
        "adagrad": {"sum", "step"},
        "rmsprop": {"square_avg", "momentum_buffer", "step"},
        "adam": {"exp_avg", "exp_avg_sq", "step"},
        "adamw": {"exp_avg", "exp_avg_sq", "step"},
    }
    for rule, keys in expected.items():
        state = optim.new_state(rule, param)
        assert set(state) == keys
        assert state["step"].shape == () and state["step"].dtype == np.float64
        for key in keys - {"step"}:
            assert state[key].shape == (4, 2) and state[key].dtype == np.float32
            assert not state[key].any()


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_gradient_shape_mismatch_names_rule_and_both_shapes():
    param = np.zeros((3, 4))
    with pytest.raises(LadderError) as excinfo:
        optim.adam_update(param, np.zeros((3, 5)), optim.new_state("adam", param), lr=0.1)
    assert one_line(excinfo) == (
        "adam: gradient shape (3, 5) does not match parameter shape (3, 4)"
    )
    learner = optim.SGD([param], lr=0.1)
    with pytest.raises(LadderError, match=r"sgd: gradient shape \(4, 3\) .* \(3, 4\)"):
        learner.step([np.zeros((4, 3))])


def test_state_that_does_not_fit():
    param = np.zeros(3)
    with pytest.raises(LadderError) as excinfo:
        optim.update("adam", param, param.copy(), optim.new_state("sgd", param), lr=0.1)
    assert "adam: state has no 'exp_avg'" in one_line(excinfo)
    assert "new_state('adam', param)" in str(excinfo.value)
    state = optim.new_state("adagrad", np.zeros(4))
    with pytest.raises(LadderError) as excinfo:
        optim.adagrad_update(param, param.copy(), state, lr=0.1)
    assert one_line(excinfo) == (
        "adagrad: state 'sum' has shape (4,), expected (3,) (parameter shape (3,))"
    )


def test_unknown_rule_and_hyperparameter():
    param = np.zeros(3)
    with pytest.raises(LadderError) as excinfo:
        optim.update("adma", param, param.copy(), {}, lr=0.1)
    assert one_line(excinfo).endswith("did you mean 'adam'?")
    with pytest.raises(LadderError, match="unknown update rule 'lbfgs'"):
        optim.new_state("lbfgs", param)
    with pytest.raises(LadderError) as excinfo:
        optim.update("sgd", param, param.copy(), optim.new_state("sgd", param), lr=0.1, beta=0.9)
    assert one_line(excinfo).startswith("sgd: unknown hyperparameter(s) beta; it takes lr, ")


def test_learner_rejects_bad_arguments():
    params = [np.zeros(3), np.zeros(2)]
    with pytest.raises(LadderError) as excinfo:
        optim.SGD(params, lr=-0.1, nesterov=True)
    assert one_line(excinfo) == (
        "SGD: lr must be a number >= 0, got -0.1; nesterov=True needs a momentum > 0"
    )
    with pytest.raises(LadderError, match=r"Adam: betas must be two numbers in \[0, 1\)"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(LadderError, match=r"params\[1\] must be a float NumPy array"):
        optim.RMSProp([np.zeros(3), np.zeros(2, dtype=np.int64)])
    with pytest.raises(LadderError, match="AdaGrad: got 1 gradients for 2 parameters"):
        optim.AdaGrad(params).step([np.zeros(3)])
    with pytest.raises(LadderError, match="sgd: nesterov=True needs a momentum > 0"):
        optim.sgd_update(
            params[0], params[0].copy(), optim.new_state("sgd", params[0]), 0.1, nesterov=True
        )
