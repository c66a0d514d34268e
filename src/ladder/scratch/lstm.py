r"""`LSTM`: the long short-term memory layer, its four gates and the cell-state path of BPTT.
Parameters under `torch.nn.LSTM`'s names and layouts (without the `_l0` suffix): the rows of
`weight_ih` (4H, I), `weight_hh` (4H, H), `bias_ih`, `bias_hh` (4H,) are the gates i, f, g, o.

Forward, from $h_0 = c_0 = 0$, with $a_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}$
split into four blocks of $H$ columns $(a^i, a^f, a^g, a^o)$:

$$i_t = \sigma(a^i_t), \quad f_t = \sigma(a^f_t), \quad g_t = \tanh(a^g_t), \quad
  o_t = \sigma(a^o_t),$$

$$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).$$

Backward (BPTT): $h_t$ gets its output's gradient and the next step's through $W_{hh}$; the
cell state carries a second path, through the forget gate only:

$$\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial y_t}
  + \frac{\partial L}{\partial a_{t+1}} W_{hh}, \qquad
  \frac{\partial L}{\partial c_t} = \frac{\partial L}{\partial c_{t+1}} \odot f_{t+1}
  + \frac{\partial L}{\partial h_t} \odot o_t \odot (1 - \tanh^2 c_t),$$

$$\frac{\partial L}{\partial a^o_t} = \frac{\partial L}{\partial h_t} \odot \tanh(c_t)
  \odot o_t (1 - o_t), \quad
  \frac{\partial L}{\partial a^i_t} = \frac{\partial L}{\partial c_t} \odot g_t
  \odot i_t (1 - i_t),$$

$$\frac{\partial L}{\partial a^f_t} = \frac{\partial L}{\partial c_t} \odot c_{t-1}
  \odot f_t (1 - f_t), \quad
  \frac{\partial L}{\partial a^g_t} = \frac{\partial L}{\partial c_t} \odot i_t \odot (1 - g_t^2).$$

The weight gradients sum $(\partial L / \partial a_t)^\top x_t$ and
$(\partial L / \partial a_t)^\top h_{t-1}$ over steps, $\partial L / \partial x_t =
(\partial L / \partial a_t) W_{ih}$; the time loop, the padding mask and the direction live in
`ladder.scratch.recurrence`.
"""

from __future__ import annotations

import numpy as np

from ladder.scratch.activations import sigmoid
from ladder.scratch.recurrence import Recurrent, State


class LSTM(Recurrent):
    """One LSTM layer, one direction, batch-first: `LSTM(n_in, hidden, rng=None)`,
    (N,T,I) -> (N,T,H); the state is (h, c)."""

    gates = 4
    n_states = 2

    @property
    def last_cell(self) -> np.ndarray:
        """c_n (N,H) of the last forward (it gets no gradient in `backward`)."""
        return self.last_state[1]

    @staticmethod
    def cell(gx: np.ndarray, gh: np.ndarray, state: State) -> tuple[State, tuple[np.ndarray, ...]]:
        """(h_t, c_t) from the gates; the cache is (i, f, g, o, c_{t-1}, tanh c_t)."""
        c_prev = state[1]
        i, f, g, o = np.split(gx + gh, 4, axis=1)  # (N, H) each
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        return (o * tanh_c, c), (i, f, g, o, c_prev, tanh_c)

    @staticmethod
    def cell_backward(
        d_state: State, cache: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | float, ...]]:
        """dL/da_t for the four gates (both halves alike), and dL/dc_{t-1} = dL/dc_t f_t."""
        d_h, d_c = d_state
        i, f, g, o, c_prev, tanh_c = cache
        d_c = d_c + d_h * o * (1 - tanh_c * tanh_c)
        d_a = np.concatenate(
            [
                d_c * g * i * (1 - i),  # input gate
                d_c * c_prev * f * (1 - f),  # forget gate
                d_c * i * (1 - g * g),  # candidate
                d_h * tanh_c * o * (1 - o),  # output gate
            ],
            axis=1,
        )  # (N, 4H)
        return d_a, d_a, (0.0, d_c * f)
