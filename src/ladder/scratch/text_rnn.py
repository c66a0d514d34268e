r"""A recurrent text classifier in NumPy: embedding, stacked (bi)directional RNN/GRU/LSTM layers,
pooling over time, dropout and a dense head, the same network as the PyTorch `rnn` rung.

Padding never enters the recurrence: a row's state is carried unchanged over its padding, and the
backward direction starts at the row's last real token. Pooling turns the last layer's outputs
$h_t \in \mathbb{R}^{DH}$ (D directions of H units) into one vector per text:

$$\text{last: } [\overrightarrow{h}_{L}; \overleftarrow{h}_{1}], \qquad
\text{mean: } \frac{1}{L}\sum_{t \le L} h_t, \qquad \text{max: } \max_{t \le L} h_t$$

and the backward pass sends $\partial L/\partial \text{pooled}$ back through them: to the final
states, spread evenly over the L real steps, or to the step that held each maximum.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ladder.scratch.dense import Dense
from ladder.scratch.dropout import Dropout
from ladder.scratch.embedding import Embedding
from ladder.scratch.gru import GRU
from ladder.scratch.layer import Layer
from ladder.scratch.lstm import LSTM
from ladder.scratch.rnn import RNN

CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
Pooling = Literal["last", "mean", "max"]


class TextRNN:
    """Token ids (N, T), right-padded with `pad_id` -> logits (N, n_classes)."""

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        cell: str = "lstm",
        embedding_dim: int = 128,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        pooling: Pooling = "max",
        pad_id: int = 0,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.pad_id, self.pooling, self.hidden = pad_id, pooling, hidden
        self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=pad_id, rng=rng)
        directions = 2 if bidirectional else 1
        self.recurrent: list[list[Layer]] = []  # [layer][direction]
        n_in = embedding_dim
        for _ in range(layers):
            self.recurrent.append([CELLS[cell](n_in, hidden, rng=rng) for _ in range(directions)])
            n_in = hidden * directions
        self.between = [Dropout(dropout, rng=rng) for _ in range(layers - 1)]  # between layers only
        self.drop = Dropout(dropout, rng=rng)
        self.head = Dense(n_in, n_classes, rng=rng)

    def parameter_layers(self) -> list[Layer]:
        """Embedding, each layer's directions, head: PyTorch's parameter order."""
        return [self.embedding, *(c for cells in self.recurrent for c in cells), self.head]

    def reseed(self, seed: int) -> None:
        """Seed every dropout mask from one generator."""
        rng = np.random.default_rng(seed)
        for drop in [*self.between, self.drop]:
            drop.rng = rng

    def forward(self, ids: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits (N, n_classes) of token ids (N, T)."""
        self.real = ids != self.pad_id  # (N, T): where pooling looks
        # the recurrence reads at least one step of every row, as packing with lengths >= 1 does
        self.steps = self.real.copy()
        self.steps[:, 0] = True
        x = self.embedding.forward(ids)  # (N, T, E)
        for i, cells in enumerate(self.recurrent):
            outs = [
                cell.forward(x, training, mask=self.steps, reverse=direction == 1)
                for direction, cell in enumerate(cells)
            ]
            x = np.concatenate(outs, axis=-1)  # (N, T, D*H)
            if i < len(self.between):
                x = self.between[i].forward(x, training)
        pooled = self._pool(x)  # (N, D*H)
        return self.head.forward(self.drop.forward(pooled, training), training)

    def backward(self, dout: np.ndarray) -> None:
        """Fill every layer's grads from dL/dlogits (N, n_classes); ids have no gradient."""
        d_pooled = self.drop.backward(self.head.backward(dout))  # (N, D*H)
        n, t = self.real.shape
        h = self.hidden
        d_last: list[np.ndarray | None] = [None] * len(self.recurrent[-1])
        if self.pooling == "last":
            d_last = [d_pooled[:, k * h : (k + 1) * h] for k in range(len(d_last))]
            d_out = np.zeros((n, t, d_pooled.shape[1]), dtype=d_pooled.dtype)
        else:
            d_out = self._unpool(d_pooled)  # (N, T, D*H)
        for i in reversed(range(len(self.recurrent))):
            if i < len(self.between):
                d_out = self.between[i].backward(d_out)
            dx = None
            for k, cell in enumerate(self.recurrent[i]):
                last = d_last[k] if i == len(self.recurrent) - 1 else None
                part = cell.backward(np.ascontiguousarray(d_out[..., k * h : (k + 1) * h]), last)
                dx = part if dx is None else dx + part
            d_out = dx
        self.embedding.backward(d_out)

    def _pool(self, out: np.ndarray) -> np.ndarray:
        """One vector (N, D*H) per text from the last layer's outputs (N, T, D*H)."""
        if self.pooling == "last":
            return np.concatenate([cell.last_hidden for cell in self.recurrent[-1]], axis=-1)
        real = self.real[..., None]  # (N, T, 1)
        if self.pooling == "mean":
            self.counts = np.maximum(real.sum(axis=1), 1).astype(out.dtype)  # (N, 1)
            return (out * real).sum(axis=1) / self.counts
        filled = np.where(real, out, np.finfo(out.dtype).min)
        self.argmax = filled.argmax(axis=1)  # (N, D*H): the step holding each maximum
        return np.take_along_axis(filled, self.argmax[:, None, :], axis=1)[:, 0]

    def _unpool(self, d_pooled: np.ndarray) -> np.ndarray:
        """dL/d(outputs) (N, T, D*H) from dL/d(pooled) (N, D*H)."""
        n, t = self.real.shape
        if self.pooling == "mean":
            return d_pooled[:, None, :] * self.real[..., None] / self.counts[:, None, :]
        d_out = np.zeros((n, t, d_pooled.shape[1]), dtype=d_pooled.dtype)
        np.put_along_axis(d_out, self.argmax[:, None, :], d_pooled[:, None, :], axis=1)
        return d_out
