"""`ladder run` with pretrained encoder-decoders from local folders: a tiny T5 fine-tuned with
LoRA and a tiny BART fully fine-tuned, ranked like any rung; their artifacts are merged
transformers folders that translate as the run did. A decoder-only folder is named for what it
is, and compression, which needs ONNX graphs, says why it has nothing to do."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from tiny_seq2seq import make_tiny_bart, make_tiny_t5

import ladder
from ladder.cli import main
from ladder.data.pairs import read_pairs
from ladder.runner.ladder import run

PAIRS = "builtin:numbers-en-fr:80"
BEAMS = 2
SHORT = {
    "max_source_length": 16,
    "max_target_length": 10,
    "max_steps": 6,
    "eval_interval": 3,
    "optimizer": {"lr": 3.0e-3},  # enough to move a random model in six steps
}


def write_config(folder, models, **extra):
    config = {
        "name": "pretrained",
        "seed": 0,
        "data": {"source": PAIRS, "task": "seq2seq", "split": {"val": 0.1, "test": 0.1}},
        "models": models,
        "train": {"batch_size": 8, "eval_batches": 1},
        "evaluate": {"bootstrap": 20, "beam_size": BEAMS, "examples": 2},
        **extra,
    }
    path = folder / "pretrained.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def entries(t5, bart):
    return [
        {"name": "t5", "type": "pretrained_seq2seq", "path": str(t5), "lora": {"r": 4, "alpha": 8}}
        | SHORT,
        {"name": "bart", "type": "pretrained_seq2seq", "path": str(bart)} | SHORT,
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run of both rungs on the number pairs, with the models' tokenizers trained on them."""
    tmp = tmp_path_factory.mktemp("s2s_pretrained")
    pairs = read_pairs(PAIRS)
    texts = [*pairs.sources, *pairs.targets]
    t5 = make_tiny_t5(tmp / "t5", texts)
    # an untied head: a random tied BART echoes its decoder start (eos) and says nothing
    bart = make_tiny_bart(tmp / "bart", texts, tie_word_embeddings=False)
    config = write_config(tmp, entries(t5, bart))
    return tmp, run(config, out=tmp / "run"), config


@pytest.mark.slow
def test_both_pretrained_rungs_finish_and_are_ranked(finished):
    _, result, _ = finished
    assert result.failed == {}
    board = result.leaderboard.set_index("model")
    assert set(board.index) == {"t5", "bart"}
    assert set(board["type"]) == {"pretrained_seq2seq"} and set(board["status"]) == {"ok"}
    assert ((board["bleu"] >= 0) & (board["bleu"] <= 100)).all()
    assert (board["latency_ms"] > 0).all()


@pytest.mark.slow
def test_the_artifact_is_a_merged_transformers_folder(finished):
    from safetensors import safe_open
    from transformers import AutoModelForSeq2SeqLM

    tmp, _, _ = finished
    for name in ("t5", "bart"):
        artifact = tmp / "run" / "models" / name / "artifact"
        model = ladder.load(artifact)
        manifest = model.manifest
        assert manifest["task"] == "seq2seq" and manifest["model_type"] == "pretrained_seq2seq"
        assert manifest["tokenizer"] == "pretrained" and not manifest["onnx"]["exported"]
        assert manifest["decoding"]["beam_size"] == BEAMS
        folder = artifact / "model"
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
            p.name for p in folder.iterdir()
        }
        with safe_open(str(folder / "model.safetensors"), "pt") as weights:
            names = list(weights.keys())
        assert names and not [k for k in names if "lora_" in k]  # the adapters are merged
        assert AutoModelForSeq2SeqLM.from_pretrained(folder).config.is_encoder_decoder
    lora = ladder.load(tmp / "run" / "models" / "t5" / "artifact").manifest["model_config"]
    assert lora["lora"]["r"] == 4


@pytest.mark.slow
def test_the_reloaded_artifact_translates_as_the_run_did(finished):
    tmp, _, _ = finished
    spoke = []
    for name in ("t5", "bart"):
        model_dir = tmp / "run" / "models" / name
        frame = pd.read_csv(model_dir / "test_predictions.csv", keep_default_na=False)
        sources, hypotheses = list(frame["source"][:4]), list(frame["hypothesis"][:4])
        model = ladder.load(model_dir / "artifact")
        assert model.translate(sources) == hypotheses  # the artifact's decoding: the run's
        assert model.translate(sources, beam_size=BEAMS) == hypotheses
        spoke.append(any(hypotheses))
    assert all(spoke), "a rung said nothing for every source: the comparison proves little"


def test_a_decoder_only_folder_is_named_for_what_it_is(tmp_path, capsys):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    sizes = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 32, "vocab_size": 64}
    sizes |= {"bos_token_id": 0, "eos_token_id": 0}
    GPT2LMHeadModel(GPT2Config(**sizes)).save_pretrained(tmp_path / "gpt2", safe_serialization=True)
    entry = {"name": "gpt", "type": "pretrained_seq2seq", "path": str(tmp_path / "gpt2")}
    config = write_config(tmp_path, [{"name": "memory", "type": "memory"}, entry | SHORT])
    what = (
        f"models.gpt.path: {tmp_path / 'gpt2'} holds a GPT2LMHeadModel (gpt2), a decoder-only "
        "model: use type causal_lm"
    )

    out = str(tmp_path / "run")
    assert main(["train", str(config), "--model", "gpt", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: config: {what}"

    # `ladder run` trains the other rungs and reports the failed one (exit code 1)
    assert main(["run", str(config), "--out", out]) == 1
    err = capsys.readouterr().err
    assert f"gpt failed: ConfigError: config: {what}" in err and "Traceback" not in err
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("model")
    assert board.loc["memory", "status"] == "ok"
    assert board.loc["gpt", "status"] == f"failed: ConfigError: config: {what}"


@pytest.mark.slow
def test_compressing_a_pretrained_seq2seq_says_it_has_no_graphs(finished, tmp_path, capsys):
    original, _, config = finished
    run_dir = tmp_path / "run"
    shutil.copytree(original / "run", run_dir)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())

    def compress(method: dict) -> int:
        settings = {**saved, "compress": [method]}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(settings))
        capsys.readouterr()
        return main(["compress", str(run_dir)])

    why = "pretrained_seq2seq has no ONNX graphs to quantize; ONNX Runtime quantizes seq2seq_rnn"
    assert compress({"method": "quantize"}) == 2
    err = capsys.readouterr().err
    assert f"the compress: section has no model to work on (t5, bart: {why}" in err
    assert "Traceback" not in err

    assert compress({"method": "quantize", "models": ["t5"]}) == 2
    err = capsys.readouterr().err
    assert "t5+int8: t5: nothing to quantize with ONNX Runtime" in err
    assert "no encoder and decoder graphs" in err
    assert not (run_dir / "models" / "t5+int8" / "artifact").exists()

    # within `ladder run`, the rungs are reused and each one left out is said
    settings = {**yaml.safe_load(config.read_text()), "compress": [{"method": "quantize"}]}
    config = tmp_path / "compress.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = run(config, out=run_dir)
    assert result.status == {"t5": "cached", "bart": "cached"}
    err = capsys.readouterr().err
    assert f"t5+int8: skipped ({why}" in err and f"bart+int8: skipped ({why}" in err
