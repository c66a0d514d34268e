r"""Numerical gradient check: the derivative by central differences,

$$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h},$$

whose error is $O(h^2)$. Compared with an analytic backward pass in float64 (h = 1e-6), a
correct gradient agrees to about 1e-7 relative; a wrong one is usually off by order one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """dF/dx of the scalar function `f()`, which reads `x`; `x` is perturbed in place and
    restored, one entry at a time."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, out = x.reshape(-1), grad.reshape(-1)  # views: writing `flat` changes `x`
    for i in range(flat.size):
        kept = flat[i]
        flat[i] = kept + h
        above = f()
        flat[i] = kept - h
        below = f()
        flat[i] = kept
        out[i] = (above - below) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over the largest magnitude of either array: the error relative to the
    gradient's scale (0 for two empty or all-zero arrays)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
    return float(np.abs(a - b).max()) / scale if scale > 0 else 0.0
