"""Helpers shared by the top-level tests: tiny tables and small configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# PyTorch's gloo backend now and then aborts a worker as it exits ("terminate called without an
# active exception": its C++ threads outlive the process group; pytorch/pytorch#179291). Seen
# in about 1 run in 20 of a two-worker torchrun here, before and after ladder's changes alike.
# The DDP tests try once more on exactly this crash; any other failure fails them.
GLOO_EXIT_CRASH = "terminate called without an active exception"


def make_table(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A learnable table: two numeric columns, one categorical, a 3-class target."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 3
    return pd.DataFrame(
        {
            "size": label * 2.0 + rng.normal(0, 0.3, n),
            "weight": rng.normal(0, 1, n),
            "colour": np.array(["red", "green", "blue"])[label],
            "label": np.array(["cat", "dog", "fox"])[label],
        }
    )


def write_config(tmp_path: Path, source: str, models: list[dict], **extra) -> Path:
    """A config file with fast training defaults."""
    config = {
        "name": "toy",
        "seed": 0,
        "data": {"source": source, "target": "label", "split": {"test": 0.2, "val": 0.2}},
        "models": models,
        "train": {"epochs": 3, "batch_size": 16, "early_stopping": None},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_images(root: Path) -> Path:
    """12 tiny RGB PNGs in two class folders under `root` (bright vs dark)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, base in (("bright", 200), ("dark", 40)):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(base + rng.normal(0, 20, (10, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root
