r"""The time loop shared by `RNN`, `LSTM` and `GRU`: masking, direction and BPTT bookkeeping.

A recurrent layer is a cell applied at every step, $s_t = \mathrm{cell}(x_t, s_{t-1})$, with
state $s = h$ (RNN, GRU) or $s = (h, c)$ (LSTM). The input half of every gate is computed for
all steps at once, $G^x = X W_{ih}^\top + b_{ih}$, and only the hidden half
$G^h_t = h_{t-1} W_{hh}^\top + b_{hh}$ stays inside the Python loop.

With a mask $m_t \in \{0, 1\}$ (1 on real tokens), a padded step keeps the state and outputs 0:

$$\tilde s_t = \mathrm{cell}(x_t, s_{t-1}), \qquad
  s_t = m_t \tilde s_t + (1 - m_t) s_{t-1}, \qquad y_t = m_t \tilde h_t .$$

Backward through one step, from $\partial L / \partial s_t$ and $\partial L / \partial y_t$:

$$\frac{\partial L}{\partial \tilde h_t} = m_t \Big(\frac{\partial L}{\partial h_t}
  + \frac{\partial L}{\partial y_t}\Big), \qquad
  \frac{\partial L}{\partial s_{t-1}} = (1 - m_t) \frac{\partial L}{\partial s_t}
  + \Big(\frac{\partial \tilde s_t}{\partial s_{t-1}}\Big)^{\!\top}
    \frac{\partial L}{\partial \tilde s_t},$$

where the cell's part through $W_{hh}$ is $\partial L/\partial h_{t-1} \mathrel{+}=
(\partial L/\partial G^h_t) W_{hh}$. The weight gradients are sums over steps, done once after
the loop as matrix products over all $T N$ rows:

$$\frac{\partial L}{\partial W_{ih}} = \sum_t (\partial G^x_t)^\top x_t, \quad
  \frac{\partial L}{\partial W_{hh}} = \sum_t (\partial G^h_t)^\top h_{t-1}, \quad
  \frac{\partial L}{\partial b_{ih}} = \sum_t \mathbf 1^\top \partial G^x_t, \quad
  \frac{\partial L}{\partial b_{hh}} = \sum_t \mathbf 1^\top \partial G^h_t, \quad
  \frac{\partial L}{\partial x_t} = \partial G^x_t \, W_{ih}.$$
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladder.errors import LadderError
from ladder.scratch import init
from ladder.scratch.layer import Layer

State = tuple[np.ndarray, ...]
# cell(gx_t (N,G), gh_t (N,G), state) -> (new state, cache for the backward step)
Step = Callable[[np.ndarray, np.ndarray, State], tuple[State, Any]]
# cell backward(d new state, cache) -> (dL/dG^x_t, dL/dG^h_t, dL/d state_{t-1} other than via
# W_hh; a 0 stands for a state the cell does not reach directly, as the RNN's h)
StepBackward = Callable[[State, Any], tuple[np.ndarray, np.ndarray, tuple[np.ndarray | float, ...]]]

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def init_params(
    n_in: int, hidden: int, gates: int, rng: np.random.Generator | None
) -> dict[str, np.ndarray]:
    """PyTorch's default for every recurrent parameter: U(-1/sqrt(hidden), 1/sqrt(hidden))
    (torch.nn.RNNBase takes the hidden size as the fan of all four arrays)."""
    rng = np.random.default_rng() if rng is None else rng
    shapes = {
        "weight_ih": (gates * hidden, n_in),
        "weight_hh": (gates * hidden, hidden),
        "bias_ih": (gates * hidden,),
        "bias_hh": (gates * hidden,),
    }
    return {name: init.torch_default(shape, rng, fan_in=hidden) for name, shape in shapes.items()}


def check_input(layer: str, n_in: int, x: np.ndarray, mask: np.ndarray | None) -> None:
    """Raise `LadderError` naming the layer and both shapes when `x` (N,T,I) or `mask` (N,T) does
    not fit."""
    if x.ndim != 3:
        raise LadderError(
            f"{layer}: input must be (batch, time, features), got {x.ndim} dimensions "
            f"(input shape {x.shape})"
        )
    if x.shape[2] != n_in:
        raise LadderError(
            f"{layer}: input has {x.shape[2]} features per step, expected {n_in} "
            f"(input shape {x.shape})"
        )
    if mask is not None and mask.shape != x.shape[:2]:
        raise LadderError(
            f"{layer}: mask shape {mask.shape} does not match input (batch, time) "
            f"{x.shape[:2]} (input shape {x.shape})"
        )


def check_grads(
    layer: str, tape: Tape | None, d_outputs: np.ndarray | None, d_last: np.ndarray | None
) -> Tape:
    """The tape of the last forward, after checking the incoming gradients' shapes against it."""
    if tape is None:
        raise LadderError(f"{layer}: backward called before forward")
    steps, batch, hidden = tape.hs_prev.shape
    want = (batch, steps, hidden)
    if d_outputs is not None and d_outputs.shape != want:
        raise LadderError(
            f"{layer}: d_outputs shape {d_outputs.shape} does not match the outputs {want}"
        )
    if d_last is not None and d_last.shape != (batch, hidden):
        raise LadderError(
            f"{layer}: d_last shape {d_last.shape} does not match the last hidden state "
            f"{(batch, hidden)}"
        )
    return tape


