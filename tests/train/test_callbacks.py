"""Callbacks: early stopping, history, progress bar and checkpoints."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import accuracy, fast_config, small_mlp

from ladder import console
from ladder.config import EarlyStoppingConfig
from ladder.errors import LadderError
from ladder.train import Callback, Checkpoint, EarlyStopping, History, ProgressBar, Trainer


class Snapshots(Callback):
    """Keeps a copy of the weights after every epoch."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, trainer, log):
        state = trainer.module.state_dict()
        self.states[log["epoch"]] = {k: v.detach().clone() for k, v in state.items()}


def fake_trainer() -> SimpleNamespace:
    return SimpleNamespace(module=nn.Linear(2, 1), stop_training=False)


def run_values(callback: EarlyStopping, trainer, values: list[float], key: str = "val_loss"):
    """Feed epoch logs with `values`, setting the weights to the epoch number; epochs run."""
    callback.on_train_begin(trainer)
    for epoch, value in enumerate(values, start=1):
        with torch.no_grad():
            trainer.module.weight.fill_(epoch)
        callback.on_epoch_end(trainer, {"epoch": epoch, "train_loss": 1.0, key: value})
        if trainer.stop_training:
            break
    callback.on_train_end(trainer)
    return epoch


def test_early_stopping_stops_after_patience_and_restores_best():
    trainer = fake_trainer()
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=2))
    last = run_values(stopper, trainer, [3.0, 2.0, 1.0, 1.5, 1.2, 0.5])
    assert last == 5 and trainer.stop_training
    assert (stopper.best_epoch, stopper.best_value) == (3, 1.0)
    assert torch.all(trainer.module.weight == 3)


def test_early_stopping_maximizes_accuracy_in_auto_mode():
    trainer = fake_trainer()
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="val_accuracy", patience=1))
    last = run_values(stopper, trainer, [0.5, 0.8, 0.7], key="val_accuracy")
    assert last == 3 and stopper.best_epoch == 2
    assert torch.all(trainer.module.weight == 2)


def test_min_delta_and_nan_do_not_count_as_improvement():
    trainer = fake_trainer()
    cfg = EarlyStoppingConfig(monitor="val_loss", patience=2, min_delta=0.1)
    stopper = EarlyStopping(cfg)
    assert run_values(stopper, trainer, [1.0, 0.95, float("nan"), 0.1]) == 3
    assert stopper.best_epoch == 1


def test_unknown_monitor_lists_available_keys():
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="val_acc"))
    log = {"epoch": 1, "lr": 0.1, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5}
    with pytest.raises(LadderError) as info:
        stopper.on_epoch_end(fake_trainer(), log)
    assert str(info.value) == (
        "train.early_stopping.monitor: unknown key 'val_acc'; did you mean 'val_accuracy'? "
        "(available: lr, train_loss, val_loss, val_accuracy)"
    )


def test_trainer_early_stopping_restores_the_best_epoch_weights():
    # random labels: the model overfits, so the validation loss turns up early
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 4)).astype(np.float32), rng.integers(0, 3, 80)
    config = fast_config(
        epochs=40, optimizer={"lr": 0.05}, early_stopping={"monitor": "val_loss", "patience": 3}
    )
    snapshots = Snapshots()
    trainer = Trainer(small_mlp(), config, callbacks=[snapshots])
    history = trainer.fit(X[:40], y[:40], X[40:], y[40:])
    assert len(history) < 40  # stopped early
    best = min(history, key=lambda row: row["val_loss"])["epoch"]
    assert best == len(history) - 3
    for key, value in trainer.module.state_dict().items():
        assert torch.equal(value, snapshots.states[best][key]), key
    assert not torch.equal(
        trainer.module.state_dict()["head.weight"], snapshots.states[best + 1]["head.weight"]
    )


def test_trainer_unknown_monitor_error(blobs):
    config = fast_config(early_stopping={"monitor": "val_f1_macro"})
    trainer = Trainer(small_mlp(), config, val_metrics=accuracy)
    with pytest.raises(LadderError, match=r"unknown key 'val_f1_macro'.*available: .*val_accuracy"):
        trainer.fit(*blobs)


