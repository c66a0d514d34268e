r"""Initial weights: Xavier (Glorot), He (Kaiming) and PyTorch's default, with torch's fans.

For a weight of shape $(\text{out}, \text{in}, k_1, k_2, \dots)$ the receptive field is
$r = \prod_i k_i$ ($r = 1$ for a dense layer) and, as in `torch.nn.init`,

$$\text{fan\_in} = \text{in} \cdot r, \qquad \text{fan\_out} = \text{out} \cdot r.$$

Xavier keeps the variance of activations and of gradients alike across layers
(for a linear unit, the mean of the two fans):

$$\text{xavier\_uniform}: \; W \sim U(-a, a), \quad
a = g\sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}},$$

$$\text{xavier\_normal}: \;
W \sim \mathcal N\!\left(0, g^2 \frac{2}{\text{fan\_in} + \text{fan\_out}}\right).$$

He keeps the forward variance through ReLUs, which zero half the signal (gain $\sqrt 2$):

$$\text{he\_uniform}: \; W \sim U(-a, a),\; a = \sqrt 2 \sqrt{\frac{3}{\text{fan\_in}}},
\qquad \text{he\_normal}: \; W \sim \mathcal N\!\left(0, \frac{2}{\text{fan\_in}}\right).$$

PyTorch's default for `nn.Linear`, `nn.Conv2d` (weight and bias) and the recurrent layers
(with fan_in = hidden size there) is

$$W \sim U\!\left(-\frac{1}{\sqrt{\text{fan\_in}}}, \frac{1}{\sqrt{\text{fan\_in}}}\right)$$

(it is `kaiming_uniform_(a=sqrt(5))`: gain $\sqrt{2 / (1 + 5)}$ times $\sqrt{3/\text{fan\_in}}$).
The uniform variance is $a^2/3$, which the tests use to check the spread.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from ladder.errors import LadderError


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`, as `torch.nn.init` computes them."""
    if len(shape) < 2:
        raise LadderError(
            f"init: fan in and fan out need a weight with at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])  # 1 for a dense layer's (out, in)
    return shape[1] * receptive, shape[0] * receptive


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def uniform(
    shape: tuple[int, ...],
    bound: float,
    rng: np.random.Generator | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Draws of U(-bound, bound) of `shape`."""
    return _generator(rng).uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def normal(
    shape: tuple[int, ...],
    std: float,
    rng: np.random.Generator | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Draws of N(0, std^2) of `shape`."""
    return (std * _generator(rng).standard_normal(size=shape)).astype(dtype, copy=False)


def xavier_uniform(
    shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    gain: float = 1.0,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return uniform(shape, gain * math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype)


def xavier_normal(
    shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    gain: float = 1.0,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(shape, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def he_uniform(
    shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Kaiming uniform for ReLU (fan_in mode): U(-a, a) with a = sqrt(6 / fan_in)."""
    fan_in, _ = fans(shape)
    return uniform(shape, math.sqrt(2.0) * math.sqrt(3.0 / fan_in), rng, dtype)


def he_normal(
    shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Kaiming normal for ReLU (fan_in mode): N(0, 2 / fan_in)."""
    fan_in, _ = fans(shape)
    return normal(shape, math.sqrt(2.0 / fan_in), rng, dtype)


def torch_default(
    shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    fan_in: int | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Args:
        fan_in: the fan of the layer's weight; give it for a bias (1-D, no fans of its own).
    """
    fan = fans(shape)[0] if fan_in is None else fan_in
    return uniform(shape, 1.0 / math.sqrt(fan), rng, dtype)
