"""`ladder.testing.check_model` on seq2seq types: the task is found from the type, the metrics
are the translation ones, and each check names itself when a translator breaks it. (Every
seq2seq type of the registry runs the suite in tests/test_testing.py.)"""

from __future__ import annotations

import pytest

import ladder.testing as testing
from ladder.generate.memory_generator import MemoryGenerator
from ladder.testing import check_model

TRANSFORMER = {
    "d_model": 16,
    "n_head": 2,
    "n_encoder_layers": 1,
    "n_decoder_layers": 1,
    "max_source_length": 24,
    "max_target_length": 12,
    "text": {"tokenizer": "char"},
}


def test_a_seq2seq_type_is_checked_as_a_translator(tmp_path):
    metrics = check_model("memory", tmp_path)  # its only task: seq2seq
    assert metrics["primary"] == "bleu" and 0 <= metrics["bleu"] <= 100
    assert {"chrf", "rouge1", "exact_match"} <= set(metrics)
    assert "accuracy" not in metrics and "bits_per_byte" not in metrics
    manifest = (tmp_path / "run" / "models" / "m" / "artifact" / "manifest.json").read_text()
    assert '"task": "seq2seq"' in manifest
    assert check_model("memory", tmp_path / "again", task="seq2seq")["bleu"] == metrics["bleu"]


def test_a_stream_that_differs_from_greedy_search_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(MemoryGenerator, "stream", lambda self, source, params=None, **o: "?")
    with pytest.raises(AssertionError, match="check_model: greedy streaming gives what greedy"):
        check_model("memory", tmp_path)


def test_onnx_runtime_translating_otherwise_is_reported(tmp_path, monkeypatch):
    real = testing.load_translator

    def load_translator(directory, backend=None, threads=None):
        model = real(directory, backend, threads)
        if backend == "onnxruntime":  # graphs that add a word to every output
            translate = model.translate
            model.translate = lambda *args, **options: [
                text + " extra" for text in translate(*args, **options)
            ]
        return model

    monkeypatch.setattr(testing, "load_translator", load_translator)
    with pytest.raises(AssertionError, match="check_model: ONNX Runtime and PyTorch translate"):
        check_model("seq2seq_transformer", tmp_path, **TRANSFORMER)


def test_a_loaded_artifact_scoring_otherwise_is_reported(tmp_path, monkeypatch):
    real = testing.evaluate_translator

    def higher(*args, **kwargs):
        metrics = real(*args, **kwargs)
        return {**metrics, "bleu": metrics["bleu"] + 1.0}

    monkeypatch.setattr(testing, "evaluate_translator", higher)
    with pytest.raises(AssertionError, match="check_model: loaded artifact BLEU"):
        check_model("memory", tmp_path)
