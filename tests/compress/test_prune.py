"""Pruning: unstructured sparsity that is really in the saved weights, structured pruning that
really shrinks layers (and copies the kept slices exactly), and the errors that teach."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import make_table, write_config
from safetensors.torch import load_file
from torch import nn

import ladder
from ladder.cli import main
from ladder.compress.prune import (
    finetune_config,
    lamp_scores,
    prunable_weights,
    prune,
    prune_global,
    sparsity_stats,
    step_fractions,
    zeros_stay_zero,
)
from ladder.compress.variant import CompressContext
from ladder.config import PruneConfig, TrainConfig, load_run_config
from ladder.errors import LadderError
from ladder.export.artifact import manifest_body, neural_module, read_manifest, write_artifact
from ladder.runner.ladder import run
from ladder.runner.prepare import prepare_data

TABULAR = [
    {"name": "net", "type": "mlp", "hidden": [32, 16], "batchnorm": True, "epochs": 20},
    {"name": "tree", "type": "decision_tree", "max_depth": 3},
]
IMAGES = [  # lenet5 on 20x20: its conv2 feeds the first Linear with 2x2 positions per channel
    {"name": "lenet", "type": "cnn", "arch": "lenet5", "image_size": 20, "epochs": 8},
    {"name": "small", "type": "cnn", "channels": [4, 6], "epochs": 8},
]


def _finished_run(tmp: Path, source: str, models: list[dict]) -> Path:
    config = write_config(tmp, source, models, evaluate={"bootstrap": 20})
    run(config, out=tmp / "run")
    return tmp / "run"


def _image_folder(root: Path) -> Path:
    """60 grey 16x16 PNGs in 3 classes: bright top half, bright left half, dark."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("top", "left", "dark"):
        (root / cls).mkdir(parents=True)
        for i in range(20):
            pixels = rng.normal(40, 20, (16, 16))
            if cls == "top":
                pixels[:8] += 160
            elif cls == "left":
                pixels[:, :8] += 160
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("prune_tabular")
    make_table(n=150).to_csv(tmp / "animals.csv", index=False)
    return _finished_run(tmp, str(tmp / "animals.csv"), TABULAR)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("prune_images")
    return _finished_run(tmp, str(_image_folder(tmp / "images")), IMAGES)


def _context(run_dir: Path) -> CompressContext:
    config = load_run_config(run_dir)
    entries = {e["name"]: config.model(e["name"]) for e in config.models}
    return CompressContext(config, run_dir, prepare_data(config), entries)


def _weights(context: CompressContext, name: str) -> dict[str, torch.Tensor]:
    return load_file(context.artifact(name) / "weights.safetensors")


def _zeros_of_matrices(weights: dict[str, torch.Tensor]) -> float:
    matrices = [w for w in weights.values() if w.dim() >= 2]
    return sum(int((w == 0).sum()) for w in matrices) / sum(w.numel() for w in matrices)


def _backends_agree(artifact: Path, records) -> np.ndarray:
    onnx, torch_backend = ladder.load(artifact), ladder.load(artifact, backend="torch")
    assert (onnx.backend, torch_backend.backend) == ("onnxruntime", "torch")
    got = onnx.predict_proba(records)
    np.testing.assert_allclose(got, torch_backend.predict_proba(records), atol=1e-4)
    return got


# ----------------------------------------------------------------------------- unstructured


