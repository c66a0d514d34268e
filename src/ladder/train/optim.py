"""Optimizers, learning-rate schedules, weight initialisation and the L1 penalty.

Weight decay (L2) and the L1 penalty apply to weight matrices and conv kernels only (parameters
with 2 or more dimensions); biases and normalisation parameters are left alone, as in nanoGPT.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ladder.config import OptimizerConfig, SchedulerConfig

ONECYCLE_START = 1 / 25  # onecycle warms up from lr / 25 (torch's OneCycleLR div_factor)
ONECYCLE_WARMUP = 0.3  # fraction of training spent warming up when warmup_epochs is 0


def split_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, others): trainable tensors with >= 2 dims vs biases and norm parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]


def build_optimizer(module: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer named by `cfg` over `module`'s trainable parameters."""
    weights, others = split_parameters(module)
    groups = [
        {"params": weights, "weight_decay": cfg.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    if cfg.weight_decay == 0:
        groups = [{"params": weights + others, "weight_decay": 0.0}]  # one group steps faster
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(groups, lr=cfg.lr)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # unreachable: the config validates it


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-batch learning-rate schedule with linear warm-up over `cfg.warmup_epochs`.

    - none: constant after warm-up.
    - step: multiplied by `gamma` every `step_size` epochs.
    - cosine: cosine decay from the end of warm-up to `min_lr` at the end of training.
    - onecycle: the 1cycle policy for the learning rate: linear warm-up from lr/25 (over
      `warmup_epochs`, or 30% of training if 0), then cosine decay to `min_lr`.
    Call `.step()` after every optimizer step.
    """
    total = max(1, epochs * steps_per_epoch)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if cfg.name == "onecycle" and warmup == 0:
        warmup = round(ONECYCLE_WARMUP * total)
    warmup = min(warmup, total)
    start = ONECYCLE_START if cfg.name == "onecycle" else 0.0

    def factor(step: int, min_ratio: float) -> float:
        if step < warmup:
            return start + (1 - start) * (step + 1) / warmup
        if cfg.name == "step":
            return cfg.gamma ** (step // steps_per_epoch // cfg.step_size)
        if cfg.name in ("cosine", "onecycle"):
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    # one closure per group: min_lr is absolute, so its ratio depends on the group's lr
    lambdas = [
        (lambda step, r=cfg.min_lr / g["lr"]: factor(step, r)) for g in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise Linear and Conv weights ('xavier' or 'kaiming'; biases set to zero).

    'default' keeps PyTorch's own initialisation.
    """
    if scheme == "default":
        return
    for m in module.modules():
        if not isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(m.weight)
        elif scheme == "kaiming":
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")  # the config validates it
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def l1_penalty(module: nn.Module) -> torch.Tensor:
    """Sum of absolute values of the weights (not biases or normalisation parameters)."""
    weights, _ = split_parameters(module)
    if not weights:
        return torch.zeros(())
    return torch.stack([w.abs().sum() for w in weights]).sum()
