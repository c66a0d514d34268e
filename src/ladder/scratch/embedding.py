r"""Embedding: a lookup table of learned vectors, one row per token id.

With the table $E \in \mathbb R^{V \times d}$ and integer ids $t_{n,s}$, the forward pass is a
gather,

$$y_{n,s,\cdot} = E_{t_{n,s},\cdot},$$

the product of a one-hot row with $E$. Each row of $E$ receives the sum of the upstream
gradients of every position that read it (a scatter-add):

$$\bar E_{v,\cdot} = \sum_{(n,s)\,:\; t_{n,s} = v} \bar y_{n,s,\cdot},$$

and the row `padding_idx`, if given, gets no gradient ($\bar E_{\text{pad},\cdot} = 0$), so it
keeps its initial zeros. Ids are discrete: they have no gradient, and `backward` returns None.
The initial table is $\mathcal N(0, 1)$, as `torch.nn.Embedding`'s.
"""

from __future__ import annotations

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.layer import Layer


class Embedding(Layer):
    """ids (N, T) int -> vectors (N, T, dim) from `params["weight"]` (vocab, dim).

    Args:
        padding_idx: the id whose row starts at zero and gets no gradient (negative counts
            from the end, as in PyTorch).
        rng: draws the initial table, N(0, 1).
    """

    def __init__(
        self,
        vocab: int,
        dim: int,
        padding_idx: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if vocab < 1 or dim < 1:
            raise LadderError(f"Embedding(vocab={vocab}, dim={dim}): sizes must be at least 1")
        if padding_idx is not None:
            if not -vocab <= padding_idx < vocab:
                raise LadderError(
                    f"Embedding(vocab={vocab}, dim={dim}): padding_idx {padding_idx} is "
                    f"outside [-{vocab}, {vocab})"
                )
            padding_idx %= vocab
        self.vocab, self.dim, self.padding_idx = vocab, dim, padding_idx
        rng = rng if rng is not None else np.random.default_rng()
        weight = rng.standard_normal((vocab, dim))
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.params["weight"] = weight

    def __repr__(self) -> str:
        return f"Embedding(vocab={self.vocab}, dim={self.dim})"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not np.issubdtype(x.dtype, np.integer):
            raise LadderError(
                f"{self!r}: ids must be integers, got {x.dtype} (input shape {x.shape})"
            )
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            bad = x[(x < 0) | (x >= self.vocab)][0]
            raise LadderError(
                f"{self!r}: id {bad} is outside [0, {self.vocab}) (input shape {x.shape})"
            )
        self.ids = x
        return self.params["weight"][x]  # (N, T, dim)

    def backward(self, dout: np.ndarray) -> None:  # type: ignore[override]
        expected = (*self.ids.shape, self.dim)
        if dout.shape != expected:
            raise LadderError(
                f"{self!r}: gradient has shape {dout.shape}, expected the output shape {expected}"
            )
        weight = self.params["weight"]
        grad = np.zeros(weight.shape, dtype=np.result_type(weight, dout))  # (vocab, dim)
        # add.at sums repeated ids; plain fancy-index += would keep only the last one
        np.add.at(grad, self.ids.reshape(-1), dout.reshape(-1, self.dim))
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0.0
        self.grads["weight"] = grad
