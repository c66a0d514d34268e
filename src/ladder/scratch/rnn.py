r"""`RNN`: the vanilla (Elman) recurrent layer with a tanh cell, trained by backpropagation through
time. Parameters under `torch.nn.RNN`'s names and layouts (without the `_l0` suffix).

Forward, for $t = 1 \dots T$ (or $T \dots 1$ with `reverse=True`), from $h_0 = 0$:

$$z_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}, \qquad h_t = \tanh(z_t).$$

Backward (BPTT): the gradient reaching $h_t$ comes from its output $y_t = h_t$ and from the
next step,

$$\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial y_t}
  + \frac{\partial L}{\partial z_{t+1}} W_{hh}, \qquad
  \frac{\partial L}{\partial z_t} = \frac{\partial L}{\partial h_t} \odot (1 - h_t^2),$$

$$\frac{\partial L}{\partial W_{ih}} = \sum_t \Big(\frac{\partial L}{\partial z_t}\Big)^{\!\top}
  x_t, \quad \frac{\partial L}{\partial W_{hh}} = \sum_t
  \Big(\frac{\partial L}{\partial z_t}\Big)^{\!\top} h_{t-1},$$

$$\frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}}
  = \sum_t \mathbf 1^\top \frac{\partial L}{\partial z_t}, \quad
  \frac{\partial L}{\partial x_t} = \frac{\partial L}{\partial z_t} W_{ih}.$$

The time loop, the padding mask and the direction live in `ladder.scratch.recurrence`.
"""

from __future__ import annotations

import numpy as np

from ladder.scratch.recurrence import Recurrent, State


class RNN(Recurrent):
    """One tanh RNN layer, one direction, batch-first: `RNN(n_in, hidden, rng=None)`,
    (N,T,I) -> (N,T,H)."""

    gates = 1
    n_states = 1

    @staticmethod
    def cell(gx: np.ndarray, gh: np.ndarray, state: State) -> tuple[State, np.ndarray]:
        """h_t = tanh(G^x_t + G^h_t); the cache is h_t."""
        h = np.tanh(gx + gh)
        return (h,), h

    @staticmethod
    def cell_backward(
        d_state: State, h: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | float, ...]]:
        """dL/dz_t = dL/dh_t (1 - h_t^2) for both halves; h_{t-1} is reached only via W_hh."""
        dz = d_state[0] * (1 - h * h)
        return dz, dz, (0.0,)
