"""Tiny trained artifacts for the serving tests (a table, images, texts), trained once per
session, and an in-process server on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers.py

from helpers import make_table, write_config
from serve_helpers import LiveServer

WORDS = {
    "pos": "good great fine lovely superb",
    "neg": "bad awful poor dreadful dull",
}


def _train(
    folder: Path, source: Path, models: list[dict], text: bool = False, **extra: dict
) -> Path:
    from ladder.runner.ladder import train

    config = write_config(folder, str(source), models, **extra)
    if text:
        config.write_text(
            config.read_text().replace("target: label", "target: label\n  text: text")
        )
    for entry in models:
        train(config, entry["name"], out=folder / "run")
    return folder / "run" / "models"


@pytest.fixture(scope="session")
def tabular_artifacts(tmp_path_factory) -> dict[str, Path]:
    """logreg (classical) and mlp artifacts of the 3-class animals table."""
    tmp = tmp_path_factory.mktemp("serve_table")
    table = tmp / "animals.csv"
    make_table().to_csv(table, index=False)
    models = [
        {"name": "logreg", "type": "logistic_regression"},
        {"name": "mlp", "type": "mlp", "hidden": [8]},
    ]
    root = _train(tmp, table, models)
    return {m["name"]: root / m["name"] / "artifact" for m in models}


@pytest.fixture(scope="session")
def image_artifact(tmp_path_factory) -> Path:
    """A small CNN on 10x10 grey images of two classes (bright, dark)."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("serve_images")
    root = tmp / "images"
    rng = np.random.default_rng(0)
    for cls, base in (("bright", 200), ("dark", 40)):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(base + rng.normal(0, 20, (10, 10)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    models = [{"name": "cnn", "type": "cnn", "channels": [4], "image_size": 10}]
    return _train(tmp, root, models) / "cnn" / "artifact"


@pytest.fixture(scope="session")
def text_artifact(tmp_path_factory) -> Path:
    """A tiny TextCNN on two-word positive/negative texts."""
    tmp = tmp_path_factory.mktemp("serve_text")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = "pos" if i % 2 else "neg"
        rows.append({"text": " ".join(rng.choice(WORDS[label].split(), 3)), "label": label})
    table = tmp / "texts.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    models = [{"name": "words", "type": "textcnn", "embedding_dim": 8, "filters": 4}]
    return _train(tmp, table, models, text=True) / "words" / "artifact"


def make_prices(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """A learnable regression table: two numeric columns, one categorical, and a float target
    `price` with as many distinct values as rows."""
    rng = np.random.default_rng(seed)
    size, weight = rng.uniform(0, 4, n), rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    price = 10 + 3 * size - 2 * weight + 1.5 * (colour == "red") + rng.normal(0, 0.2, n)
    return pd.DataFrame({"size": size, "weight": weight, "colour": colour, "price": price})


@pytest.fixture(scope="session")
def regression_artifact(tmp_path_factory) -> Path:
    """An mlp regression of `price` with 90 % conformal intervals (it has no model.onnx
    today, so it predicts with torch)."""
    tmp = tmp_path_factory.mktemp("serve_regression")
    table = tmp / "prices.csv"
    make_prices().to_csv(table, index=False)
    models = [{"name": "price", "type": "mlp", "hidden": [8], "optimizer": {"lr": 0.01}}]
    data = {
        "source": str(table),
        "target": "price",
        "task": "regression",
        "split": {"test": 0.2, "val": 0.2},
    }
    extra = {"data": data, "evaluate": {"intervals": 0.9}}
    return _train(tmp, table, models, **extra) / "price" / "artifact"


@pytest.fixture(scope="session")
def live_server(tabular_artifacts, image_artifact, text_artifact) -> Iterator[LiveServer]:
    """One REST server of logreg, mlp, cnn and words (default batching), for the session."""
    artifacts = [*tabular_artifacts.values(), image_artifact, text_artifact]
    with LiveServer(artifacts) as server:
        yield server
