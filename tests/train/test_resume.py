"""Exact resume: mid-epoch checkpoints, SIGKILL and SIGTERM of a real process, corrupt files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from train_helpers import (
    fast_config,
    resumable_fit,
    same_weights,
    small_mlp,
    without_seconds,
)

from ladder.errors import TrainingInterrupted
from ladder.train import Callback, Checkpoint, Trainer

WORKER = Path(__file__).with_name("worker.py")


# ----------------------------------------------------------------------------- in process


@pytest.fixture
def reference(tmp_path, blobs) -> Trainer:
    """An uninterrupted run of `resumable_fit`."""
    return resumable_fit(tmp_path / "reference", blobs)


@pytest.mark.parametrize("crash_at", [5, 8, 9])  # mid-epoch, last step of epoch 1, epoch 2
def test_resume_after_a_crash_is_exact(tmp_path, blobs, reference, crash_at):
    directory = tmp_path / "crashed"
    assert resumable_fit(directory, blobs, crash_at=crash_at) is None
    resumed = resumable_fit(directory, blobs, resume=True)
    assert same_weights(resumed.module, reference.module)
    assert without_seconds(resumed.history) == without_seconds(reference.history)
    stopper = resumed.callbacks[0]
    assert (stopper.best_epoch, stopper.best_value) == (
        reference.callbacks[0].best_epoch,
        reference.callbacks[0].best_value,
    )


def test_resume_with_gradient_accumulation_is_exact(tmp_path, blobs):
    settings = {"accumulate_steps": 2, "checkpoint_every_steps": 1}
    reference = resumable_fit(tmp_path / "a", blobs, **settings)
    assert resumable_fit(tmp_path / "b", blobs, crash_at=3, **settings) is None  # at batch 6
    resumed = resumable_fit(tmp_path / "b", blobs, resume=True, **settings)
    assert same_weights(resumed.module, reference.module)
    assert resumed.step == reference.step == 12  # 8 batches per epoch -> 4 steps, 3 epochs


def test_resume_a_finished_run_trains_no_more(tmp_path, blobs, reference):
    again = resumable_fit(tmp_path / "reference", blobs, resume=True)
    assert same_weights(again.module, reference.module)
    assert without_seconds(again.history) == without_seconds(reference.history)


def test_resume_with_more_epochs_goes_on(tmp_path, blobs):
    resumable_fit(tmp_path, blobs, epochs=2, scheduler={"name": "none"})
    longer = resumable_fit(tmp_path, blobs, resume=True, epochs=4, scheduler={"name": "none"})
    assert [row["epoch"] for row in longer.history] == [1, 2, 3, 4]
    assert longer.step == 32


def test_history_callback_gets_its_rows_back(tmp_path, blobs):
    from ladder.train import History

    resumable_fit(tmp_path, blobs, crash_at=10, callbacks=[History()])
    history = History(tmp_path / "history.csv")
    resumed = resumable_fit(tmp_path, blobs, resume=True, callbacks=[history])
    assert without_seconds(history.rows) == without_seconds(resumed.history)
    assert len(history.rows) == 3


def test_truncated_last_checkpoint_falls_back_to_previous(tmp_path, blobs, reference):
    directory = tmp_path / "crashed"
    resumable_fit(directory, blobs, crash_at=11)  # checkpoints at steps 3, 6, 8 (epoch), 9
    weights = directory / "last" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    starts = []

    class FirstStep(Callback):
        def on_epoch_begin(self, trainer):
            starts.append(trainer.step)

    with pytest.warns(RuntimeWarning) as warned:
        resumed = resumable_fit(directory, blobs, resume=True, callbacks=[FirstStep()])
    assert len(warned) == 1
    message = str(warned[0].message)
    assert str(weights) in message and "corrupt" in message
    assert str(directory / "previous") in message
    assert starts[0] == 8  # previous/ was the end of epoch 1
    assert same_weights(resumed.module, reference.module)


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C (SIGINT)")],
)
def test_sigterm_and_ctrl_c_checkpoint_and_raise(tmp_path, blobs, reference, signum, code, said):
    before = signal.getsignal(signum)

    class Stop(Callback):
        def on_batch_end(self, trainer, batch_size, loss):
            if trainer.step == 4:
                os.kill(os.getpid(), signum)  # the loop checks after the step

    with pytest.raises(TrainingInterrupted) as info:
        resumable_fit(tmp_path, blobs, callbacks=[Stop()], checkpoint_every_steps=None)
    assert info.value.exit_code == code
    assert str(info.value) == (
        f"training stopped by {said} at epoch 1, step 4 (checkpoint in {tmp_path}); "
        "continue with --resume"
    )
    assert signal.getsignal(signum) is before  # the previous handler is back
    manifest = json.loads((tmp_path / "last" / "manifest.json").read_text())
    assert (manifest["epoch"], manifest["batch"], manifest["step"]) == (1, 4, 4)
    resumed = resumable_fit(tmp_path, blobs, resume=True)
    assert same_weights(resumed.module, reference.module)


def test_a_second_ctrl_c_stops_at_once(tmp_path, blobs):
    class CtrlCTwice(Callback):
        def on_batch_end(self, trainer, batch_size, loss):
            if trainer.step == 2:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        resumable_fit(tmp_path, blobs, callbacks=[CtrlCTwice()], checkpoint_every_steps=None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_handler_only_in_the_main_thread(blobs):
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    class Handler(Callback):
        def on_train_begin(self, trainer):
            seen.append(signal.getsignal(signal.SIGTERM))

    def fit():
        Trainer(small_mlp(), fast_config(epochs=1), callbacks=[Handler()]).fit(*blobs[:2])

    thread = threading.Thread(target=fit)
    thread.start()
    thread.join()
    assert seen == [before]


def test_checkpoints_every_n_steps_keep_the_previous_one(tmp_path, blobs):
    resumable_fit(tmp_path, blobs, crash_at=7)  # checkpoints at steps 3 and 6
    last, previous = (
        json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("last", "previous")
    )
    assert (last["epoch"], last["batch"], last["in_epoch"], last["step"]) == (1, 6, True, 6)
    assert previous["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "previous"]


def test_checkpoint_without_every_steps_uses_the_config(tmp_path, blobs):
    steps = []

    class Steps(Callback):
        def on_epoch_end(self, trainer, log):
            steps.append(json.loads((tmp_path / "last" / "manifest.json").read_text())["step"])

    config = fast_config(epochs=1, checkpoint_every_steps=2)
    Trainer(small_mlp(), config, callbacks=[Checkpoint(tmp_path), Steps()]).fit(*blobs)
    assert steps == [8]  # runs before the epoch's own checkpoint (checkpoints come last)


# ----------------------------------------------------------------------------- real processes


def start_worker(out: Path, *args: str) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(WORKER), str(out), *args]
    with (out / "log.txt").open("ab") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def finish_worker(out: Path, *args: str) -> None:
    process = start_worker(out, *args)
    assert process.wait(timeout=120) == 0, (out / "log.txt").read_text()


def read_manifest(out: Path, name: str = "last") -> dict | None:
    try:
        return json.loads((out / "checkpoints" / name / "manifest.json").read_text())
    except (OSError, ValueError):  # not there yet, or being renamed
        return None


def wait_for_step(process: subprocess.Popen, out: Path, step: int) -> dict:
    """Poll the checkpoint folder until a mid-epoch checkpoint at `step` or later appears."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        manifest = read_manifest(out)
        if manifest is not None and manifest["in_epoch"] and manifest["step"] >= step:
            return manifest
        assert process.poll() is None, "the worker ended before it was to be stopped"
        time.sleep(0.002)
    process.kill()
    pytest.fail("no mid-epoch checkpoint within 120 s")


