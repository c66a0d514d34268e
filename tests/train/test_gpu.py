"""CUDA only (skipped elsewhere): fp16 with its grad scaler, DDP and FSDP, torch.compile."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from train_helpers import fast_config, resumable_fit, small_mlp

from ladder.train import Checkpoint, Trainer, distributed

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_fp16_resume_restores_scaler_and_cuda_rng(tmp_path, blobs):
    reference = resumable_fit(tmp_path / "a", blobs, device="cuda", precision="fp16")
    assert reference.scaler is not None
    assert resumable_fit(tmp_path / "b", blobs, device="cuda", precision="fp16", crash_at=5) is None
    state = torch.load(tmp_path / "b" / "last" / "state.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0 and state["ranks"][0]["rng"]["cuda"]
    resumed = resumable_fit(tmp_path / "b", blobs, device="cuda", precision="fp16", resume=True)
    assert close(distributed.model_state(resumed.module), distributed.model_state(reference.module))


@pytest.fixture
def one_process_group(monkeypatch):
    """A process group of one process on the GPU (nccl), as torchrun --nproc-per-node 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_parallel_strategies_train_checkpoint_and_resume(
    tmp_path, blobs, one_process_group, strategy
):
    settings = {"device": "cuda", "strategy": strategy, "precision": "bf16"}
    reference = resumable_fit(tmp_path / "a", blobs, **settings)
    if strategy == "fsdp":
        assert distributed.is_sharded(reference.module) and reference.model is reference.module
    else:
        assert type(reference.model).__name__ == "DistributedDataParallel"
    assert reference.history[-1]["val_accuracy"] > 0.5
    assert resumable_fit(tmp_path / "b", blobs, crash_at=5, **settings) is None
    resumed = resumable_fit(tmp_path / "b", blobs, resume=True, **settings)
    assert close(distributed.model_state(resumed.module), distributed.model_state(reference.module))
    saved = load_file(tmp_path / "b" / "last" / "weights.safetensors")
    assert sorted(saved) == sorted(small_mlp().state_dict())  # full, unsharded, plain keys
    assert resumed.predict_proba(blobs[2]).shape == (30, 3)


@pytest.mark.filterwarnings("ignore:TensorFloat32 tensor cores")  # inductor's advice
def test_compile_on_cuda(tmp_path, blobs):
    torch.manual_seed(0)
    trainer = Trainer(
        small_mlp(),
        fast_config(epochs=2, compile=True),
        device="cuda",
        callbacks=[Checkpoint(tmp_path)],
    )
    history = trainer.fit(*blobs)  # a fallback warning would fail (warnings are errors)
    assert type(trainer.model.compiled).__name__ == "OptimizedModule"
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    saved = load_file(tmp_path / "last" / "weights.safetensors")
    assert sorted(saved) == sorted(small_mlp().state_dict())
