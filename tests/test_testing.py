"""Every registered model type passes the conformance suite (`ladder.testing.check_model`)."""

from __future__ import annotations

import pytest

from ladder.registry import MODEL_TYPES
from ladder.testing import check_model

S2S_LENGTHS = {"max_source_length": 24, "max_target_length": 12}
S2S_CHARS = {"text": {"tokenizer": "char"}, **S2S_LENGTHS}
SMALL = {
    "mlp": {"hidden": [8]},
    "cnn": {"channels": [4]},
    "random_forest": {"n_estimators": 5},
    "textcnn": {"embedding_dim": 8, "filters": 4},
    "rnn": {"embedding_dim": 8, "hidden": 8},
    "scratch_mlp": {"hidden": [8]},
    "scratch_lstm": {"embedding_dim": 8, "hidden": 8},
    "transformer": {"d_model": 16, "heads": 2, "ff_dim": 32, "layers": 1},
    "rnn_lm": {"embedding_dim": 8, "hidden": 16, "layers": 1, "block_size": 16},
    "gpt": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
    "seq2seq_rnn": {"embedding_dim": 8, "hidden_size": 16, **S2S_CHARS},
    "seq2seq_transformer": {"d_model": 16, "n_head": 2, "n_decoder_layers": 1, **S2S_CHARS},
    "pretrained_seq2seq": {"lora": {"r": 4, "alpha": 8}, **S2S_LENGTHS},
}
SLOW = {"pretrained"}  # fine-tunes the real MiniLM (22M parameters)


@pytest.mark.parametrize(
    "model_type",
    [pytest.param(t, marks=pytest.mark.slow) if t in SLOW else t for t in MODEL_TYPES],
)
def test_every_registered_model_conforms(model_type, tmp_path, request):
    params = dict(SMALL.get(model_type, {}))
    if model_type == "pretrained":
        params["path"] = str(request.getfixturevalue("minilm_path"))
    if model_type == "causal_lm":
        params["path"] = str(request.getfixturevalue("tiny_gpt2_folder"))
    if model_type == "pretrained_seq2seq":
        params["path"] = str(request.getfixturevalue("tiny_t5_folder"))
    metrics = check_model(model_type, tmp_path, **params)
    tasks = MODEL_TYPES[model_type].tasks
    if "classification" in tasks:
        assert 0.0 <= metrics["accuracy"] <= 1.0
    elif "regression" in tasks:  # a regression-only type (linear_regression, ridge, mean, ...)
        assert metrics["rmse"] >= 0
    elif "seq2seq" in tasks:
        assert 0.0 <= metrics["bleu"] <= 100.0 and metrics["primary"] == "bleu"
    else:  # a language model
        assert metrics["bits_per_byte"] > 0 and metrics["perplexity"] >= 1


@pytest.fixture
def tiny_gpt2_folder(tmp_path_factory):
    """A random two-layer GPT-2 with a byte-level BPE tokenizer, as save_pretrained writes it."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    from ladder.data.lm_tokenizers import ByteBPETokenizer

    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = ByteBPETokenizer.train(["the cat sat on the mat. a dog ran."] * 50, vocab_size=280)
    tokenizer.tokenizer.save(str(folder / "tokenizer.json"))
    sizes = {"n_layer": 2, "n_head": 2, "n_embd": 16, "n_positions": 32}
    config = GPT2Config(vocab_size=tokenizer.vocab_size, bos_token_id=0, eos_token_id=0, **sizes)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_t5_folder(tmp_path_factory):
    """A random two-layer T5 whose tokenizer knows the conformance pairs' words and digits."""
    from tiny_seq2seq import make_tiny_t5

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return make_tiny_t5(tmp_path_factory.mktemp("t5"), [" ".join(words), *words, *"0123456789"])


REGRESSION = [  # the conformance data for regression is tabular or text, not images
    t
    for t in MODEL_TYPES
    if "regression" in MODEL_TYPES[t].tasks and MODEL_TYPES[t].inputs != ("image",)
]


@pytest.mark.parametrize(
    "model_type",
    [pytest.param(t, marks=pytest.mark.slow) if t in SLOW else t for t in REGRESSION],
)
def test_every_regression_type_conforms(model_type, tmp_path, request):
    params = dict(SMALL.get(model_type, {}))
    if model_type == "pretrained":
        params["path"] = str(request.getfixturevalue("minilm_path"))
    metrics = check_model(model_type, tmp_path, task="regression", **params)
    assert metrics["rmse"] >= 0 and "accuracy" not in metrics


def test_lenet5_conforms(tmp_path):
    check_model("cnn", tmp_path, arch="lenet5")


def test_a_broken_check_is_reported(tmp_path, monkeypatch):
    import ladder.export.artifact as artifact

    original = artifact.LoadedModel.predict_proba_raw
    monkeypatch.setattr(
        artifact.LoadedModel, "predict_proba_raw", lambda self, raw: original(self, raw)[:, ::-1]
    )
    with pytest.raises(AssertionError, match="check_model: loaded artifact"):
        check_model("logistic_regression", tmp_path)