def assert_same_run(out: Path, reference: Path) -> None:
    final, expected = (
        load_file(out / "final.safetensors"),
        load_file(reference / "final.safetensors"),
    )
    assert same_weights(final, expected)
    assert json.loads((out / "history.json").read_text()) == json.loads(
        (reference / "history.json").read_text()
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    finish_worker(out)
    return out


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_bitwise_identical_weights(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    process = start_worker(out, "--sleep", "0.05")
    wait_for_step(process, out, 2)  # epoch 1 has 8 steps
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert not (out / "final.safetensors").exists()
    manifest = read_manifest(out) or read_manifest(out, "previous")  # killed mid-rotation?
    assert manifest["in_epoch"] and 0 < manifest["batch"] < 8

    finish_worker(out, "--resume")
    assert_same_run(out, uninterrupted)


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_exits_143_and_resumes(tmp_path, uninterrupted):
    out = tmp_path / "terminated"
    process = start_worker(out, "--sleep", "0.05")
    wait_for_step(process, out, 2)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    said = re.search(
        r"stopped by SIGTERM at epoch (\d+), step (\d+)", (out / "log.txt").read_text()
    )
    manifest = read_manifest(out)
    assert said and (manifest["epoch"], manifest["step"]) == (int(said[1]), int(said[2]))
    assert manifest["in_epoch"] and manifest["step"] >= 2

    finish_worker(out, "--resume")
    assert_same_run(out, uninterrupted)
