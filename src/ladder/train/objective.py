"""What a network learns: the loss of its outputs against the targets, and what its outputs
mean as predictions (class probabilities, or one number per row).

The Trainer is the same loop for every task; an objective is the only part that differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253

from ladder.config import TrainConfig

RegressionLoss = Literal["mse", "mae", "huber"]
LMOutputs = torch.Tensor | tuple[torch.Tensor, Any]  # logits, or a language model's (logits, cache)
IGNORE_INDEX = -100  # a target that does not count in a language model's loss


def at_least_float32(outputs: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (autocast) as float32; float64 stays float64 (a network checked
    in double precision, e.g. the scratch rungs against their PyTorch twins)."""
    return outputs if outputs.dtype == torch.float64 else outputs.float()


@dataclass(frozen=True)
class Classification:
    """Cross-entropy of class logits against int64 class ids (optionally class-weighted)."""

    target_dtype = np.int64

    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """The mean (class-weighted) cross-entropy of the batch."""
        return F.cross_entropy(at_least_float32(outputs), y, weight=weight)

    def loss_sum(
        self, outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed loss and what it is divided by (the weights' sum, else the row count)."""
        total = F.cross_entropy(at_least_float32(outputs), y, weight=weight, reduction="sum")
        denominator = weight[y].sum() if weight is not None else y.new_tensor(len(y))
        return total, denominator.float()

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, n_classes)."""
        return torch.softmax(outputs.float(), dim=1)


@dataclass(frozen=True)
class Regression:
    """MSE, MAE or Huber loss of a one-output network against float targets."""

    kind: RegressionLoss = "mse"
    huber_delta: float = 1.0
    target_dtype = np.float32

    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean loss of the batch (`weight` is for class weights and is ignored)."""
        return self._reduced(outputs, y, "mean")

    def loss_sum(
        self, outputs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed loss and the row count."""
        return self._reduced(outputs, y, "sum"), y.new_tensor(float(len(y)))

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """One value per row (n,)."""
        return outputs.float().reshape(len(outputs), -1)[:, 0]

    def _reduced(self, outputs: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
        predicted = self.predictions(outputs)
        target = y.float().reshape(-1)
        if self.kind == "mae":
            return F.l1_loss(predicted, target, reduction=reduction)
        if self.kind == "huber":
            return F.huber_loss(predicted, target, reduction=reduction, delta=self.huber_delta)
        return F.mse_loss(predicted, target, reduction=reduction)


@dataclass(frozen=True)
class LanguageModeling:
    """Next-token cross-entropy of (batch, seq, vocab) logits against (batch, seq) int64 targets;
    targets equal to IGNORE_INDEX (prompt tokens of instruction data) do not count. The outputs
    may be a language model's `(logits, cache)` tuple."""

    target_dtype = np.int64

    def loss(
        self, outputs: LMOutputs, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean loss over the batch's counted targets (0 when none counts; `weight` is for
        class weights and is ignored)."""
        total, count = self.loss_sum(outputs, y)
        return total / count.clamp(min=1)

    def loss_sum(
        self, outputs: LMOutputs, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed loss in nats and the number of counted targets."""
        logits = _lm_logits(outputs).float().flatten(0, 1)  # (batch * seq, vocab)
        total = F.cross_entropy(logits, y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
        return total, (y != IGNORE_INDEX).sum().float()

    def predictions(self, outputs: LMOutputs) -> torch.Tensor:
        """Next-token probabilities (batch, seq, vocab)."""
        return torch.softmax(_lm_logits(outputs).float(), dim=-1)


def _lm_logits(outputs: LMOutputs) -> torch.Tensor:
    return outputs[0] if isinstance(outputs, tuple) else outputs


Objective = Classification | Regression | LanguageModeling


def regression_objective(train: TrainConfig) -> Regression:
    """The regression objective `train.loss` asks for (auto: mse), with `train.huber_delta`."""
    kind = train.loss if train.loss in ("mse", "mae", "huber") else "mse"
    return Regression(kind, train.huber_delta)
