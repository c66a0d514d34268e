"""Data parallel training: the helpers for one process, batch sharing, and real torchrun runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import GLOO_EXIT_CRASH
from safetensors.torch import load_file
from train_helpers import fast_config, same_weights, small_mlp

from ladder.errors import LadderError
from ladder.train import distributed

WORKER = Path(__file__).with_name("worker.py")
PLAIN = ("--dropout", "0", "--noise", "0")  # no randomness beyond the shuffling


# ----------------------------------------------------------------------------- one process


def test_helpers_are_no_ops_without_a_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env("cpu") is False
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    tensor = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum(tensor) is tensor
    array = np.arange(6).reshape(3, 2)
    assert distributed.all_gather_array(array) is array
    assert distributed.all_gather_object({"a": 1}) == [{"a": 1}]
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.validation_share(10, 4) == (slice(0, 10), None)
    distributed.barrier()
    distributed.cleanup()


def test_init_from_env_with_one_process_does_nothing(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.init_from_env("cpu") is False
    assert not distributed.is_initialized()


def as_rank(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_shares_are_contiguous_and_cover_everything(monkeypatch, rank):
    as_rank(monkeypatch, rank, 3)
    expected = torch.arange(10).tensor_split(3)[rank]
    assert torch.equal(distributed.shard(torch.arange(10)), expected)
    assert distributed.shard_range(10) == slice(expected[0].item(), expected[-1].item() + 1)


def test_share_batches_weights_make_each_step_a_mean_over_its_rows(monkeypatch):
    as_rank(monkeypatch, 1, 2)
    batches = distributed.global_batches(torch.arange(13), 4)  # 4, 4, 4, 1 -> the 1 is dropped
    assert [len(b) for b in batches] == [4, 4, 4]
    mine, weights = distributed.share_batches(batches, accumulate=2)
    assert [b.tolist() for b in mine] == [[2, 3], [6, 7], [10, 11]]
    # steps of 8 and 4 rows; each share is 2 rows; DDP averages over the 2 processes
    assert weights == [2 * 2 / 8, 2 * 2 / 8, 2 * 2 / 4]


def test_share_targets_weights_make_each_step_a_mean_over_its_counted_targets(monkeypatch):
    n_targets = np.array([[4, 0, 2, 2], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert distributed.share_targets(n_targets, accumulate=2) == ([8, 0, 4, 0], [1, 0, 1, 0])
    as_rank(monkeypatch, 1, 2)  # columns 2 and 3 of every batch
    counts, weights = distributed.share_targets(n_targets, accumulate=1)
    assert counts == [4, 0, 2, 0]
    assert weights == [4 * 2 / 8, 0.0, 2 * 2 / 4, 0.0]  # a batch that counts nothing: 0


def test_trailing_batch_too_small_to_share_is_dropped(monkeypatch):
    as_rank(monkeypatch, 0, 2)
    assert [len(b) for b in distributed.global_batches(torch.arange(11), 4)] == [4, 4]
    assert [len(b) for b in distributed.global_batches(torch.arange(12), 4)] == [4, 4, 4]
    assert [len(b) for b in distributed.global_batches(torch.arange(3), 4)] == [3]  # the only one


def test_global_batch_size_must_divide_by_the_processes(monkeypatch):
    as_rank(monkeypatch, 0, 3)
    with pytest.raises(LadderError) as info:
        distributed.parallel(small_mlp(), torch.device("cpu"), fast_config(batch_size=16))
    assert str(info.value) == (
        "train.batch_size (16) is the global batch size and must be divisible by the number "
        "of processes (--nproc 3)"
    )


# ----------------------------------------------------------------------------- torchrun


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(out: Path, *args: str, nproc: int = 2) -> subprocess.Popen:
    """The worker under torchrun with `nproc` CPU processes (nproc 0: a plain process)."""
    out.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable]
    if nproc:
        launcher += [
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={nproc}",
            "--master-addr=127.0.0.1",
            f"--master-port={free_port()}",
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [*launcher, str(WORKER), str(out), *args]
    with (out / "log.txt").open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def wait(process: subprocess.Popen, out: Path, timeout: float = 180) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and its workers: our own session
        process.wait()
        pytest.fail(f"timed out:\n{(out / 'log.txt').read_text()}")


def run(out: Path, *args: str, nproc: int = 2) -> Path:
    """A torchrun run that must succeed (tried once more after gloo's exit crash only)."""
    for attempt in (1, 2):
        code = wait(start(out, *args, nproc=nproc), out)
        log = (out / "log.txt").read_text()
        if code == 0 or attempt == 2 or GLOO_EXIT_CRASH not in log:
            break
    assert code == 0, log
    return out


def history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One process and two processes (DDP on CPU), same global batch size, no dropout."""
    root = tmp_path_factory.mktemp("runs")
    run(root / "single", *PLAIN, nproc=0)
    run(root / "ddp", *PLAIN)
    return root


@pytest.mark.slow
def test_two_processes_match_one_process(runs):
    single, ddp = history(runs / "single"), history(runs / "ddp")
    assert [row["epoch"] for row in ddp] == [1, 2, 3]
    for one, two in zip(single, ddp, strict=True):
        assert abs(one["val_loss"] - two["val_loss"]) < 1e-4
        assert abs(one["train_loss"] - two["train_loss"]) < 1e-4
        assert one["val_accuracy"] == two["val_accuracy"]
    # rank 0 alone wrote the checkpoints; both processes trained
    assert sorted(p.name for p in (runs / "ddp").iterdir()) == [
        "checkpoints", "final.safetensors", "history.json", "log.txt", "pid-0", "pid-1",
    ]  # fmt: skip
    manifest = json.loads((runs / "ddp" / "checkpoints" / "last" / "manifest.json").read_text())
    assert manifest["world_size"] == 2


@pytest.mark.slow
def test_language_model_steps_with_two_processes_match_one_process(tmp_path):
    """fit_steps under DDP: each process trains on its rows of the same windows; with a loss
    mask the shares count different numbers of targets, and the weights make up for it."""
    single = run(tmp_path / "single", "--lm", *PLAIN, nproc=0)
    ddp = run(tmp_path / "ddp", "--lm", *PLAIN)
    assert [row["step"] for row in history(ddp)] == [3, 6, 9]
    for one, two in zip(history(single), history(ddp), strict=True):
        assert abs(one["val_loss"] - two["val_loss"]) < 1e-4
        assert abs(one["train_loss"] - two["train_loss"]) < 1e-4
    a, b = load_file(single / "final.safetensors"), load_file(ddp / "final.safetensors")
    # 1e-4: Adam magnifies rounding where a gradient is ~0 (the key bias, softmax-invariant)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


@pytest.mark.slow
def test_ddp_sigterm_then_resume_matches_an_uninterrupted_ddp_run(tmp_path):
    reference = run(tmp_path / "reference")  # with dropout and augmentation: per-rank RNG
    out = tmp_path / "interrupted"
    process = start(out, "--sleep", "0.05")
    deadline = time.monotonic() + 180
    while True:  # until a mid-epoch checkpoint shows up
        try:
            manifest = json.loads((out / "checkpoints/last/manifest.json").read_text())
        except (OSError, ValueError):
            manifest = None
        if manifest is not None and manifest["in_epoch"] and manifest["step"] >= 2:
            break
        assert process.poll() is None and time.monotonic() < deadline, (out / "log.txt").read_text()
        time.sleep(0.005)
    os.kill(int((out / "pid-1").read_text()), signal.SIGTERM)  # one worker only
    assert wait(process, out) != 0
    log = (out / "log.txt").read_text()
    assert log.count("stopped by SIGTERM") == 2, log  # both workers stopped at the same step
    manifest = json.loads((out / "checkpoints/last/manifest.json").read_text())
    assert manifest["in_epoch"] and manifest["world_size"] == 2

    run(out, "--resume")
    assert abs(history(out)[-1]["val_loss"] - history(reference)[-1]["val_loss"]) < 1e-4
    assert same_weights(
        load_file(out / "final.safetensors"), load_file(reference / "final.safetensors")
    )