def test_unstructured_sparsity_is_in_the_saved_weights_and_both_backends_agree(tabular_run):
    context = _context(tabular_run)
    method = PruneConfig(method="prune", amount=0.7, finetune_epochs=2)
    variant = prune(method, context, "net")
    assert variant.name == "net+prune70" and variant.model_type == "mlp"
    original = json.loads((tabular_run / "models/net/metrics.json").read_text())
    assert variant.params == original["params"]  # dense tensors: the same parameter count
    assert _zeros_of_matrices(_weights(context, "net+prune70")) == pytest.approx(0.7, abs=0.01)
    assert variant.details["sparsity"] == pytest.approx(0.7, abs=0.01)
    assert variant.details["nonzero_params"] < variant.params
    assert [row["epoch"] for row in variant.history] == [1, 2] and variant.train_seconds > 0
    manifest = read_manifest(context.artifact("net+prune70"))
    assert manifest["compression"]["sparsity"] == variant.details["sparsity"]
    assert manifest["compression"]["finetune_lr"] == pytest.approx(1e-3)  # the model's own
    assert manifest["onnx"]["exported"] and manifest["name"] == "net+prune70"
    assert manifest["metrics"]["accuracy"] > 0.8  # measured on the test split
    _backends_agree(context.artifact("net+prune70"), make_table(n=30, seed=5))


def test_fine_tuning_moves_the_kept_weights_while_the_zeros_stay_zero(tabular_run):
    context = _context(tabular_run)
    pruned = PruneConfig(method="prune", amount=0.5, finetune_epochs=0)
    assert prune(pruned, context, "net").history == []
    before = _weights(context, "net+prune50")
    prune(pruned.model_copy(update={"finetune_epochs": 3}), context, "net")
    after = _weights(context, "net+prune50")
    for key, weight in before.items():
        if weight.dim() == 2:  # the Linear weights: the same mask before and after fine-tuning
            assert torch.equal(after[key] == 0, weight == 0)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_iterative_pruning_follows_the_geometric_schedule(tabular_run):
    assert step_fractions(0.9, 1) == [0.9]
    fractions = step_fractions(0.9, 3)
    assert fractions[-1] == 0.9 and fractions == sorted(fractions)
    assert 1 - fractions[0] == pytest.approx(0.1 ** (1 / 3))  # the same share of the rest
    context = _context(tabular_run)
    method = PruneConfig(method="prune", amount=0.8, steps=3, finetune_epochs=1)
    variant = prune(method, context, "net")
    assert [row["prune_step"] for row in variant.history] == [1, 2, 3]
    assert [row["epoch"] for row in variant.history] == [1, 2, 3]
    assert _zeros_of_matrices(_weights(context, "net+prune80")) == pytest.approx(0.8, abs=0.01)