@dataclass
class Tape:
    """What the forward loop keeps for BPTT (arrays are time-major)."""

    xs: np.ndarray  # (T, N, I) inputs
    hs_prev: np.ndarray  # (T, N, H) h_{t-1} fed to step t
    caches: list[Any]  # per step, what the cell's backward needs
    mask: np.ndarray | None  # (T, N, 1) bool
    order: range  # the steps in the order they ran
    n_states: int  # 1 for (h,), 2 for (h, c)


def run(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    mask: np.ndarray | None,
    reverse: bool,
    n_states: int,
    step: Step,
) -> tuple[np.ndarray, State, Tape]:
    """Run `step` over time: (outputs (N,T,H), final state, tape for `backward`).

    Args:
        n_states: 1 for (h,), 2 for (h, c); every state starts at zeros.
    """
    w_ih, w_hh, b_ih, b_hh = (params[name] for name in PARAM_NAMES)
    batch, steps, n_in = x.shape
    hidden = w_hh.shape[1]
    dtype = np.result_type(x, w_ih, w_hh)
    xs = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)  # (T, N, I)
    gx = (xs.reshape(steps * batch, n_in) @ w_ih.T + b_ih).reshape(steps, batch, -1)  # (T, N, G)
    mask_t = None if mask is None else mask.astype(bool).T[:, :, None]  # (T, N, 1)

    state: State = tuple(np.zeros((batch, hidden), dtype=dtype) for _ in range(n_states))
    outputs = np.zeros((steps, batch, hidden), dtype=dtype)
    hs_prev = np.empty((steps, batch, hidden), dtype=dtype)
    caches: list[Any] = [None] * steps
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        hs_prev[t] = state[0]
        gh = state[0] @ w_hh.T + b_hh  # (N, G)
        new, caches[t] = step(gx[t], gh, state)
        if mask_t is not None:  # padded rows keep their state and output 0
            new = tuple(np.where(mask_t[t], s_new, s) for s_new, s in zip(new, state, strict=True))
            outputs[t] = np.where(mask_t[t], new[0], 0)
        else:
            outputs[t] = new[0]
        state = new
    tape = Tape(xs, hs_prev, caches, mask_t, order, n_states)
    return np.ascontiguousarray(outputs.transpose(1, 0, 2)), state, tape


