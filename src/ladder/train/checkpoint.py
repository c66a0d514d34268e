"""Saving and loading training checkpoints: weights in safetensors, state in a torch file.

A checkpoint folder holds `weights.safetensors` (the module's parameters and buffers) and
`state.pt` (optimizer, scheduler and grad-scaler state dicts, epoch, step, RNG states: only
tensors and plain containers, so it loads with `torch.load(weights_only=True)`). Each file is
written atomically; the step is stored in both so a mismatched pair is detected on load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ladder.errors import LadderError
from ladder.io import atomic_write

WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.pt"


def save_checkpoint(
    directory: str | Path,
    module: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    epoch: int = 0,
    step: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `directory/weights.safetensors` and `directory/state.pt`; returns `directory`.

    `extra` must hold only tensors, numbers, strings and containers of them.
    """
    directory = Path(directory)
    state: dict[str, Any] = {
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "torch_rng": torch.get_rng_state(),
        **(extra or {}),
    }
    meta = {"epoch": str(epoch), "step": str(step)}
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_model(module, str(tmp), metadata=meta))
    atomic_write(directory / STATE_FILE, lambda tmp: torch.save(state, tmp))
    return directory


def load_checkpoint(
    directory: str | Path,
    module: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load weights into `module` (and states into the objects given); returns the state dict."""
    directory = Path(directory)
    weights, state_file = directory / WEIGHTS_FILE, directory / STATE_FILE
    for path in (weights, state_file):
        if not path.is_file():
            raise LadderError(f"checkpoint incomplete: {path} is missing")
    state = torch.load(state_file, map_location="cpu", weights_only=True)
    with safe_open(str(weights), framework="pt") as f:
        saved_step = (f.metadata() or {}).get("step")
    if saved_step is not None and int(saved_step) != state["step"]:
        raise LadderError(
            f"checkpoint {directory}: weights are from step {saved_step} but state.pt from step "
            f"{state['step']} (interrupted while saving?)"
        )
    load_model(module, str(weights))
    for obj, key in ((optimizer, "optimizer"), (scheduler, "scheduler"), (scaler, "scaler")):
        if obj is not None and state.get(key) is not None:
            obj.load_state_dict(state[key])
    return state
