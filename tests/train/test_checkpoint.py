"""Atomic writes (ladder.io) and checkpoints: files, manifest, verification, identity."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import fast_config, resumable_fit, same_weights, small_mlp

from ladder.errors import LadderError
from ladder.io import atomic_write, atomic_write_bytes, atomic_write_text
from ladder.train import Trainer
from ladder.train.checkpoint import load_checkpoint, rng_state, set_rng_state


def test_atomic_write_text_and_bytes_create_parents(tmp_path):
    text_path = atomic_write_text(tmp_path / "a" / "b.txt", "héllo")
    assert text_path.read_text(encoding="utf-8") == "héllo"
    bytes_path = atomic_write_bytes(tmp_path / "c" / "d.bin", b"\x00\x01")
    assert bytes_path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["b.txt", "d.bin"]


def test_atomic_write_replaces_existing_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def half_write(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_checkpoint_folder_files_and_manifest(tmp_path, blobs):
    trainer = resumable_fit(tmp_path, blobs, epochs=1, identity={"model_type": "mlp"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "previous"]
    last = tmp_path / "last"
    assert sorted(p.name for p in last.iterdir()) == [
        "callbacks.safetensors",  # early stopping's best weights
        "manifest.json",
        "state.pt",
        "weights.safetensors",
    ]
    manifest = json.loads((last / "manifest.json").read_text())
    assert manifest["identity"] == {"model_type": "mlp"}
    assert (manifest["epoch"], manifest["batch"], manifest["in_epoch"]) == (1, 8, False)
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((last / name).read_bytes()).hexdigest() == digest
    weights = load_file(last / "weights.safetensors")
    assert same_weights(weights, {k: v for k, v in trainer.module.state_dict().items()})


def test_state_file_loads_with_weights_only(tmp_path, blobs):
    resumable_fit(tmp_path, blobs, epochs=1, crash_at=5)
    state = torch.load(tmp_path / "last" / "state.pt", weights_only=True)
    assert set(state) >= {
        "epoch", "batch", "in_epoch", "step", "optimizer", "scheduler", "scaler", "history",
        "callbacks", "ranks", "stop_training",
    }  # fmt: skip
    assert (state["epoch"], state["batch"], state["step"], state["in_epoch"]) == (1, 3, 3, True)
    assert state["scheduler"]["last_epoch"] == 3 and state["optimizer"]["state"]
    (rank,) = state["ranks"]
    assert set(rank["rng"]) == {"python", "numpy", "torch", "cuda", "generator"}
    assert rank["losses"].shape == (3,) and rank["sizes"] == [16, 16, 16]
    stopper = state["callbacks"][0]
    assert stopper["name"] == "EarlyStopping"
    assert stopper["state"]["best_weights"] is None  # no epoch has ended yet


def test_rng_states_round_trip():
    generator = torch.Generator().manual_seed(3)
    saved = rng_state(generator)
    draws = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=generator))
    set_rng_state(saved, generator)
    again = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=generator))
    assert draws == again


def test_no_checkpoint_says_so(tmp_path):
    with pytest.raises(LadderError) as info:
        load_checkpoint(tmp_path)
    assert str(info.value) == (
        f"--resume: no checkpoint in {tmp_path} (train without --resume first)"
    )


def test_no_usable_checkpoint_warns_for_each(tmp_path, blobs):
    resumable_fit(tmp_path, blobs, epochs=1)
    (tmp_path / "last" / "state.pt").write_bytes(b"")
    (tmp_path / "previous" / "manifest.json").unlink()
    with pytest.warns(RuntimeWarning) as warned, pytest.raises(LadderError) as info:
        load_checkpoint(tmp_path)
    assert str(info.value) == f"no usable checkpoint in {tmp_path}"
    messages = [str(w.message) for w in warned]
    assert f"{tmp_path / 'last' / 'state.pt'} is corrupt" in messages[0]
    assert f"{tmp_path / 'previous' / 'manifest.json'} is unreadable" in messages[1]


def test_a_different_model_names_the_differing_keys(tmp_path, blobs):
    identity = {"model_type": "mlp", "model_config": {"hidden": [16], "dropout": 0.3}}
    resumable_fit(tmp_path, blobs, epochs=1, identity=identity)
    other = {"model_type": "mlp", "model_config": {"hidden": [8], "dropout": 0.3}, "n_classes": 3}
    with pytest.raises(LadderError) as info:
        resumable_fit(tmp_path, blobs, resume=True, identity=other)
    assert str(info.value) == (
        f"checkpoint in {tmp_path} was written by a different model (saved vs now): "
        "model_config.hidden [16] vs [8], n_classes (none) vs 3"
    )


def test_weights_of_another_architecture_are_named(tmp_path, blobs):
    resumable_fit(tmp_path, blobs, epochs=1)
    trainer = Trainer(small_mlp(n_features=5), fast_config())  # no identity to compare
    with pytest.raises(LadderError) as info:
        trainer.fit(np.zeros((8, 5), np.float32), np.arange(8) % 3, resume_from=tmp_path)
    assert str(info.value) == (
        f"checkpoint in {tmp_path} does not fit this model (saved vs now): "
        "blocks.0.linear.weight [16, 4] vs [16, 5]"
    )


def test_a_killed_writer_leaves_the_checkpoints_intact(tmp_path, blobs, monkeypatch):
    resumable_fit(tmp_path, blobs, epochs=1)
    before = json.loads((tmp_path / "last" / "manifest.json").read_text())

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while writing the state

    import ladder.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint.torch, "save", die)
    with pytest.raises(KeyboardInterrupt):
        resumable_fit(tmp_path, blobs, epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "previous"]
    assert json.loads((tmp_path / "last" / "manifest.json").read_text()) == before