def run_backward(
    params: dict[str, np.ndarray],
    tape: Tape,
    d_outputs: np.ndarray | None,
    d_last: np.ndarray | None,
    step_backward: StepBackward,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """BPTT through the steps of `tape`: (dL/dx (N,T,I), grads of the four parameters).

    Args:
        d_outputs: dL/d outputs (N,T,H), or None for zeros.
        d_last: dL/d final h (N,H), or None for zeros (the LSTM's final c gets no gradient).
    """
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    xs, hs_prev, mask = tape.xs, tape.hs_prev, tape.mask
    steps, batch, n_in = xs.shape
    n_gates = w_hh.shape[0]
    dtype = hs_prev.dtype
    d_out = None if d_outputs is None else d_outputs.transpose(1, 0, 2)  # (T, N, H) view

    # dL/d final state: d_last for h, zeros for the LSTM's c
    d_state: State = tuple(np.zeros_like(hs_prev[0]) for _ in range(tape.n_states))
    if d_last is not None:
        d_state = (d_last.astype(dtype, copy=False), *d_state[1:])
    dgx_all = np.zeros((steps, batch, n_gates), dtype=dtype)  # dL/dG^x_t
    dgh_all = np.zeros((steps, batch, n_gates), dtype=dtype)  # dL/dG^h_t
    for t in reversed(tape.order):
        d_new = (d_state[0] if d_out is None else d_state[0] + d_out[t], *d_state[1:])
        if mask is not None:  # padded rows: the cell is skipped, the state passes straight back
            carried = tuple(np.where(mask[t], 0, d) for d in d_state)
            d_new = tuple(np.where(mask[t], d, 0) for d in d_new)
        dgx_all[t], dgh_all[t], d_prev = step_backward(d_new, tape.caches[t])
        d_state = (dgh_all[t] @ w_hh + d_prev[0], *d_prev[1:])
        if mask is not None:
            d_state = tuple(d + c for d, c in zip(d_state, carried, strict=True))

    dgx = dgx_all.reshape(steps * batch, n_gates)
    dgh = dgh_all.reshape(steps * batch, n_gates)
    grads = {
        "weight_ih": dgx.T @ xs.reshape(steps * batch, n_in),
        "weight_hh": dgh.T @ hs_prev.reshape(steps * batch, -1),
        "bias_ih": dgx.sum(axis=0),
        "bias_hh": dgh.sum(axis=0),
    }
    dx = (dgx @ w_ih).reshape(steps, batch, n_in)  # (T, N, I)
    return np.ascontiguousarray(dx.transpose(1, 0, 2)), grads


class Recurrent(Layer):
    """One recurrent layer, one direction, batch-first: (N,T,I) -> (N,T,H).

    A subclass names its cell: `gates` (blocks of H rows in the weights), `n_states` and the
    static methods `cell` (a `Step`) and `cell_backward` (a `StepBackward`).
    """

    gates = 1
    n_states = 1

    def __init__(self, n_in: int, hidden: int, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.n_in, self.hidden = n_in, hidden
        self.params = init_params(n_in, hidden, self.gates, rng)
        self.last_state: State = ()  # the final state of the last forward: (h_n,) or (h_n, c_n)
        # h_n (N,H): h at each row's last real token (with reverse=True: after t=0)
        self.last_hidden: np.ndarray | None = None
        self._tape: Tape | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in={self.n_in}, hidden={self.hidden})"

    @staticmethod
    def cell(gx: np.ndarray, gh: np.ndarray, state: State) -> tuple[State, Any]:
        """One step: (new state, cache) from G^x_t, G^h_t (N,G) and the state."""
        raise NotImplementedError

    @staticmethod
    def cell_backward(
        d_state: State, cache: Any
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | float, ...]]:
        """One step back: (dL/dG^x_t, dL/dG^h_t, dL/d state_{t-1} other than through W_hh)."""
        raise NotImplementedError

    def forward(
        self,
        x: np.ndarray,
        training: bool = False,
        mask: np.ndarray | None = None,
        reverse: bool = False,
    ) -> np.ndarray:
        """Outputs (N,T,H) for `x` (N,T,I), from zero state; sets `last_hidden`.

        Args:
            mask: (N,T) bool, True on real tokens (right-padded); a padded step keeps the state
                and outputs 0.
            reverse: run t = T-1 .. 0 (the backward half of a bidirectional layer).
        """
        check_input(repr(self), self.n_in, x, mask)
        out, self.last_state, self._tape = run(
            self.params, x, mask, reverse, self.n_states, self.cell
        )
        self.last_hidden = self.last_state[0]
        return out

    def backward(
        self, d_outputs: np.ndarray | None, d_last: np.ndarray | None = None
    ) -> np.ndarray:
        """dL/dx (N,T,I) from dL/d outputs (N,T,H) and dL/d `last_hidden` (N,H), either may be
        None; writes the four parameters' gradients into `grads`."""
        tape = check_grads(repr(self), self._tape, d_outputs, d_last)
        dx, grads = run_backward(self.params, tape, d_outputs, d_last, self.cell_backward)
        self.grads.update(grads)
        return dx
