"""`NumpyOptimizer`: a `torch.optim.Optimizer` whose step is a `ladder.scratch.optim` update rule.

The scratch rungs train with the NumPy rule of the optimizer the config names. Its state arrays
live in tensors' memory (`self.state`, as in every torch optimizer), so checkpoints save and
resume them, and learning-rate schedules change `param_groups[i]["lr"]` as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch  # noqa: TID253

from ladder.scratch import optim as rules


class NumpyOptimizer(torch.optim.Optimizer):
    """The NumPy update rule `rule` (sgd, adam, adamw, adagrad, rmsprop) over `params`.

    `hyper` are the rule's settings besides lr (weight_decay, momentum, nesterov).
    """

    def __init__(self, params: Iterable[Any], rule: str, lr: float, **hyper: Any) -> None:
        super().__init__(params, {"lr": lr, **hyper})
        self.rule, self.settings = rule, ("lr", *hyper)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            # a group also holds what schedules add (initial_lr): the rule gets its own settings
            hyper = {k: group[k] for k in self.settings}
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    fresh = rules.new_state(self.rule, param.detach().numpy())
                    state.update({k: torch.from_numpy(a) for k, a in fresh.items()})
                arrays = {k: v.numpy() for k, v in state.items()}
                rules.update(self.rule, param.detach().numpy(), param.grad.numpy(), arrays, **hyper)
