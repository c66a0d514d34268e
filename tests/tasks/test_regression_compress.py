"""Compressed regression models: quantized, pruned and distilled variants are evaluated with
the regression metrics and ranked beside their originals, with their RMSE change."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import make_friedman1

from ladder.runner.ladder import run


def test_quantize_prune_and_distill_a_regression_model(tmp_path):
    X, y = make_friedman1(n_samples=300, noise=0.5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y)
    frame.to_csv(tmp_path / "f.csv", index=False)
    teacher = {"name": "wide", "type": "mlp", "hidden": [64, 32], "epochs": 25}
    config = {
        "name": "reg",
        "seed": 0,
        "data": {"source": str(tmp_path / "f.csv"), "target": "y"},
        "train": {"batch_size": 32, "early_stopping": None, "optimizer": {"lr": 0.01}},
        "evaluate": {"intervals": 0.9},
        "models": [teacher],
        "compress": [
            {"method": "quantize", "backend": "torch"},
            {"method": "quantize"},  # ONNX Runtime dynamic int8 of the exported graph
            {"method": "prune", "amount": 0.5, "finetune_epochs": 2},
            {
                "method": "distill",
                "teacher": "wide",
                "student": {"type": "mlp", "hidden": [8], "epochs": 25},
                "alpha": 0.5,
            },
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run(path, out=tmp_path / "run")

    board = result.leaderboard.set_index("model")
    assert "rmse_delta" in board.columns and "accuracy" not in board.columns
    variants = board[board["variant_of"] == "wide"]
    assert len(variants) == 4, board[["status"]]
    assert (variants["status"] == "ok").all()
    for name, row in variants.iterrows():
        metrics = json.loads((tmp_path / "run" / "models" / name / "metrics.json").read_text())
        assert np.isclose(metrics["rmse_delta"], row["rmse"] - board.loc["wide", "rmse"])
        # a variant no worse than twice the original's error: it still predicts y's units
        assert row["rmse"] < 2 * board.loc["wide", "rmse"], name
        assert row["r2"] > 0.3, name