def test_early_stopping_without_validation_data_says_so(blobs):
    trainer = Trainer(small_mlp(), fast_config(early_stopping={"monitor": "val_loss"}))
    with pytest.raises(LadderError, match="no validation data"):
        trainer.fit(blobs[0], blobs[1])


def test_history_writes_csv_every_epoch(tmp_path, blobs):
    path = tmp_path / "run" / "history.csv"
    seen_rows = []

    class ReadBack(Callback):
        def on_epoch_end(self, trainer, log):
            seen_rows.append(len(path.read_text().splitlines()) - 1)

    history = History(path)
    trainer = Trainer(
        small_mlp(), fast_config(), callbacks=[history, ReadBack()], val_metrics=accuracy
    )
    rows = trainer.fit(*blobs)
    assert seen_rows == [1, 2, 3]  # rewritten after each epoch
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["epoch", "lr", "train_loss", "val_loss", "val_accuracy", "seconds"]
    assert [int(r["epoch"]) for r in table] == [1, 2, 3]
    assert float(table[-1]["val_loss"]) == pytest.approx(rows[-1]["val_loss"])
    assert history.rows == rows
    assert [p.name for p in path.parent.iterdir()] == ["history.csv"]  # no temp files


def test_history_in_memory_only(tmp_path, blobs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    history = History()
    Trainer(small_mlp(), fast_config(), callbacks=[history]).fit(blobs[0], blobs[1])
    assert [row["epoch"] for row in history.rows] == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_prints_a_line_per_epoch_when_not_a_tty(capsys, blobs):
    config = fast_config()
    Trainer(small_mlp(), config, callbacks=[ProgressBar(label="mlp")]).fit(*blobs)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"mlp epoch {k}/{config.epochs}" for k in range(1, config.epochs + 1)
    ]


def test_progress_bar_is_silent_when_quiet(capsys, blobs):
    console.set_verbosity(console.QUIET)
    Trainer(small_mlp(), fast_config(), callbacks=[ProgressBar()]).fit(*blobs)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_checkpoint_writes_last_each_epoch(tmp_path, blobs):
    saved = []

    class ReadState(Callback):
        def on_epoch_end(self, trainer, log):  # runs before the Checkpoint: it comes last
            saved.append(trainer.callbacks[-1])

    config = fast_config(scheduler={"name": "cosine"})
    checkpoint = Checkpoint(tmp_path)
    trainer = Trainer(small_mlp(), config, callbacks=[checkpoint, ReadState()])
    trainer.fit(*blobs)
    assert saved == [checkpoint] * 3
    state = torch.load(tmp_path / "last" / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["in_epoch"]) == (3, 24, False)
    previous = torch.load(tmp_path / "previous" / "state.pt", weights_only=True)
    assert previous["step"] == 16  # 120 rows / 16 = 8 steps per epoch
    assert state["scheduler"]["last_epoch"] == 24
    assert state["optimizer"]["state"]  # Adam moments were saved

    from safetensors.torch import load_file

    weights = load_file(tmp_path / "last" / "weights.safetensors")
    for key, value in trainer.module.state_dict().items():
        assert torch.equal(weights[key], value), key


def test_callback_state_hooks_default_to_nothing():
    callback = Callback()
    assert callback.state_dict() == {} and callback.main_process_only is False
    callback.load_state_dict({})
    assert ProgressBar.main_process_only is True


def test_early_stopping_state_round_trip():
    trainer = fake_trainer()
    stopper = EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=3))
    stopper.on_train_begin(trainer)
    for epoch, value in enumerate([2.0, 1.0, 1.5], start=1):
        with torch.no_grad():
            trainer.module.weight.fill_(epoch)
        stopper.on_epoch_end(trainer, {"epoch": epoch, "val_loss": value})
    state = stopper.state_dict()
    assert (state["best_value"], state["best_epoch"], state["wait"]) == (1.0, 2, 1)
    other = EarlyStopping(EarlyStoppingConfig(monitor="val_loss", patience=3))
    other.on_train_begin(trainer)
    other.load_state_dict(state)
    other.on_train_end(trainer)
    assert torch.all(trainer.module.weight == 2)
