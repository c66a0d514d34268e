r"""Weight penalties added to the loss: L1 (lasso) and L2 (ridge, weight decay).

Over a list of weight arrays $W$ with strength $\lambda$:

$$\Omega_1(W) = \lambda \sum_{w \in W} \sum_j |w_j|, \qquad
\frac{\partial \Omega_1}{\partial w} = \lambda \operatorname{sign}(w)$$

(sign(0) = 0, the subgradient PyTorch's autograd takes for |w| at 0), and, with the factor
one half so that the gradient is plain,

$$\Omega_2(W) = \frac{\lambda}{2} \sum_{w \in W} \sum_j w_j^2, \qquad
\frac{\partial \Omega_2}{\partial w} = \lambda\, w.$$

**L2 and weight decay.** Plain SGD on $L + \Omega_2$ steps

$$w \leftarrow w - \eta\,(\nabla L + \lambda w) = (1 - \eta\lambda)\, w - \eta \nabla L,$$

which is exactly `torch.optim.SGD(..., weight_decay=λ)` (it adds $\lambda w$ to the gradient).
With momentum too the two stay equal, since the decay term enters the same gradient. With
Adam they differ: the L2 gradient is divided by $\sqrt{\hat v}$ like the rest, which is why
AdamW decays the weights directly instead.
"""

from __future__ import annotations

import numpy as np


def l1(weights: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """lam * sum |w| over every array, and the gradients lam * sign(w), one per array."""
    value = lam * sum(float(np.abs(w).sum()) for w in weights)
    return value, [lam * np.sign(w) for w in weights]


def l2(weights: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """(lam / 2) * sum w^2 over every array, and the gradients lam * w, one per array."""
    value = 0.5 * lam * sum(float((w * w).sum()) for w in weights)
    return value, [lam * w for w in weights]
