"""What a scratch rung (NumPy on the CPU) cannot do, and the one-line refusal naming the
PyTorch rung that can. Free of torch, so the config can check entries while it loads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ladder.errors import LadderError

if TYPE_CHECKING:  # ladder.config reads the registry, which holds the scratch specs
    from ladder.config import TrainConfig


def numpy_lacks(train: TrainConfig, device: str = "cpu", processes: int = 1) -> list[str]:
    """What of `train`, the device and the process count a scratch rung cannot do, in words."""
    lacks = []
    if device != "cpu":
        lacks.append(f"device {device} (it computes in NumPy on the CPU)")
    if train.precision != "fp32":
        lacks.append(f"train.precision {train.precision} (NumPy computes in fp32)")
    if processes > 1:
        lacks.append(f"{processes} processes (no DDP in NumPy)")
    if train.compile:
        lacks.append("train.compile (torch.compile cannot see into NumPy)")
    return lacks


def numpy_refusal(model_type: str, twin: str, lacks: list[str]) -> str:
    """One line refusing `lacks` for `model_type`, naming `twin`, the PyTorch rung that has them."""
    return (
        f"{model_type} has no {', no '.join(lacks)}; use type {twin} for that, "
        "the PyTorch rung with the same network"
    )


def check_numpy_support(
    model_type: str, twin: str, train: TrainConfig, device: str, processes: int
) -> None:
    """Raise LadderError naming `twin` if `model_type` is asked for what NumPy lacks."""
    lacks = numpy_lacks(train, device, processes)
    if lacks:
        raise LadderError(numpy_refusal(model_type, twin, lacks))
