"""Checkpoints for exact resume: written atomically, verified by checksum, the last two kept.

A checkpoints folder holds `last/` and `previous/`. Each is written complete into a temporary
folder, then `last` becomes `previous` and the new one becomes `last` (renames), so a kill at
any moment leaves at least one whole checkpoint. A checkpoint folder holds:

    weights.safetensors    the module's parameters and buffers
    state.pt               everything else (loads with `torch.load(weights_only=True)`):
                           optimizer, scheduler and grad-scaler state; epoch, step, the batch
                           position within the epoch; stop flag; history rows; every callback's
                           `state_dict()`; per process: RNG states (python, numpy, torch, cuda,
                           the trainer's generator) and the epoch's batch losses so far
    callbacks.safetensors  tensors of callback states (early stopping's best weights), if any
    manifest.json          sha256 of each file, epoch/step/batch and the model identity

The epoch's batch order is not stored: it is drawn from a generator seeded by (seed, epoch),
so a resumed epoch continues with the very batches it would have had.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch  # noqa: TID253
from safetensors.torch import load_file  # noqa: TID253

from ladder.errors import LadderError
from ladder.io import save_tensors, sha256_file
from ladder.train import distributed

if TYPE_CHECKING:
    from ladder.train.callbacks import Callback
    from ladder.train.trainer import Trainer

FORMAT = 1
LAST, PREVIOUS = "last", "previous"
MANIFEST = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.pt"
CALLBACKS_FILE = "callbacks.safetensors"
Tensors = dict[str, torch.Tensor]


@dataclass
class SavedCheckpoint:
    """A verified checkpoint read into memory."""

    path: Path
    weights: Tensors
    state: dict[str, Any]
    callback_tensors: Tensors


# ----------------------------------------------------------------------------- trainer level


def save_checkpoint(directory: str | Path, trainer: Trainer, identity: dict | None = None) -> Path:
    """Write the trainer's state as `directory/last`; returns that path.

    Under torch.distributed every rank must call it (the state is gathered); rank 0 writes.
    """
    captured = capture(trainer)
    if captured is not None:
        write_checkpoint(directory, *captured, identity=identity)
    distributed.barrier()  # no rank exits (or goes on) while rank 0 is still writing
    return Path(directory) / LAST


def capture(trainer: Trainer) -> tuple[Tensors, dict[str, Any], Tensors] | None:
    """(weights, state, callback tensors) of the trainer; None on ranks that write nothing."""
    ranks = distributed.all_gather_object(_rank_state(trainer))
    module = trainer.module
    if not (distributed.is_main() or distributed.is_sharded(module)):
        return None
    weights = distributed.model_state(module)  # collective when sharded
    optimizer = distributed.optimizer_state(module, trainer.optimizer)
    if not distributed.is_main():
        return None
    callbacks, tensors = _callback_states(trainer.callbacks)
    state = {
        "format": FORMAT,
        "epoch": trainer.epoch,
        "batch": trainer.batch,
        "in_epoch": trainer.in_epoch,
        "step": trainer.step,
        "stop_training": trainer.stop_training,
        "optimizer": optimizer,
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "history": [dict(row) for row in trainer.history],
        "callbacks": callbacks,
        "ranks": ranks,
    }
    return weights, state, tensors


def restore_checkpoint(trainer: Trainer, saved: SavedCheckpoint) -> None:
    """Put the trainer (built and set up for the same model) back into the saved state."""
    state, module = saved.state, trainer.module
    _check_weights_fit(saved, module)
    distributed.load_model_state(module, saved.weights)
    try:
        distributed.load_optimizer_state(module, trainer.optimizer, state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as error:
        raise LadderError(
            f"checkpoint {saved.path}: its optimizer state does not fit train.optimizer ({error})"
        ) from None
    for obj, key in ((trainer.scheduler, "scheduler"), (trainer.scaler, "scaler")):
        if obj is not None and state.get(key) is not None:
            obj.load_state_dict(state[key])
    trainer.epoch, trainer.batch, trainer.in_epoch = (
        state["epoch"],
        state["batch"],
        state["in_epoch"],
    )
    trainer.step, trainer.stop_training = state["step"], state["stop_training"]
    trainer.history = [dict(row) for row in state["history"]]
    _load_callback_states(trainer.callbacks, state["callbacks"], saved.callback_tensors)
    ranks, rank = state["ranks"], distributed.rank()
    if len(ranks) == distributed.world_size():
        mine = ranks[rank]
        trainer.epoch_losses = [loss.to(trainer.device) for loss in mine["losses"].unbind()]
        trainer.epoch_sizes = list(mine["sizes"])
        set_rng_state(mine["rng"], trainer.generator)
    else:  # another number of processes: same batches, fresh per-process random streams
        trainer.epoch_losses, trainer.epoch_sizes = [], []
        torch.manual_seed(trainer.seed + rank + trainer.step)
        trainer.generator.manual_seed(trainer.seed + rank + trainer.step)


def _rank_state(trainer: Trainer) -> dict[str, Any]:
    losses = trainer.epoch_losses
    return {
        "rng": rng_state(trainer.generator),
        "losses": torch.stack(losses).cpu() if losses else torch.zeros(0),
        "sizes": list(trainer.epoch_sizes),
    }


def _callback_states(callbacks: list[Callback]) -> tuple[list[dict[str, Any]], Tensors]:
    """Each callback's state; its dicts of tensors go to a safetensors file instead."""
    states, tensors = [], {}
    for i, callback in enumerate(callbacks):
        state, tensor_keys = dict(callback.state_dict()), []
        for key, value in list(state.items()):
            if isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
                for name, tensor in value.items():
                    tensors[f"{i}/{key}/{name}"] = tensor.detach().to("cpu", copy=True)
                state[key] = None
                tensor_keys.append(key)
        states.append({"name": type(callback).__name__, "state": state, "tensors": tensor_keys})
    return states, tensors


