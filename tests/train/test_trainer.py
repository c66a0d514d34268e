"""The Trainer: learning, logging, reproducibility, losses, sampling and precision."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from train_helpers import accuracy, fast_config, make_blobs, small_mlp

from ladder.errors import DataError, LadderError
from ladder.models.cnn import CNNConfig, build_cnn
from ladder.train import Callback, Checkpoint, EarlyStopping, History, Trainer, distributed
from ladder.train.optim import l1_penalty


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_training_learns_a_toy_problem(blobs):
    X, y, X_val, y_val = blobs
    trainer = Trainer(small_mlp(), fast_config(epochs=8), val_metrics=accuracy)
    history = trainer.fit(X, y, X_val, y_val)
    assert [row["epoch"] for row in history] == list(range(1, 9))
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["val_accuracy"] > 0.9
    prob = trainer.predict_proba(X_val)
    assert prob.shape == (30, 3) and prob.dtype == np.float32
    assert np.allclose(prob.sum(axis=1), 1, atol=1e-6)
    assert (prob.argmax(axis=1) == y_val).mean() == history[-1]["val_accuracy"]


def test_log_row_keys_and_values(blobs):
    trainer = Trainer(small_mlp(), fast_config(epochs=1), val_metrics=accuracy)
    (row,) = trainer.fit(*blobs)
    assert list(row) == ["epoch", "lr", "train_loss", "val_loss", "val_accuracy", "seconds"]
    assert row["lr"] == 0.01 and row["seconds"] > 0
    assert all(isinstance(v, int | float) for v in row.values())


def test_without_validation_data_only_training_keys(blobs):
    (row,) = Trainer(small_mlp(), fast_config(epochs=1)).fit(blobs[0], blobs[1])
    assert list(row) == ["epoch", "lr", "train_loss", "seconds"]


def test_same_seed_gives_identical_weights(blobs):
    def fit(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(123)  # the same starting module
        module = small_mlp(dropout=0.3, batchnorm=True)
        config = fast_config(init="kaiming", scheduler={"name": "cosine", "warmup_epochs": 1})
        Trainer(module, config, seed=seed).fit(*blobs)
        return state_of(module)

    first, second, other = fit(0), fit(0), fit(1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_class_weights_change_the_loss(blobs):
    X, y, _, _ = blobs
    weights = np.array([1.0, 5.0, 0.2], dtype=np.float32)
    losses = []
    for class_weights in (None, weights):
        torch.manual_seed(0)
        trainer = Trainer(small_mlp(), fast_config(epochs=1), class_weights=class_weights)
        losses.append(trainer.fit(X, y)[0]["train_loss"])
    assert losses[0] != pytest.approx(losses[1], rel=1e-3)

    logits, target = torch.randn(6, 3), torch.tensor([0, 1, 2, 1, 1, 0])
    expected = F.cross_entropy(logits, target, weight=torch.from_numpy(weights))
    assert trainer.loss_fn(logits, target).item() == pytest.approx(expected.item())


def test_l1_adds_the_penalty_to_the_loss(blobs):
    X, y, _, _ = blobs
    losses = []
    for l1 in (0.0, 0.01):
        torch.manual_seed(0)
        module = small_mlp()
        penalty = l1_penalty(module).item()
        # a tiny learning rate keeps the weights (and so the penalty) nearly constant
        config = fast_config(epochs=1, l1=l1, optimizer={"name": "sgd", "lr": 1e-7})
        losses.append(Trainer(module, config).fit(X, y)[0]["train_loss"])
    assert losses[1] > losses[0]
    assert losses[1] - losses[0] == pytest.approx(0.01 * penalty, rel=1e-3)


def test_grad_clip_bounds_the_gradient_norm(blobs):
    def last_grad_norm(grad_clip: float | None) -> float:
        torch.manual_seed(0)
        module = small_mlp()
        Trainer(module, fast_config(epochs=1, grad_clip=grad_clip)).fit(blobs[0], blobs[1])
        grads = [p.grad for p in module.parameters()]  # the last step's (clipped) gradients
        return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()

    assert last_grad_norm(None) > 0.05
    assert last_grad_norm(0.05) <= 0.05 + 1e-6


def test_sample_weights_sample_rows_in_proportion(blobs):
    X, y, _, _ = blobs
    weights = (y == 2).astype(float)  # only class 2 is ever drawn
    trainer = Trainer(small_mlp(), fast_config(epochs=5, optimizer={"lr": 0.05}))
    trainer.fit(X, y, sample_weights=weights)
    assert (trainer.predict_proba(X).argmax(axis=1) == 2).all()


@pytest.mark.parametrize("bad", [np.ones(5), -np.ones(120), np.zeros(120)])
def test_invalid_sample_weights(blobs, bad):
    with pytest.raises(DataError, match="sample_weights"):
        Trainer(small_mlp(), fast_config()).fit(blobs[0], blobs[1], sample_weights=bad)


def test_train_transform_gets_training_batches_and_the_generator(blobs):
    calls = []

    def transform(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append(len(batch))
        assert isinstance(generator, torch.Generator)
        return batch + torch.randn(batch.shape, generator=generator)

    Trainer(small_mlp(), fast_config(epochs=1), train_transform=transform).fit(*blobs)
    assert calls == [16] * 7 + [8]  # 120 training rows; validation is not transformed


def test_scheduler_steps_once_per_batch(blobs):
    trainer = Trainer(small_mlp(), fast_config(epochs=2, scheduler={"name": "cosine"}))
    history = trainer.fit(blobs[0], blobs[1])
    assert trainer.step == trainer.scheduler.last_epoch == 16
    assert history[1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine reached its floor


def test_trailing_single_row_batch_is_dropped_for_batchnorm():
    X, y = make_blobs(33)
    trainer = Trainer(small_mlp(batchnorm=True), fast_config(epochs=1))
    trainer.fit(X, y)
    assert trainer.step == 2


def test_early_stopping_from_the_config(blobs):
    config = fast_config(epochs=30, early_stopping={"monitor": "train_loss", "patience": 1})
    trainer = Trainer(small_mlp(), config, callbacks=())
    history = trainer.fit(blobs[0], blobs[1])
    stopper = trainer.callbacks[0]
    assert isinstance(stopper, EarlyStopping)
    best = min(history, key=lambda row: row["train_loss"])
    assert stopper.best_epoch == best["epoch"] and stopper.best_value == best["train_loss"]


def test_fp16_on_cpu_is_refused():
    with pytest.raises(LadderError) as info:
        Trainer(small_mlp(), fast_config(precision="fp16"), device="cpu")
    assert str(info.value) == "train.precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU"


def test_bf16_on_cpu_trains(blobs):
    trainer = Trainer(small_mlp(), fast_config(epochs=3, precision="bf16"), val_metrics=accuracy)
    history = trainer.fit(*blobs)
    assert np.isfinite([row["train_loss"] for row in history]).all()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    prob = trainer.predict_proba(blobs[2])
    assert prob.dtype == np.float32 and np.allclose(prob.sum(axis=1), 1, atol=1e-5)


def test_lenet_on_images():
    rng = np.random.default_rng(0)
    X = rng.random((24, 1, 16, 16), dtype=np.float32)
    y = (X[:, 0, :8].mean(axis=(1, 2)) > X[:, 0, 8:].mean(axis=(1, 2))).astype(np.int64)
    module = build_cnn(CNNConfig(arch="lenet5"), (1, 16, 16), 2)
    history = Trainer(module, fast_config(epochs=2, batch_size=8)).fit(X, y)
    assert len(history) == 2
    assert Trainer(module, fast_config()).predict_proba(X, batch_size=5).shape == (24, 2)


def test_mismatched_rows_are_a_data_error(blobs):
    with pytest.raises(DataError, match="training data: 120 rows of X but 119 labels"):
        Trainer(small_mlp(), fast_config()).fit(blobs[0], blobs[1][:-1])


# ----------------------------------------------------------------------------- accumulation


@pytest.mark.parametrize(("batch_size", "accumulate", "big_batch"), [(8, 2, 16), (16, 3, 48)])
def test_gradient_accumulation_equals_one_big_batch(blobs, batch_size, accumulate, big_batch):
    def fit(**settings) -> Trainer:
        torch.manual_seed(0)
        config = fast_config(scheduler={"name": "cosine", "warmup_epochs": 1}, **settings)
        trainer = Trainer(small_mlp(), config)
        trainer.fit(blobs[0], blobs[1])
        return trainer

    small = fit(batch_size=batch_size, accumulate_steps=accumulate)
    big = fit(batch_size=big_batch)
    assert small.step == big.step == small.scheduler.last_epoch  # one step per group
    for key, value in big.module.state_dict().items():
        assert torch.allclose(small.module.state_dict()[key], value, atol=1e-6), key
    assert small.history[-1]["train_loss"] == pytest.approx(big.history[-1]["train_loss"])


def test_a_trailing_partial_group_still_steps(blobs):
    trainer = Trainer(small_mlp(), fast_config(epochs=1, batch_size=16, accumulate_steps=3))
    trainer.fit(blobs[0], blobs[1])
    assert trainer.step == 3  # 8 batches: groups of 3, 3 and 2


# ----------------------------------------------------------------------------- torch.compile


def eager_weights(blobs) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    module = small_mlp(dropout=0.2)
    Trainer(module, fast_config(epochs=1)).fit(*blobs)
    return state_of(module)


def test_compile_failing_at_wrap_falls_back_to_eager(blobs, monkeypatch):
    def broken(model, **kwargs):
        raise RuntimeError("Python 3.99 is not supported")

    monkeypatch.setattr(torch, "compile", broken)
    torch.manual_seed(0)
    module = small_mlp(dropout=0.2)
    with pytest.warns(RuntimeWarning) as warned:
        Trainer(module, fast_config(epochs=1, compile=True)).fit(*blobs)
    assert [str(w.message) for w in warned] == [
        "train.compile: torch.compile failed (RuntimeError: Python 3.99 is not supported); "
        "training in eager mode"
    ]
    assert all(torch.equal(v, eager_weights(blobs)[k]) for k, v in module.state_dict().items())


def test_compile_failing_at_first_call_falls_back_to_eager(blobs, monkeypatch):
    calls = []

    def lazy_broken(model, **kwargs):
        def compiled(x):
            calls.append(len(x))
            raise OSError("no C compiler found")

        return compiled

    monkeypatch.setattr(torch, "compile", lazy_broken)
    torch.manual_seed(0)
    module = small_mlp(dropout=0.2)
    with pytest.warns(RuntimeWarning, match=r"\(OSError: no C compiler found\); training in eager"):
        trainer = Trainer(module, fast_config(epochs=1, compile=True))
        trainer.fit(*blobs)
    assert calls == [16]  # tried once, then eager for good
    assert list(module.state_dict()) == list(trainer.module.state_dict())
    assert all(torch.equal(v, eager_weights(blobs)[k]) for k, v in module.state_dict().items())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on CPU needs g++")
def test_compile_trains_and_saves_plain_keys(tmp_path, blobs):
    torch.manual_seed(0)
    module = small_mlp()
    trainer = Trainer(module, fast_config(epochs=1, compile=True), callbacks=[Checkpoint(tmp_path)])
    history = trainer.fit(*blobs)  # a fallback warning would fail the test (warnings are errors)
    assert type(trainer.model).__name__ == "_EagerOnFailure"
    assert type(trainer.model.compiled).__name__ == "OptimizedModule"
    assert np.isfinite(history[0]["train_loss"])
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "last" / "weights.safetensors")
    assert sorted(saved) == sorted(small_mlp().state_dict())  # no "_orig_mod." prefix


# ----------------------------------------------------------------------------- distributed


def test_fsdp_on_cpu_is_refused():
    with pytest.raises(LadderError) as info:
        Trainer(small_mlp(), fast_config(strategy="fsdp"), device="cpu")
    assert str(info.value) == "train.strategy: fsdp needs CUDA; use ddp on CPU"


def test_other_ranks_skip_main_process_callbacks_and_write_nothing(tmp_path, blobs, monkeypatch):
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    calls = []

    class MainOnly(Callback):
        main_process_only = True

        def on_epoch_end(self, trainer, log):
            calls.append(log)

    history = History(tmp_path / "history.csv")
    callbacks = [MainOnly(), history, Checkpoint(tmp_path / "checkpoints")]
    rows = Trainer(small_mlp(), fast_config(), callbacks=callbacks).fit(*blobs)
    assert calls == [] and history.rows == rows
    assert list(tmp_path.iterdir()) == []