def test_global_pruning_covers_linear_conv_and_recurrent_weights():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv1d(2, 4, 3), nn.LSTM(4, 5), nn.Linear(5, 3))
    names = [name for _, name in prunable_weights(module)]
    assert names == ["weight", "weight_ih_l0", "weight_hh_l0", "weight"]
    masks = prune_global(module, 0.6)
    stats = sparsity_stats(module)
    assert stats["prunable_params"] == 2 * 4 * 3 + 4 * 20 + 5 * 20 + 5 * 3
    assert stats["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert not any(n.endswith(("_orig", "_mask")) for n in module.state_dict())  # permanent
    assert torch.equal(module[1].weight_hh_l0 == 0, masks[module[1].weight_hh_l0] == 0)


def test_lamp_scores_rank_within_a_layer_and_keep_every_layer_alive():
    weight = torch.tensor([[3.0, -1.0], [0.0, 2.0]])
    # squares 9, 1, 0, 4: each over the sum of the squares at least as large
    expected = torch.tensor([[9 / 9, 1 / 14], [0 / 14, 4 / 13]])
    torch.testing.assert_close(lamp_scores(weight), expected)
    torch.manual_seed(0)
    big, small = nn.Linear(20, 20), nn.Linear(20, 20)
    with torch.no_grad():
        small.weight.mul_(0.01)  # raw magnitudes would prune this layer away first
    module = nn.Sequential(big, small)
    prune_global(module, 0.5)
    assert 0 < float((small.weight == 0).float().mean()) < 0.9
    assert sparsity_stats(module)["sparsity"] == pytest.approx(0.5)
    plain = nn.Sequential(nn.Linear(20, 20), nn.Linear(20, 20))
    with torch.no_grad():
        plain[1].weight.mul_(0.01)
    prune_global(plain, 0.5, criterion="magnitude")
    assert float((plain[1].weight == 0).float().mean()) > 0.95  # the collapse LAMP avoids


def test_zeros_stay_zero_under_an_optimizer_with_momentum_and_weight_decay():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    masks = prune_global(layer, 0.5)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    with zeros_stay_zero(masks):
        for _ in range(3):
            optimizer.zero_grad()
            layer(torch.randn(8, 6)).pow(2).sum().backward()
            assert torch.all(layer.weight.grad[masks[layer.weight] == 0] == 0)
            optimizer.step()
    assert torch.equal(layer.weight == 0, masks[layer.weight] == 0)


def test_finetune_config_keeps_the_weights_and_drops_warm_up_and_early_stopping():
    train = TrainConfig.model_validate(
        {"epochs": 30, "init": "kaiming", "scheduler": {"name": "onecycle", "warmup_epochs": 2}}
    )
    tuned = finetune_config(train, PruneConfig(method="prune", finetune_epochs=4))
    assert (tuned.epochs, tuned.init, tuned.early_stopping) == (4, "default", None)
    assert tuned.optimizer.lr == pytest.approx(train.optimizer.lr)  # the model's own
    assert (tuned.scheduler.name, tuned.scheduler.warmup_epochs) == ("cosine", 0.0)
    assert finetune_config(train, PruneConfig(method="prune", lr=0.05)).optimizer.lr == 0.05


# ----------------------------------------------------------------------------- structured


def _reference(module: nn.Module, fraction: float) -> nn.Module:
    """The original with the units that structured pruning removes zeroed: the next layer's
    inputs from them (every flattened position of a removed channel) are set to 0. Each
    layer's units are ranked by the L1 norms of its original weights."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    removed = []
    for layer in layers[:-1]:
        norms = layer.weight.detach().abs().flatten(1).sum(dim=1)
        removed.append(torch.argsort(norms)[: round(fraction * len(norms))])
    with torch.no_grad():
        for layer, after, units in zip(layers[:-1], layers[1:], removed, strict=True):
            n = layer.weight.shape[0]
            inputs = after.weight.view(after.weight.shape[0], n, -1)  # (out, unit, positions)
            inputs[:, units] = 0
    return module


@pytest.mark.parametrize(("model", "key", "widths"), [("net", "hidden", [16, 8])])
def test_structured_mlp_without_fine_tuning_predicts_like_the_original_minus_its_units(
    tabular_run, model, key, widths
):
    context = _context(tabular_run)
    method = PruneConfig(method="prune", amount=0.5, structured=True, finetune_epochs=0)
    variant = prune(method, context, model)
    artifact = context.artifact(f"{model}+prune50-structured")
    manifest = read_manifest(artifact)
    assert manifest["model_config"][key] == widths
    assert variant.details == {"widths_before": [32, 16], "widths_after": widths}
    weights = _weights(context, f"{model}+prune50-structured")
    assert weights["blocks.0.linear.weight"].shape == (16, 5)  # 2 numbers, 3 colours
    assert weights["blocks.0.norm.running_mean"].shape == (16,)
    assert weights["blocks.1.linear.weight"].shape == (8, 16)
    assert weights["head.weight"].shape == (3, 8)
    original = json.loads((tabular_run / "models/net/metrics.json").read_text())
    assert variant.params < original["params"] and variant.history == []
    _same_as_reference(context, model, artifact, 0.5)


def _same_as_reference(context: CompressContext, model: str, artifact: Path, amount: float):
    source = context.artifact(model)
    reference = _reference(
        neural_module(source / "weights.safetensors", read_manifest(source)), amount
    )
    loaded = ladder.load(artifact, backend="torch")
    features = loaded.preprocessor.transform(context.data.splits.test.X)
    with torch.no_grad():
        want = torch.softmax(reference(torch.as_tensor(features)), dim=1).numpy()
    np.testing.assert_allclose(loaded.predict_features(features), want, atol=1e-5)


def test_structured_lenet5_copies_the_kept_channels_across_the_flatten(image_run):
    context = _context(image_run)
    method = PruneConfig(method="prune", amount=0.5, structured=True, finetune_epochs=0)
    variant = prune(method, context, "lenet")
    assert variant.details["widths_after"] == [3, 8, 60, 42]
    artifact = context.artifact("lenet+prune50-structured")
    assert read_manifest(artifact)["model_config"]["lenet_widths"] == [3, 8, 60, 42]
    weights = _weights(context, "lenet+prune50-structured")
    assert weights["features.3.weight"].shape == (8, 3, 5, 5)
    assert weights["classifier.1.weight"].shape == (60, 8 * 2 * 2)
    _same_as_reference(context, "lenet", artifact, 0.5)


def test_structured_simple_cnn_in_steps_shrinks_and_fine_tunes(image_run):
    context = _context(image_run)
    method = PruneConfig(method="prune", amount=0.5, structured=True, steps=2, finetune_epochs=1)
    variant = prune(method, context, "small")
    assert variant.details == {"widths_before": [4, 6], "widths_after": [2, 3]}
    assert [row["prune_step"] for row in variant.history] == [1, 2]
    artifact = context.artifact("small+prune50-structured")
    manifest = read_manifest(artifact)
    assert manifest["model_config"]["channels"] == [2, 3]
    assert manifest["compression"]["widths_after"] == [2, 3]
    weights = _weights(context, "small+prune50-structured")
    assert weights["features.0.0.weight"].shape[0] == 2
    assert weights["features.0.1.running_var"].shape == (2,)
    assert weights["head.1.weight"].shape == (3, 3)
    images = context.data.splits.test.X[:5]
    _backends_agree(artifact, images)


# ----------------------------------------------------------------------------- errors, CLI


def test_a_classical_model_is_refused_in_one_line(tabular_run):
    with pytest.raises(LadderError) as info:
        prune(PruneConfig(method="prune"), _context(tabular_run), "tree")
    assert str(info.value) == (
        "prune: tree is a classical model (decision_tree); pruning applies to neural models"
    )


def test_structured_pruning_of_another_type_says_unstructured_works(tabular_run, tmp_path):
    run_dir = Path(shutil.copytree(tabular_run, tmp_path / "run"))
    context = _context(run_dir)
    source = context.artifact("net")
    manifest = manifest_body(read_manifest(source))
    manifest["model_type"] = "transformer"

    def write_model(folder: Path) -> str:
        shutil.copy2(source / "weights.safetensors", folder / "weights.safetensors")
        return "weights.safetensors"

    preprocess = json.loads((source / "preprocess.json").read_text())
    write_artifact(context.artifact("net"), manifest, preprocess, write_model)
    with pytest.raises(LadderError) as info:
        prune(PruneConfig(method="prune", structured=True), context, "net")
    message = str(info.value)
    assert "\n" not in message and "net is a transformer model" in message
    assert "structured: false works for transformer" in message


def test_ladder_compress_ranks_the_pruned_variant_with_its_accuracy_delta(tabular_run, tmp_path):
    run_dir = Path(shutil.copytree(tabular_run, tmp_path / "run"))
    methods = "compress=[{method: prune, amount: 0.5, finetune_epochs: 1}]"
    assert main(["compress", str(run_dir), "--set", methods]) == 0
    board = pd.read_csv(run_dir / "leaderboard.csv").set_index("model")
    assert "tree+prune50" not in board.index  # neural models only, by default
    row = board.loc["net+prune50"]
    assert row["variant_of"] == "net" and row["status"] == "ok"
    assert row["accuracy_delta"] == pytest.approx(row["accuracy"] - board.loc["net", "accuracy"])
    metrics = json.loads((run_dir / "models/net+prune50/metrics.json").read_text())
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert (run_dir / "models/net+prune50/plots/learning_curve.png").is_file()