def _load_callback_states(
    callbacks: list[Callback], states: list[dict[str, Any]], tensors: Tensors
) -> None:
    """Load each saved state into the callback at the same position, if of the same class."""
    for i, (callback, saved) in enumerate(zip(callbacks, states, strict=False)):
        if type(callback).__name__ != saved["name"]:
            continue
        state = dict(saved["state"])
        for key in saved["tensors"]:
            prefix = f"{i}/{key}/"
            state[key] = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        callback.load_state_dict(state)


def _check_weights_fit(saved: SavedCheckpoint, module: torch.nn.Module) -> None:
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in saved.weights.items()}
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k} {list(found[k])} vs {list(shape)}"
        for k, shape in expected.items()
        if k in found and found[k] != shape
    ]
    if problems:
        shown = ", ".join(problems[:6]) + (", ..." if len(problems) > 6 else "")
        raise LadderError(
            f"checkpoint in {saved.path.parent} does not fit this model (saved vs now): {shown}"
        )


# ----------------------------------------------------------------------------- SIGTERM


class StopSignals:
    """A context in which SIGTERM, and a first Ctrl-C (SIGINT), set `received` (the signal's
    number) instead of ending the process, so that training stops after the current step with
    a checkpoint. A second Ctrl-C interrupts at once (KeyboardInterrupt). Main thread only
    (elsewhere signals cannot be handled); the previous handlers are restored on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def raised(self) -> bool:
        """Whether a stop signal arrived."""
        return self.received is not None

    def __enter__(self) -> StopSignals:
        self.received = None
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum
        if signum == signal.SIGINT:  # the next Ctrl-C acts as before: stop now
            signal.signal(signal.SIGINT, self._previous[signal.SIGINT] or signal.SIG_DFL)


# ----------------------------------------------------------------------------- RNG states


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Python, numpy (global), torch CPU and CUDA RNG states and `generator`'s, as plain data."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), cached],
        "torch": torch.get_rng_state(),
        # an uninitialised CUDA has drawn nothing: its seeded state is re-created by manual_seed
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "generator": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["generator"])


# ----------------------------------------------------------------------------- files


def write_checkpoint(
    directory: str | Path,
    weights: Tensors,
    state: dict[str, Any],
    callback_tensors: Tensors | None = None,
    identity: dict | None = None,
) -> Path:
    """Write a complete checkpoint as `directory/last`, keeping the one before as `previous`."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for stale in [*root.glob(".incoming-*"), *root.glob(".stale-*")]:  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    incoming = root / f".incoming-{uuid.uuid4().hex}"
    incoming.mkdir()
    try:
        save_tensors({k: v.contiguous() for k, v in weights.items()}, incoming / WEIGHTS_FILE)
        torch.save(state, incoming / STATE_FILE)
        files = [WEIGHTS_FILE, STATE_FILE]
        if callback_tensors:
            save_tensors(callback_tensors, incoming / CALLBACKS_FILE)
            files.append(CALLBACKS_FILE)
        for name in files:
            _fsync(incoming / name)
        keys = ("epoch", "batch", "in_epoch", "step")
        manifest = {
            "format": FORMAT,
            **{key: state[key] for key in keys},
            "world_size": len(state["ranks"]),
            "identity": _plain(identity),
            "files": {name: sha256_file(incoming / name) for name in files},
        }
        (incoming / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync(incoming / MANIFEST)
        _rotate(root, incoming)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return root / LAST


def _rotate(root: Path, incoming: Path) -> None:
    last, previous = root / LAST, root / PREVIOUS
    stale = None
    if last.exists() and previous.exists():
        stale = root / f".stale-{uuid.uuid4().hex}"
        os.replace(previous, stale)
    if last.exists():
        os.replace(last, previous)
    os.replace(incoming, last)
    _fsync(root)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def load_checkpoint(directory: str | Path, identity: dict | None = None) -> SavedCheckpoint:
    """Read the newest good checkpoint in `directory` (last, else previous, with a warning).

    With `identity`, a checkpoint written for another model (another identity) is an error
    naming the differing keys.
    """
    root = Path(directory)
    candidates = [root / name for name in (LAST, PREVIOUS) if (root / name).is_dir()]
    if not candidates:
        raise LadderError(f"--resume: no checkpoint in {root} (train without --resume first)")
    for i, path in enumerate(candidates):
        try:
            saved, manifest = _read(path)
        except _Corrupt as problem:
            fallback = f"; resuming from {candidates[i + 1]}" if i + 1 < len(candidates) else ""
            warnings.warn(f"checkpoint {problem}{fallback}", RuntimeWarning, stacklevel=2)
            continue
        _check_identity(root, manifest.get("identity"), identity)
        return saved
    raise LadderError(f"no usable checkpoint in {root}")


class _Corrupt(Exception):
    """A checkpoint file is missing, truncated or altered; str() names the file."""


def _read(path: Path) -> tuple[SavedCheckpoint, dict[str, Any]]:
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _Corrupt(f"file {manifest_path} is unreadable ({type(error).__name__})") from None
    for name in dict.fromkeys([WEIGHTS_FILE, STATE_FILE, *files]):
        file = path / name
        if name not in files or not file.is_file():
            raise _Corrupt(f"file {file} is missing")
        if sha256_file(file) != files[name]:
            raise _Corrupt(f"file {file} is corrupt (sha256 mismatch: truncated or altered)")
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
        tensors = load_file(str(path / CALLBACKS_FILE)) if CALLBACKS_FILE in files else {}
    except Exception as error:  # checksums matched, but another torch/safetensors cannot read it
        raise _Corrupt(f"in {path} cannot be read ({error})") from None
    return SavedCheckpoint(path, weights, state, tensors), manifest


def _check_identity(root: Path, saved: Any, current: dict | None) -> None:
    if saved is None or current is None:
        return
    old, new = _flatten(saved), _flatten(_plain(current))
    missing = object()

    def show(value: Any) -> str:
        return "(none)" if value is missing else json.dumps(value)

    diffs = [
        f"{key} {show(old.get(key, missing))} vs {show(new.get(key, missing))}"
        for key in dict.fromkeys([*old, *new])
        if old.get(key, missing) != new.get(key, missing)
    ]
    if diffs:
        raise LadderError(
            f"checkpoint in {root} was written by a different model (saved vs now): "
            + ", ".join(diffs)
        )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _plain(value: Any) -> Any:
    """JSON-native copy (tuples become lists), so a saved identity compares equal to a new one."""
    return None if value is None else json.loads(json.dumps(value))


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a power cut cannot undo a rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
