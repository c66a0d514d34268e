"""Optimizers, learning-rate schedules, weight initialisation and the L1 penalty.

Weight decay (L2; decoupled for adamw) applies to all parameters, as in plain PyTorch: one
parameter group keeps each optimizer step cheap (a module may define its own groups, as the
pretrained model does for layer-wise learning rates and no decay on biases and norms). The L1
penalty applies to weight matrices and conv kernels only (parameters with 2 or more
dimensions), not to biases or normalisation parameters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.config import OptimizerConfig, SchedulerConfig
from ladder.models.scratch_bridge import NumpyModule
from ladder.train.numpy_optim import NumpyOptimizer

ONECYCLE_START = 1 / 25  # onecycle warms up from lr / 25 (torch's OneCycleLR div_factor)
ONECYCLE_WARMUP = 0.3  # fraction of training spent warming up when warmup_epochs is 0


def build_optimizer(module: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer named by `cfg` over `module`'s trainable parameters (in the module's own
    `param_groups(lr, weight_decay)` when it has them, e.g. layer-wise learning rates)."""
    groups = getattr(module, "param_groups", None)
    params: list = (
        groups(cfg.lr, cfg.weight_decay)
        if callable(groups)
        else [p for p in module.parameters() if p.requires_grad]
    )
    lr, decay = cfg.lr, cfg.weight_decay
    if isinstance(module, NumpyModule):  # a scratch rung steps with the NumPy rule
        return NumpyOptimizer(params, cfg.name, lr, **_numpy_settings(cfg))
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, weight_decay=decay, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=decay, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # unreachable: the config validates it


def _numpy_settings(cfg: OptimizerConfig) -> dict[str, float | bool]:
    """The settings besides lr that `build_optimizer` gives the torch optimizer `cfg.name`."""
    if cfg.name == "sgd":
        return {
            "weight_decay": cfg.weight_decay,
            "momentum": cfg.momentum,
            "nesterov": cfg.nesterov,
        }
    if cfg.name == "rmsprop":
        return {"weight_decay": cfg.weight_decay, "momentum": cfg.momentum}
    return {"weight_decay": cfg.weight_decay}


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: SchedulerConfig,
    epochs: int,
    steps_per_epoch: int,
    total_steps: int | None = None,
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """A per-batch learning-rate schedule with linear warm-up over `cfg.warmup_epochs`.

    - none: constant after warm-up (no scheduler at all, None, without warm-up).
    - step: multiplied by `gamma` every `step_size` epochs.
    - cosine: cosine decay from the end of warm-up to `min_lr` at the end of training.
    - onecycle: the 1cycle policy for the learning rate: linear warm-up from lr/25 (over
      `warmup_epochs`, or 30% of training if 0), then cosine decay to `min_lr`.
    - linear: linear decay from the end of warm-up to `min_lr` at the end of training (the
      usual fine-tuning schedule).
    `warmup_fraction` (a share of all steps) is used instead of `warmup_epochs` when set.
    Training lasts `total_steps` optimizer steps where given (step-based training, whose last
    "epoch" may be short), else epochs x steps_per_epoch. Call `.step()` after every optimizer
    step.
    """
    if cfg.name == "none" and cfg.warmup_epochs == 0 and cfg.warmup_fraction == 0:
        return None
    total = max(1, total_steps if total_steps is not None else epochs * steps_per_epoch)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if cfg.warmup_fraction > 0:
        warmup = round(cfg.warmup_fraction * total)
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
        if cfg.name == "linear":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return min_ratio + (1 - min_ratio) * (1 - progress)
        return 1.0

    # one closure per group: min_lr is absolute, so its ratio depends on the group's lr
    lambdas = [
        (lambda step, r=cfg.min_lr / g["lr"]: factor(step, r)) for g in optimizer.param_groups
    ]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler | None,
    parameters: Iterable[nn.Parameter],
    grad_clip: float | None,
    step: int,
) -> None:
    """One optimizer step: clip the gradients' norm (unscaled first under fp16), step the
    optimizer (through the grad scaler, which skips steps with inf gradients) and the schedule.
    `step` counts the steps done before this one."""
    if scaler is not None and grad_clip is not None:
        scaler.unscale_(optimizer)
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(parameters, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if scheduler is None:
        return
    if scaler is None or step > 0:
        scheduler.step()
        return
    with warnings.catch_warnings():
        # the scaler often skips the first steps while it calibrates; the schedule still
        # advances, by design, so torch's "scheduler before optimizer" warning does not apply
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
        scheduler.step()


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
    weights = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    if not weights:
        return torch.zeros(())
    return torch.stack([w.abs().sum() for w in weights]).sum()
