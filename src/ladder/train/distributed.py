"""Data-parallel training over torch.distributed: the process group and a few collectives.

`torchrun --nproc-per-node N` (what `ladder train --nproc N` launches) starts N copies of the
program with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT in their environment;
`init_from_env` joins them into one process group (gloo on CPU, nccl on CUDA). Without a process
group every helper is a cheap no-op for a single process (rank 0 of 1), so callers need no
special case.

The Trainer wraps the module with `wrap` (DistributedDataParallel, or FSDP2's `fully_shard` when
`train.strategy: fsdp` on CUDA). Weights and optimizer state go through `model_state` /
`load_model_state` / `optimizer_state` / `load_optimizer_state`, which gather a sharded (FSDP)
model's full state on rank 0 and scatter it back, so checkpoints are the same files either way.
`compile_or_eager` (train.compile) wraps last and falls back to eager if compiling fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch  # noqa: TID253
import torch.distributed as dist  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.config import TrainConfig
from ladder.errors import LadderError


def init_from_env(device: str | torch.device = "cpu") -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); False for a single process.

    On CUDA each process uses GPU LOCAL_RANK (set as the current device) and nccl; on CPU, gloo.
    """
    if not launched():
        return False
    if is_initialized():
        return True
    if torch.device(device).type == "cuda":
        gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(gpu)
        # env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from torchrun
        dist.init_process_group(backend="nccl", device_id=gpu)
    else:
        dist.init_process_group(backend="gloo")
    return True


def launched() -> bool:
    """Whether this process is one of several workers torchrun started (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun worker)."""
    if is_initialized():
        dist.destroy_process_group()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the process that writes files and shows progress."""
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        nccl = dist.get_backend() == "nccl"
        dist.barrier(device_ids=[torch.cuda.current_device()] if nccl else None)


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `tensor` over all ranks (on `tensor`'s device)."""
    if not is_initialized():
        return tensor
    reduced = tensor.to(_comm_device())
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(tensor.device)


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank."""
    if not is_initialized():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)])).item() > 0)


def all_gather_array(array: np.ndarray) -> np.ndarray:
    """The ranks' arrays concatenated along axis 0, in rank order (their lengths may differ)."""
    if not is_initialized():
        return array
    device, n = _comm_device(), world_size()
    local = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    lengths = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(n)]
    dist.all_gather(lengths, torch.tensor([len(local)], device=device))
    longest = max(int(length.item()) for length in lengths)
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(n)]
    dist.all_gather(parts, padded)
    pieces = [part[: int(length.item())] for part, length in zip(parts, lengths, strict=True)]
    return torch.cat(pieces).cpu().numpy()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (small objects: RNG states, a few numbers)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard_range(n: int) -> slice:
    """This rank's contiguous share of n rows (shares differ in length by at most one)."""
    size, extra = divmod(n, world_size())
    start = rank() * size + min(rank(), extra)
    return slice(start, start + size + (rank() < extra))


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous share of `indices`."""
    return indices if world_size() == 1 else indices[shard_range(len(indices))]


def global_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Index batches of one epoch; a trailing batch with less than 2 rows per rank is dropped
    (batchnorm fails on a single row)."""
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2 * world_size():
        batches.pop()
    return batches


