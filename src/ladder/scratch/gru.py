r"""`GRU`: the gated recurrent unit, with PyTorch's placement of the reset gate (inside the
product with $W_{hn} h + b_{hn}$). Parameters under `torch.nn.GRU`'s names and layouts (without
the `_l0` suffix): the rows of `weight_ih` (3H, I), `weight_hh` (3H, H), `bias_ih`, `bias_hh`
(3H,) are the gates r, z, n.

Forward, from $h_0 = 0$, with $u_t = x_t W_{ih}^\top + b_{ih}$ and
$v_t = h_{t-1} W_{hh}^\top + b_{hh}$ each split into blocks $(\cdot^r, \cdot^z, \cdot^n)$:

$$r_t = \sigma(u^r_t + v^r_t), \quad z_t = \sigma(u^z_t + v^z_t), \quad
  n_t = \tanh(u^n_t + r_t \odot v^n_t),$$

$$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}.$$

Backward (BPTT), with $\delta_t = \partial L / \partial h_t = \partial L / \partial y_t
+ (\partial L / \partial v_{t+1}) W_{hh} + \delta_{t+1} \odot z_{t+1}$:

$$\frac{\partial L}{\partial \hat n_t} = \delta_t \odot (1 - z_t) \odot (1 - n_t^2), \quad
  \frac{\partial L}{\partial \hat z_t} = \delta_t \odot (h_{t-1} - n_t) \odot z_t (1 - z_t), \quad
  \frac{\partial L}{\partial \hat r_t} = \frac{\partial L}{\partial \hat n_t} \odot v^n_t
  \odot r_t (1 - r_t),$$

where $\hat r_t, \hat z_t, \hat n_t$ are the gates' pre-activations. The input half takes these
three gradients as they are, $\partial L / \partial u_t = (\partial \hat r_t, \partial \hat z_t,
\partial \hat n_t)$; the hidden half scales the last block by the reset gate,
$\partial L / \partial v_t = (\partial \hat r_t, \partial \hat z_t, r_t \odot \partial \hat n_t)$.
The weight gradients sum $(\partial L / \partial u_t)^\top x_t$ and
$(\partial L / \partial v_t)^\top h_{t-1}$ over steps, $\partial L / \partial x_t =
(\partial L / \partial u_t) W_{ih}$; the time loop, the padding mask and the direction live in
`ladder.scratch.recurrence`.
"""

from __future__ import annotations

import numpy as np

from ladder.scratch.activations import sigmoid
from ladder.scratch.recurrence import Recurrent, State


class GRU(Recurrent):
    """One GRU layer, one direction, batch-first: `GRU(n_in, hidden, rng=None)`,
    (N,T,I) -> (N,T,H)."""

    gates = 3
    n_states = 1

    @staticmethod
    def cell(gx: np.ndarray, gh: np.ndarray, state: State) -> tuple[State, tuple[np.ndarray, ...]]:
        """h_t from the gates; the cache is (r, z, n, v^n, h_{t-1})."""
        h_prev = state[0]
        u_r, u_z, u_n = np.split(gx, 3, axis=1)  # (N, H) each
        v_r, v_z, v_n = np.split(gh, 3, axis=1)
        r, z = sigmoid(u_r + v_r), sigmoid(u_z + v_z)
        n = np.tanh(u_n + r * v_n)
        h = (1 - z) * n + z * h_prev
        return (h,), (r, z, n, v_n, h_prev)

    @staticmethod
    def cell_backward(
        d_state: State, cache: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | float, ...]]:
        """The input and hidden halves' gradients differ only in the n block (times r)."""
        d_h = d_state[0]
        r, z, n, v_n, h_prev = cache
        d_n = d_h * (1 - z) * (1 - n * n)
        d_z = d_h * (h_prev - n) * z * (1 - z)
        d_r = d_n * v_n * r * (1 - r)
        d_u = np.concatenate([d_r, d_z, d_n], axis=1)  # (N, 3H)
        d_v = np.concatenate([d_r, d_z, r * d_n], axis=1)
        return d_u, d_v, (d_h * z,)
