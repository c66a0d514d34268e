"""A seq2seq artifact as `ladder train` writes it: verified on load, decoded on torch or ONNX
Runtime (which imports no torch), with the backends it has, and refused when tampered with."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

import ladder
from ladder.errors import ArtifactError
from ladder.export.lm_artifact import load_generator
from ladder.export.s2s_artifact import is_seq2seq, load_translator
from ladder.runner.ladder import train

TRANSFORMER = {
    "name": "transformer",
    "type": "seq2seq_transformer",
    "d_model": 32,
    "n_head": 2,
    "n_encoder_layers": 1,
    "n_decoder_layers": 1,
    "max_source_length": 40,
    "max_target_length": 40,
    "max_steps": 20,
    "eval_interval": 10,
    "text": {"tokenizer": "char"},
}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s_artifact")
    config = {
        "name": "s2s",
        "data": {"source": "builtin:numbers-en-fr:150", "task": "seq2seq"},
        "models": [TRANSFORMER, {"name": "memory", "type": "memory"}],
        "train": {"batch_size": 16, "eval_batches": 1},
        "evaluate": {"bootstrap": 10, "beam_size": 3},
    }
    path = tmp / "s2s.yaml"
    path.write_text(yaml.safe_dump(config))
    return train(path, "transformer", out=tmp / "run").artifact


def test_the_manifest_describes_the_model_and_its_decoding(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert is_seq2seq(artifact) and manifest["task"] == "seq2seq"
    assert manifest["special_ids"] == {"pad": 0, "bos": 1, "eos": 2}
    assert manifest["decoding"]["beam_size"] == 3
    assert manifest["max_source_length"] == manifest["max_target_length"] == 40
    assert {"weights.safetensors", "encoder.onnx", "decoder.onnx"} <= set(manifest["files"])
    model = ladder.load(artifact)
    assert model.search.beam_size == 3 and model.task == "seq2seq"


def test_onnxruntime_decodes_without_importing_torch(artifact):
    want = ladder.load(artifact).translate(["twelve", "one hundred and one"])
    script = (
        "import sys, json, ladder\n"
        f"model = ladder.load({str(artifact)!r}, backend='onnxruntime')\n"
        "out = model.translate(['twelve', 'one hundred and one'])\n"
        "print(json.dumps([out, 'torch' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    outputs, imported_torch = json.loads(done.stdout.splitlines()[-1])
    assert outputs == want and imported_torch is False


def test_a_backend_the_artifact_lacks_is_refused(artifact):
    with pytest.raises(ArtifactError, match=r"backend 'numpy'.*onnxruntime or torch"):
        load_translator(artifact, backend="numpy")


def test_a_tampered_artifact_is_refused(artifact, tmp_path):
    copy = tmp_path / "artifact"
    copy.mkdir()
    for file in artifact.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    with (copy / "decoder.onnx").open("ab") as graph:
        graph.write(b"\0")
    with pytest.raises(ArtifactError, match=r"decoder\.onnx: checksum mismatch"):
        load_translator(copy)
    with pytest.raises(ArtifactError, match="not a generation artifact"):
        load_generator(artifact)  # a language model's loader refuses a seq2seq artifact
