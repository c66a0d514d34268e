r"""Optimizers: the update rules of `torch.optim.SGD`, `Adagrad`, `RMSprop`, `Adam` and `AdamW`.

Each rule moves one parameter $\theta$ from its gradient $g_t = \nabla_\theta L$ and a little
state of its own, kept between steps (a dict of arrays, named as in torch's optimizer state).
Weight decay $\lambda$ (except AdamW's) is L2 in the gradient, $g_t \leftarrow g_t + \lambda
\theta_{t-1}$; $\eta$ is the learning rate and $t = 1, 2, \dots$ counts steps.

SGD with momentum $\mu$ (buffer $b$; the first step sets $b_1 = g_1$), Nesterov optionally:

$$b_t = \mu\, b_{t-1} + g_t, \qquad
\theta_t = \theta_{t-1} - \eta\, d_t, \qquad
d_t = \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise.} \end{cases}$$

AdaGrad: a per-coordinate step that shrinks with the sum of all squared gradients so far,

$$s_t = s_{t-1} + g_t^2, \qquad
\theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon}.$$

RMSprop: the same with a running mean of squares (decay $\alpha$), so the step does not vanish;
with momentum $\mu > 0$ the scaled gradient goes through a buffer $b$ (starting at 0):

$$v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2, \qquad
b_t = \mu\, b_{t-1} + \frac{g_t}{\sqrt{v_t} + \epsilon}, \qquad
\theta_t = \theta_{t-1} - \eta\, b_t.$$

Adam: running means of the gradient and of its square, corrected for their start at zero,

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,$$
$$\theta_t = \theta_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
\frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}.$$

AdamW decouples the weight decay from the gradient: before the Adam step (with $\lambda$ left
out of $g_t$), $\theta \leftarrow (1 - \eta \lambda)\, \theta$. Under Adam's L2 the decay
is divided by $\sqrt{v_t}$ like the gradient, so weights with large gradients decay less.

The functions update `param` and the state's arrays IN PLACE and never rebind a state entry,
so the arrays may live in a torch tensor's memory (the rung passes `.numpy()` views). Arrays
keep the parameter's dtype (float32 in the rung); `state["step"]` is a float64 0-d array.
The classes `SGD`, `AdaGrad`, `RMSProp`, `Adam`, `AdamW` are thin loops over these functions.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Sequence

import numpy as np

from ladder.errors import LadderError

State = dict[str, np.ndarray]

# the arrays each rule keeps besides "step"; SGD and RMSprop always get a momentum buffer, so
# the state's layout does not depend on the hyperparameters
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
    "rmsprop": ("square_avg", "momentum_buffer"),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
}


def _check(
    rule: str, param: np.ndarray, grad: np.ndarray, state: State, keys: Sequence[str]
) -> None:
    """Raise a one-line LadderError when grad or a state array does not fit `param`."""
    if grad.shape != param.shape:
        raise LadderError(
            f"{rule}: gradient shape {grad.shape} does not match parameter shape {param.shape}"
        )
    for key in (*keys, "step"):
        if key not in state:
            raise LadderError(
                f"{rule}: state has no {key!r} (it has {sorted(state)}); "
                f"make it with new_state({rule!r}, param)"
            )
        want = () if key == "step" else param.shape
        if state[key].shape != want:
            raise LadderError(
                f"{rule}: state {key!r} has shape {state[key].shape}, expected {want} "
                f"(parameter shape {param.shape})"
            )


def new_state(rule: str, param: np.ndarray) -> State:
    """The initial state of `rule` for `param`: zeros of its shape and dtype, and step 0."""
    keys = STATE_KEYS.get(rule)
    if keys is None:
        raise _unknown_rule(rule)
    state = {key: np.zeros(param.shape, dtype=param.dtype) for key in keys}
    state["step"] = np.zeros((), dtype=np.float64)
    return state


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> None:
    """One step of SGD (torch.optim.SGD, dampening 0): b = mu*b + g; param -= lr * b."""
    _check("sgd", param, grad, state, ("momentum_buffer",) if momentum != 0 else ())
    if nesterov and momentum == 0:
        raise LadderError("sgd: nesterov=True needs a momentum > 0 (got momentum=0)")
    step = state["step"]
    if weight_decay != 0:
        grad = grad + float(weight_decay) * param  # a new array: the caller's grad stays
    if momentum != 0:
        buf = state["momentum_buffer"]
        if step == 0:
            buf[...] = grad  # torch's first step: b_1 = g_1
        else:
            buf *= float(momentum)
            buf += grad
        grad = grad + float(momentum) * buf if nesterov else buf
    param -= float(lr) * grad
    step += 1


def adagrad_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    lr: float,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
) -> None:
    """One step of AdaGrad (torch.optim.Adagrad, lr_decay 0).

    s += g^2; param -= lr g / (sqrt(s) + eps).
    """
    _check("adagrad", param, grad, state, ("sum",))
    if weight_decay != 0:
        grad = grad + float(weight_decay) * param
    total = state["sum"]
    total += grad * grad
    scaled = np.sqrt(total)  # (sqrt(s) + eps), then g / that, reusing one buffer
    scaled += float(eps)
    np.divide(grad, scaled, out=scaled)
    scaled *= float(lr)
    param -= scaled
    state["step"] += 1


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
) -> None:
    """One step of RMSprop (torch.optim.RMSprop, not centered).

    v = alpha v + (1 - alpha) g^2; param -= lr g / (sqrt(v) + eps), through the momentum
    buffer b = momentum b + g / (sqrt(v) + eps) when momentum > 0.
    """
    keys = ("square_avg", "momentum_buffer") if momentum > 0 else ("square_avg",)
    _check("rmsprop", param, grad, state, keys)
    if weight_decay != 0:
        grad = grad + float(weight_decay) * param
    square_avg = state["square_avg"]
    square_avg *= float(alpha)
    square_avg += (1 - float(alpha)) * (grad * grad)
    scaled = np.sqrt(square_avg)  # g / (sqrt(v) + eps), reusing one buffer
    scaled += float(eps)
    np.divide(grad, scaled, out=scaled)
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= float(momentum)
        buf += scaled
        scaled = buf * float(lr)
    else:
        scaled *= float(lr)
    param -= scaled
    state["step"] += 1


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> None:
    """One step of Adam (torch.optim.Adam), or of AdamW (torch.optim.AdamW) when `decoupled`.

    Args:
        weight_decay: L2 in the gradient (Adam), or with `decoupled` the shrink
            param *= 1 - lr * weight_decay before the step (AdamW).
    """
    _check("adamw" if decoupled else "adam", param, grad, state, ("exp_avg", "exp_avg_sq"))
    lr, beta1, beta2 = float(lr), float(betas[0]), float(betas[1])
    step = state["step"]
    step += 1
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * float(weight_decay)
        else:
            grad = grad + float(weight_decay) * param
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (grad * grad)
    # Python floats, so that float32 arrays stay float32 (a NumPy float64 scalar would upcast)
    t = float(step)
    step_size = lr / (1 - beta1**t)
    denom = np.sqrt(exp_avg_sq)  # sqrt(v)/sqrt(1 - b2^t) + eps, then m / that, in one buffer
    denom /= math.sqrt(1 - beta2**t)
    denom += float(eps)
    np.divide(exp_avg, denom, out=denom)
    denom *= step_size
    param -= denom


def adamw_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
) -> None:
    """One step of AdamW (torch.optim.AdamW, whose weight decay defaults to 0.01)."""
    adam_update(param, grad, state, lr, betas, eps, weight_decay, decoupled=True)


RULES: dict[str, Callable[..., None]] = {
    "sgd": sgd_update,
    "adagrad": adagrad_update,
    "rmsprop": rmsprop_update,
    "adam": adam_update,
    "adamw": adamw_update,
}
# the hyperparameters each rule accepts (all but param, grad, state)
_HYPER = {name: list(inspect.signature(f).parameters)[3:] for name, f in RULES.items()}


def _unknown_rule(rule: str) -> LadderError:
    near = difflib.get_close_matches(str(rule).lower(), RULES, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return LadderError(f"unknown update rule {rule!r}: choose one of {', '.join(RULES)}{hint}")


def update(rule: str, param: np.ndarray, grad: np.ndarray, state: State, **hyper: object) -> None:
    """One step of the rule named `rule` ("sgd", "adagrad", "rmsprop", "adam", "adamw")."""
    fn = RULES.get(rule)
    if fn is None:
        raise _unknown_rule(rule)
    unknown = sorted(set(hyper) - set(_HYPER[rule]))
    if unknown:
        raise LadderError(
            f"{rule}: unknown hyperparameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(_HYPER[rule])}"
        )
    fn(param, grad, state, **hyper)


def _problems(hyper: dict[str, object]) -> list[str]:
    """What is wrong with these hyperparameters, checked as torch.optim checks them."""
    problems = []
    for name in ("lr", "momentum", "weight_decay", "eps", "alpha"):
        value = hyper.get(name, 0.0)
        if not (isinstance(value, int | float) and value >= 0):
            problems.append(f"{name} must be a number >= 0, got {value!r}")
    betas = hyper.get("betas", (0.0, 0.0))
    pair = isinstance(betas, tuple | list) and len(betas) == 2
    if not (pair and all(isinstance(b, int | float) and 0 <= b < 1 for b in betas)):
        problems.append(f"betas must be two numbers in [0, 1), got {betas!r}")
    if hyper.get("nesterov") and not hyper.get("momentum"):
        problems.append("nesterov=True needs a momentum > 0")
    return problems


class Optimizer:
    """A learner over a list of parameter arrays: `step(grads)` updates each one in place.

    `lr` may be changed between steps (a schedule); `states[i]` is parameter i's state.
    """

    rule = ""

    def __init__(self, params: Sequence[np.ndarray], lr: float, **hyper: object) -> None:
        name = type(self).__name__
        problems = _problems({"lr": lr, **hyper})
        for i, p in enumerate(params):
            if not (isinstance(p, np.ndarray) and np.issubdtype(p.dtype, np.floating)):
                problems.append(f"params[{i}] must be a float NumPy array, got {type(p).__name__}")
        if problems:
            raise LadderError(f"{name}: " + "; ".join(problems))
        self.params = list(params)
        self.lr = lr
        self.hyper = hyper
        self.states = [new_state(self.rule, p) for p in self.params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter from its gradient, in the order of `params`."""
        if len(grads) != len(self.params):
            raise LadderError(
                f"{type(self).__name__}: got {len(grads)} gradients for {len(self.params)} "
                "parameters"
            )
        fn = RULES[self.rule]
        for param, grad, state in zip(self.params, grads, self.states, strict=True):
            fn(param, grad, state, self.lr, **self.hyper)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay."""

    rule = "sgd"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )


class AdaGrad(Optimizer):
    """AdaGrad: steps scaled by the root of the summed squared gradients."""

    rule = "adagrad"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(params, lr, weight_decay=weight_decay, eps=eps)


class RMSProp(Optimizer):
    """RMSprop: steps scaled by the root of a running mean of squared gradients."""

    rule = "rmsprop"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
    ) -> None:
        super().__init__(
            params, lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum
        )


class Adam(Optimizer):
    """Adam with L2 weight decay in the gradient."""

    rule = "adam"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (param *= 1 - lr * weight_decay each step)."""

    rule = "adamw"

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)