def share_batches(
    batches: list[torch.Tensor], accumulate: int
) -> tuple[list[torch.Tensor], list[float]]:
    """This rank's share of each global batch, and the weight of each share's mean loss.

    The weight is the share's rows x ranks / the rows of its optimizer step (`accumulate`
    batches, all ranks): DDP averages gradients over ranks, so each step's gradient is the mean
    over the step's rows, as with one big batch on one process. 1.0 in the common case.
    """
    sizes = [len(batch) for batch in batches]
    step_rows = [sum(sizes[i : i + accumulate]) for i in range(0, len(sizes), accumulate)]
    mine = [shard(batch) for batch in batches]
    n = world_size()
    weights = [len(batch) * n / step_rows[i // accumulate] for i, batch in enumerate(mine)]
    return mine, weights


def share_targets(n_targets: np.ndarray, accumulate: int) -> tuple[list[int], list[float]]:
    """For windows of text: this rank's counted targets in each global batch (its contiguous
    share of each batch's rows), and the weight of each share's mean loss.

    `n_targets` (batches, batch_size) holds every window's counted targets. As in
    `share_batches`, but counting targets rather than rows (a loss mask leaves some out): the
    weight is the share's targets x ranks / the targets of its optimizer step (all ranks; 0
    when none counts), so each step's gradient is the mean over its counted targets.
    """
    share = n_targets[:, shard_range(n_targets.shape[1])].sum(axis=1)
    step_totals = n_targets.reshape(-1, accumulate * n_targets.shape[1]).sum(axis=1)
    n = world_size()
    weights = [
        float(count * n / total) if total else 0.0
        for count, total in zip(share, step_totals.repeat(accumulate), strict=True)
    ]
    return share.tolist(), weights


def validation_share(n: int, batch_size: int) -> tuple[slice, int | None]:
    """This rank's rows of n validation rows, and how many batches every rank runs: the same
    number everywhere (FSDP gathers parameters in each forward call); None for one process."""
    if world_size() == 1:
        return slice(0, n), None
    return shard_range(n), math.ceil(math.ceil(n / world_size()) / batch_size)


# ----------------------------------------------------------------------------- the model
# What the Trainer calls during training: DDP / FSDP around the module, torch.compile on top.


def parallel(
    module: nn.Module, device: torch.device, config: TrainConfig
) -> tuple[nn.Module, Callable[[], contextlib.AbstractContextManager] | None]:
    """(the module wrapped for `config.strategy`, its no-sync context factory)."""
    if config.batch_size % world_size():
        raise LadderError(
            f"train.batch_size ({config.batch_size}) is the global batch size and must be "
            f"divisible by the number of processes (--nproc {world_size()})"
        )
    model = wrap(module, device, config.strategy)
    return model, no_sync(model)


def wrap(module: nn.Module, device: torch.device, strategy: str) -> nn.Module:
    """The module to train under the process group: DDP, or FSDP2 on CUDA (sharded in place).

    FSDP shards each direct child that has parameters, then the root, so a forward pass only
    gathers one child's parameters at a time.
    """
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for child in module.children():
            if any(p.requires_grad for p in child.parameters()):
                fully_shard(child)
        return fully_shard(module)
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        device_ids = [device.index if device.index is not None else torch.cuda.current_device()]
    else:
        device_ids = None
    return DistributedDataParallel(module, device_ids=device_ids)


def no_sync(model: nn.Module) -> Callable[[], contextlib.AbstractContextManager] | None:
    """A context factory in which backward accumulates gradients locally (no all-reduce)."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model.no_sync
    if is_sharded(model):
        return lambda: _fsdp_no_sync(model)
    return None


@contextlib.contextmanager
def _fsdp_no_sync(model: Any) -> Iterator[None]:
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def is_sharded(module: nn.Module) -> bool:
    """True for a module sharded by FSDP (its parameters are DTensors)."""
    if not is_initialized():
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def _full_options(**kwargs: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kwargs)


def model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the module's weights and buffers (FSDP: gathered, on rank 0 only)."""
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(module, options=_full_options(cpu_offload=True))
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def load_model_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a full state (as `model_state` gives) into the module (FSDP: from rank 0's copy)."""
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(module, state, options=_full_options(broadcast_from_rank0=True))
    else:
        module.load_state_dict(state)


def optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict (FSDP: the full state, keyed by parameter name, on rank 0)."""
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(module, optimizer, options=_full_options(cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(
    module: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    if is_sharded(module):
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        options = _full_options(broadcast_from_rank0=True)
        set_optimizer_state_dict(module, optimizer, state, options=options)
    else:
        optimizer.load_state_dict(state)


def compile_or_eager(model: nn.Module) -> nn.Module:
    """`torch.compile(model)`, falling back to eager (with one warning) if compiling fails."""
    try:
        return _EagerOnFailure(torch.compile(model), model)
    except Exception as error:  # e.g. a Python version torch.compile does not support
        _warn_compile_failed(error)
        return model


class _EagerOnFailure(nn.Module):
    """Calls the compiled model; if its first call fails (compilation happens then), eager."""

    def __init__(self, compiled: nn.Module, eager: nn.Module) -> None:
        super().__init__()
        self.compiled, self.eager, self.checked = compiled, eager, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.checked:
            return self.compiled(x)
        self.checked = True
        try:
            return self.compiled(x)
        except Exception as error:  # no C compiler, an unsupported operation, ...
            _warn_compile_failed(error)
            self.compiled = self.eager
            return self.eager(x)


def _warn_compile_failed(error: Exception) -> None:
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    warnings.warn(
        f"train.compile: torch.compile failed ({reason}); training in eager mode",
        RuntimeWarning,
        stacklevel=3,
    )
