"""Atomic writes (ladder.io) and checkpoint save / load."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from ladder.config import OptimizerConfig, SchedulerConfig
from ladder.errors import LadderError
from ladder.io import atomic_write, atomic_write_bytes, atomic_write_text
from ladder.train.checkpoint import load_checkpoint, save_checkpoint
from ladder.train.optim import build_optimizer, build_scheduler


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


def trained_objects(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = build_optimizer(net, OptimizerConfig(lr=0.1))
    scheduler = build_scheduler(optimizer, SchedulerConfig(name="cosine"), 2, 3)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(5, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
    return net, optimizer, scheduler


def test_save_and_load_round_trip(tmp_path):
    net, optimizer, scheduler = trained_objects()
    save_checkpoint(tmp_path / "ck", net, optimizer=optimizer, scheduler=scheduler, epoch=2, step=3)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "state.pt",
        "weights.safetensors",
    ]

    fresh, fresh_opt, fresh_sched = trained_objects(seed=1)
    state = load_checkpoint(tmp_path / "ck", fresh, optimizer=fresh_opt, scheduler=fresh_sched)
    assert (state["epoch"], state["step"]) == (2, 3)
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert fresh_sched.last_epoch == scheduler.last_epoch
    assert fresh_sched.get_last_lr() == scheduler.get_last_lr()
    exp_avg = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], exp_avg)


def test_state_file_loads_with_weights_only(tmp_path):
    net, optimizer, scheduler = trained_objects()
    save_checkpoint(tmp_path, net, optimizer=optimizer, scheduler=scheduler, epoch=1, step=3)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert set(state) >= {"epoch", "step", "optimizer", "scheduler", "scaler", "torch_rng"}
    assert state["scaler"] is None


def test_missing_file_is_a_clear_error(tmp_path):
    net, _, _ = trained_objects()
    save_checkpoint(tmp_path, net)
    (tmp_path / "state.pt").unlink()
    with pytest.raises(LadderError, match=r"checkpoint incomplete: .*state\.pt is missing"):
        load_checkpoint(tmp_path, net)


def test_mismatched_weights_and_state_are_detected(tmp_path):
    net, _, _ = trained_objects()
    save_checkpoint(tmp_path / "a", net, step=3)
    save_checkpoint(tmp_path / "b", net, step=4)
    shutil.copy(tmp_path / "b" / "state.pt", tmp_path / "a" / "state.pt")
    with pytest.raises(LadderError, match=r"weights are from step 3 but state\.pt from step 4"):
        load_checkpoint(tmp_path / "a", net)
