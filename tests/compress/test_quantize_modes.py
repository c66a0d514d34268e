"""The torch dynamic and ONNX Runtime static int8 variants: made by `ladder compress`, ranked,
close to their originals, loaded by the backend they were made for, and refused when tampered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from helpers import write_config
from safetensors.torch import load_file, save_file
from torch import nn

import ladder
from ladder.compress.quantize import quantize_static_artifact, quantize_torch_artifact
from ladder.compress.run import compress_run
from ladder.errors import ArtifactError, LadderError
from ladder.export.artifact import manifest_body, neural_module, read_manifest, write_artifact
from ladder.export.int8 import dynamic_int8, int8_state, load_int8_module
from ladder.registry import MODEL_TYPES
from ladder.runner.ladder import run

MODELS = [
    {"name": "cnn", "type": "cnn", "arch": "simple", "channels": [4], "image_size": 8},
    {"name": "mlp", "type": "mlp", "hidden": [32]},
    {"name": "knn", "type": "knn", "n_neighbors": 1},
]
BOTH_MODES = (
    "compress=[{method: quantize, backend: torch}, {method: quantize, mode: static, models: [cnn]}]"
)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """36 tiny RGB images in three classes: bright, dark and striped."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images") / "shapes"
    rng = np.random.default_rng(0)
    stripes = np.tile(np.array([230, 20] * 4)[:, None, None], (1, 8, 3))
    bases = {"bright": np.full((8, 8, 3), 200), "dark": np.full((8, 8, 3), 40), "stripes": stripes}
    for name, base in bases.items():
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(base + rng.normal(0, 25, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def compressed(images, tmp_path_factory) -> tuple[Path, ladder.RunResult]:
    """A finished run of a cnn, an mlp and a knn, with both new int8 modes applied."""
    tmp = tmp_path_factory.mktemp("modes")
    config = write_config(tmp, str(images), MODELS, evaluate={"bootstrap": 20})
    run(config, out=tmp / "run", overrides={"train.epochs": 10})
    return tmp / "run", compress_run(tmp / "run", overrides=[BOTH_MODES])


def _artifact(run_dir: Path, name: str) -> Path:
    return run_dir / "models" / name / "artifact"


@pytest.mark.slow
def test_both_modes_make_variants_that_rank_on_the_leaderboard(compressed):
    run_dir, result = compressed
    board = result.leaderboard.set_index("model")
    for name, original in [
        ("cnn+int8-torch", "cnn"),
        ("mlp+int8-torch", "mlp"),
        ("cnn+int8-static", "cnn"),
    ]:
        assert board.loc[name, "status"] == "ok"
        assert board.loc[name, "variant_of"] == original
        assert board.loc[name, "accuracy_delta"] == pytest.approx(
            board.loc[name, "accuracy"] - board.loc[original, "accuracy"]
        )
    assert "knn+int8-torch" not in board.index  # default: neural models only
    torch_entry = read_manifest(_artifact(run_dir, "mlp+int8-torch"))["compression"]
    assert {k: torch_entry[k] for k in ("method", "backend", "mode", "weights", "variant_of")} == {
        "method": "quantize",
        "backend": "torch",
        "mode": "dynamic",
        "weights": "int8",
        "variant_of": "mlp",
    }
    assert 0.2 < torch_entry["size_ratio"] < 0.4  # int8 Linear weights: about a quarter
    static = read_manifest(_artifact(run_dir, "cnn+int8-static"))["compression"]
    assert (static["backend"], static["mode"], static["weights"]) == (
        "onnxruntime",
        "static",
        "int8",
    )
    train_rows = json.loads((run_dir / "data.json").read_text())["rows"]["train"]
    assert static["calibration_rows"] == min(256, train_rows) and static["size_ratio"] > 0
    metrics = json.loads((run_dir / "models/cnn+int8-static/metrics.json").read_text())
    assert metrics["size_ratio"] == static["size_ratio"]


@pytest.mark.slow
def test_the_torch_variant_predicts_exactly_like_quantize_dynamic_in_memory(compressed, images):
    run_dir, _ = compressed
    for model in ("cnn", "mlp"):
        variant = ladder.load(_artifact(run_dir, f"{model}+int8-torch"))
        original = ladder.load(_artifact(run_dir, model), backend="torch")
        assert variant.backend == "torch"
        raw, _ = original.read(images / "stripes")
        features = torch.from_numpy(original.preprocessor.transform(raw))
        manifest = original.manifest
        in_memory = dynamic_int8(
            neural_module(_artifact(run_dir, model) / "weights.safetensors", manifest), model
        )
        with torch.no_grad():
            want = torch.softmax(in_memory(features), dim=1).numpy()
        got = variant.predict_proba(images / "stripes")
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        fp32 = original.predict_proba(images / "stripes")
        assert 0 < np.abs(got - fp32).max() < 0.1  # int8 weights: close, not identical
        assert (got.argmax(axis=1) == fp32.argmax(axis=1)).mean() >= 0.9


@pytest.mark.slow
def test_the_torch_variant_stores_int8_weights_and_loads_with_torch_only(compressed):
    run_dir, _ = compressed
    artifact = _artifact(run_dir, "mlp+int8-torch")
    manifest = read_manifest(artifact)
    assert manifest["model_file"] == "weights.int8.safetensors"
    assert "model.onnx" not in manifest["files"] and "weights.safetensors" not in manifest["files"]
    tensors = load_file(artifact / "weights.int8.safetensors")
    assert tensors["blocks.0.linear.weight"].dtype == torch.int8
    assert tensors["blocks.0.linear.weight.scale"].dtype == torch.float64
    assert tensors["head.bias"].dtype == torch.float32
    with pytest.raises(ArtifactError, match="torch int8 variant predicts with torch only"):
        ladder.load(artifact, backend="onnxruntime")


@pytest.mark.slow
def test_the_static_variant_predicts_close_to_the_original_with_onnx_runtime_only(
    compressed, images
):
    run_dir, _ = compressed
    artifact = _artifact(run_dir, "cnn+int8-static")
    variant = ladder.load(artifact)
    assert variant.backend == "onnxruntime"
    ops = {node.op_type for node in onnx.load(str(artifact / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    got = variant.predict_proba(images)
    want = ladder.load(_artifact(run_dir, "cnn")).predict_proba(images)
    assert 0 < np.abs(got - want).max() < 0.15
    assert (got.argmax(axis=1) == want.argmax(axis=1)).mean() >= 0.9
    with pytest.raises(ArtifactError, match="compressed variant predicts with onnxruntime only"):
        ladder.load(artifact, backend="torch")


@pytest.mark.slow
def test_tampered_int8_weights_are_refused(compressed, tmp_path):
    run_dir, _ = compressed
    artifact = Path(shutil.copytree(_artifact(run_dir, "mlp+int8-torch"), tmp_path / "artifact"))
    weights = artifact / "weights.int8.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one int8 weight changed
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"weights\.int8\.safetensors: checksum mismatch"):
        ladder.load(artifact)


@pytest.mark.slow
def test_int8_weights_that_do_not_fit_the_model_are_refused(compressed, tmp_path):
    run_dir, _ = compressed
    source = _artifact(run_dir, "mlp+int8-torch")
    manifest = read_manifest(source)
    tensors = load_file(source / "weights.int8.safetensors")
    del tensors["head.weight.scale"], tensors["head.weight.zero_point"]  # head.weight: no int8

    def write_model(folder: Path) -> str:
        save_file(tensors, str(folder / "weights.int8.safetensors"))
        return "weights.int8.safetensors"

    preprocess = json.loads((source / "preprocess.json").read_text())
    write_artifact(tmp_path / "artifact", manifest_body(manifest), preprocess, write_model)
    with pytest.raises(ArtifactError, match="int8 weights do not fit the mlp model"):
        ladder.load(tmp_path / "artifact")


@pytest.mark.slow
def test_models_with_nothing_to_quantize_say_so_in_one_line(compressed, tmp_path):
    run_dir, _ = compressed
    knn = _artifact(run_dir, "knn")
    with pytest.raises(LadderError, match=r"^knn: nothing to quantize \(torch dynamic int8"):
        quantize_torch_artifact(knn, tmp_path / "a", "knn")
    with pytest.raises(
        LadderError, match=r"knn: (cannot quantize with onnxruntime|nothing to quantize)"
    ):
        quantize_static_artifact(knn, tmp_path / "b", "knn", None)
    override = "compress=[{method: quantize, backend: torch, models: [knn]}]"
    with pytest.raises(LadderError, match="knn: nothing to quantize") as info:
        compress_run(run_dir, overrides=[override])
    assert "\n" not in str(info.value)


def test_a_module_without_linear_or_recurrent_layers_has_nothing_to_quantize_for_torch():
    with pytest.raises(LadderError, match=r"^conv: nothing to quantize \(torch dynamic int8"):
        dynamic_int8(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), "conv")


@pytest.mark.slow
def test_static_mode_also_quantizes_an_mlp(compressed, images, tmp_path):
    run_dir, _ = compressed
    rows, _ = ladder.load(_artifact(run_dir, "mlp")).read(images)
    info = quantize_static_artifact(_artifact(run_dir, "mlp"), tmp_path / "artifact", "mlp", rows)
    assert info["calibration_rows"] == 36 and info["variant_of"] == "mlp"
    got = ladder.load(tmp_path / "artifact").predict_proba(images)
    want = ladder.load(_artifact(run_dir, "mlp")).predict_proba(images)
    assert 0 < np.abs(got - want).max() < 0.15
    assert (got.argmax(axis=1) == want.argmax(axis=1)).mean() >= 0.9


@pytest.mark.slow
def test_static_mode_refuses_token_id_models(compressed, tmp_path):
    run_dir, _ = compressed
    source = _artifact(run_dir, "mlp")
    manifest = read_manifest(source)
    text_like = tmp_path / "text"

    def copy_model(folder: Path) -> list[str]:
        for name in ("weights.safetensors", "model.onnx"):
            shutil.copy2(source / name, folder / name)
        return ["weights.safetensors", "model.onnx"]

    preprocess = json.loads((source / "preprocess.json").read_text())
    write_artifact(text_like, {**manifest_body(manifest), "pad_id": 0}, preprocess, copy_model)
    with pytest.raises(
        LadderError, match=r"mlp: static int8 calibrates float inputs.*mode: dynamic"
    ):
        quantize_static_artifact(text_like, tmp_path / "out", "mlp", None)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_layers_keep_their_int8_weights_through_safetensors(cell, tmp_path):
    spec = MODEL_TYPES["rnn"]
    config = spec.config_cls(cell=cell, embedding_dim=8, hidden=6, bidirectional=True)
    torch.manual_seed(0)
    module = spec.build(config, (12, 40), 3).eval()
    quantized = dynamic_int8(module, "rnn")
    state = int8_state(quantized)
    assert state["rnn.weight_hh_l0_reverse"].dtype == torch.int8
    assert state["embedding.weight"].dtype == torch.float32  # not quantized by dynamic int8
    save_file(state, str(tmp_path / "weights.int8.safetensors"))
    manifest = {
        "name": "rnn",
        "model_type": "rnn",
        "model_config": config.model_dump(),
        "labels": [0, 1, 2],
        "feature_shape": [12, 40],
    }
    loaded = load_int8_module(tmp_path / "weights.int8.safetensors", manifest)
    ids = torch.randint(1, 40, (6, 12))
    ids[:3, 7:] = 0  # padded texts
    with torch.no_grad():
        assert torch.equal(loaded(ids), quantized(ids))
        assert (loaded(ids) - module(ids)).abs().max() < 0.05
