"""Regression beyond tables: a CNN on images listed in a table, and the neural text models
(TextCNN, RNN, Transformer, a fine-tuned pretrained encoder) on texts with a numeric score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import ladder
from ladder.errors import DataError
from ladder.runner.ladder import run


def _write(tmp_path: Path, data: dict, models: list[dict]) -> Path:
    config = {
        "name": "reg",
        "seed": 0,
        "data": {"target": "score", "task": "regression", **data},
        "train": {"epochs": 15, "batch_size": 16, "early_stopping": None},
        "models": models,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _images(tmp_path: Path, n: int = 120) -> Path:
    """Grey 8x8 images whose brightness is the score."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pics"
    folder.mkdir()
    rows = []
    for i in range(n):
        level = float(rng.uniform(0, 1))
        pixels = np.clip(level + rng.normal(0, 0.05, (8, 8)), 0, 1)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"{i}.png")
        rows.append({"file": f"pics/{i}.png", "score": round(level * 10, 3)})
    table = tmp_path / "images.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_a_cnn_regresses_on_images_listed_in_a_table(tmp_path):
    table = _images(tmp_path)
    cnn = {"name": "cnn", "type": "cnn", "channels": [4], "optimizer": {"lr": 0.01}}
    result = run(_write(tmp_path, {"source": str(table), "image": "file"}, [cnn]), tmp_path / "run")
    row = result.leaderboard.iloc[0]
    assert row["status"] == "ok" and row["r2"] > 0.5, row
    manifest = json.loads((tmp_path / "run/models/cnn/artifact/manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["input"]["kind"] == "image"


def test_a_missing_image_file_is_named_with_its_row(tmp_path):
    table = _images(tmp_path, n=10)
    frame = pd.read_csv(table)
    frame.loc[3, "file"] = "pics/nope.png"
    frame.to_csv(table, index=False)
    config = _write(
        tmp_path, {"source": str(table), "image": "file"}, [{"name": "m", "type": "cnn"}]
    )
    with pytest.raises(
        DataError, match=r"data row 4, column 'file': no image file 'pics/nope.png'"
    ):
        run(config, tmp_path / "run")


def _texts(tmp_path: Path, n: int = 160) -> Path:
    """Reviews whose score counts their good words minus their bad ones."""
    rng = np.random.default_rng(0)
    good, bad, filler = (
        ["great", "superb", "lovely"],
        ["awful", "dull", "poor"],
        ["the", "a", "film"],
    )
    rows = []
    for _ in range(n):
        g, b = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        words = list(rng.choice(good, g)) + list(rng.choice(bad, b)) + list(rng.choice(filler, 3))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "score": float(g - b)})
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "tfidf", "type": "tfidf_ridge"},
        {"name": "textcnn", "type": "textcnn", "optimizer": {"lr": 0.01}},
        {"name": "rnn", "type": "rnn", "optimizer": {"lr": 0.01}},
        {"name": "transformer", "type": "transformer", "optimizer": {"lr": 0.003}},
    ],
    ids=lambda e: e["type"],
)
def test_neural_text_models_regress_on_a_score(tmp_path, entry):
    config = _write(tmp_path, {"source": str(_texts(tmp_path)), "text": "text"}, [entry])
    result = run(config, tmp_path / "run")
    row = result.leaderboard.iloc[0]
    assert row["status"] == "ok" and row["r2"] > 0.3, row
    model = ladder.load(tmp_path / "run/models" / entry["name"] / "artifact")
    values = model.predict(pd.DataFrame({"text": ["great superb lovely film", "awful dull poor"]}))
    assert values[0] > values[1]


@pytest.mark.slow
def test_a_pretrained_encoder_fine_tunes_with_a_regression_head(tmp_path, minilm_path):
    entry = {"name": "minilm", "type": "pretrained", "path": str(minilm_path), "epochs": 6}
    config = _write(tmp_path, {"source": str(_texts(tmp_path, 160)), "text": "text"}, [entry])
    result = run(config, tmp_path / "run")
    row = result.leaderboard.iloc[0]
    assert row["status"] == "ok" and row["r2"] > 0.2, row
    model = ladder.load(tmp_path / "run/models/minilm/artifact", backend="torch")
    values = model.predict(pd.DataFrame({"text": ["great superb lovely film", "awful dull poor"]}))
    assert values[0] > values[1]
