"""The network rungs of a generation ladder: gpt and rnn_lm trained step by step, the GPT's
ONNX graph and its int8 variant, and a pretrained causal LM (tiny, random, from a local
folder) fine-tuned with LoRA through `ladder run`."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import yaml

import ladder
from ladder.cli import main
from ladder.runner.ladder import run

LINES = [
    "the cat sat on the mat and looked at the dog.",
    "a dog ran in the park after the red ball.",
    "the bird sang a song in the old tree.",
    "we read a book by the warm fire at night.",
]
TEXT = "\n".join(LINES[(i * 7 + i // 3) % 4] for i in range(300)) + "\n"
FAST = {"batch_size": 8, "max_steps": 40, "eval_interval": 20, "eval_batches": 2}
GPT = {"name": "gpt", "type": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32}
LSTM = {"name": "lstm", "type": "rnn_lm", "embedding_dim": 32, "hidden": 32, "layers": 1,
        "block_size": 32}  # fmt: skip


def lm_config(tmp_path, models, **extra):
    (tmp_path / "corpus.txt").write_text(TEXT)
    config = {
        "name": "lm",
        "data": {"source": "corpus.txt", "task": "generation", "split": {"val": 0.1, "test": 0.2}},
        "train": FAST,
        "models": models,
        "evaluate": {"bootstrap": 50, "sample_tokens": 10},
        **extra,
    }
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("lm")
    config = lm_config(tmp_path, [GPT, LSTM], compress=[{"method": "quantize"}])
    run(config, out=tmp_path / "run")
    return tmp_path


def test_networks_train_by_steps_and_rank_with_the_int8_variant(trained):
    board = pd.read_csv(trained / "run/leaderboard.csv").set_index("model")
    assert set(board.index) == {"gpt", "lstm", "gpt+int8"}
    assert set(board["status"]) == {"ok"}
    assert board.loc["gpt+int8", "variant_of"] == "gpt"
    assert abs(board.loc["gpt+int8", "bpb_delta"]) < 0.05  # int8 costs little
    history = pd.read_csv(trained / "run/models/gpt/history.csv")
    assert list(history["step"]) == [20, 40]
    assert {"train_loss", "val_loss", "tokens_per_s"} <= set(history.columns)
    assert (trained / "run/models/gpt/plots/learning_curve.png").is_file()
    metrics = json.loads((trained / "run/models/gpt/metrics.json").read_text())
    assert metrics["train_tokens_per_s"] > 0 and metrics["val_bits_per_byte"] > 0
    manifest = json.loads((trained / "run/models/gpt/artifact/manifest.json").read_text())
    assert manifest["onnx"]["max_abs_diff"] <= 1e-4
    assert manifest["context_length"] == 32 and "model.onnx" in manifest["files"]
    lstm = json.loads((trained / "run/models/lstm/artifact/manifest.json").read_text())
    assert "model.onnx" not in lstm["files"] and "reason" in lstm["onnx"]


def test_onnx_runtime_decodes_as_torch_does_without_torch(trained, tmp_path):
    import subprocess

    artifact = trained / "run/models/gpt/artifact"
    torch_text = ladder.load(artifact).generate("the cat", max_new_tokens=40, temperature=0)
    code = (
        "import sys, ladder\n"
        f"g = ladder.load({str(artifact)!r}, backend='onnxruntime')\n"
        "print(repr(g.generate('the cat', max_new_tokens=40, temperature=0)))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    text, torch_loaded = out.stdout.strip().splitlines()
    assert text == repr(torch_text) and torch_loaded == "False"
    variant = ladder.load(trained / "run/models/gpt+int8/artifact")
    assert len(variant.generate("the cat", max_new_tokens=10, seed=0)) > 0


def test_a_prompt_longer_than_the_context_is_cut_with_a_warning(trained, capsys):
    artifact = str(trained / "run/models/gpt/artifact")
    prompt = "the dog ran in the park after the red ball and " * 2  # 94 characters > 32
    assert main(["generate", artifact, "-p", prompt, "-t", "0", "-n", "5"]) == 0
    captured = capsys.readouterr()
    assert "the prompt is 94 tokens and the model reads 32: its first 63 tokens" in captured.err
    assert main(["generate", artifact, "-p", prompt[-31:], "-t", "0", "-n", "5"]) == 0
    assert capsys.readouterr().out == captured.out  # the same last 31 tokens


def test_resume_is_for_networks(trained, tmp_path, capsys):
    config = lm_config(tmp_path, [{"name": "ngram", "type": "ngram"}])
    assert main(["train", str(config), "--model", "ngram", "--resume"]) == 2
    assert "has no checkpoints" in capsys.readouterr().err


# ----------------------------------------------------------------------------- causal LM


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level BPE tokenizer, as save_pretrained writes it."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    from ladder.data.lm_tokenizers import ByteBPETokenizer

    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = ByteBPETokenizer.train(LINES * 5, vocab_size=300)
    tokenizer.tokenizer.save(str(folder / "tokenizer.json"))
    sizes = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}
    config = GPT2Config(vocab_size=tokenizer.vocab_size, bos_token_id=0, eos_token_id=0, **sizes)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


def test_a_pretrained_decoder_fine_tunes_with_lora_in_the_ladder(tmp_path, gpt2_folder):
    lora = {"r": 4, "alpha": 8}
    entry = {"name": "gpt2", "type": "causal_lm", "path": str(gpt2_folder), "lora": lora,
             "max_steps": 20, "eval_interval": 10, "optimizer": {"lr": 0.01}}  # fmt: skip
    run(lm_config(tmp_path, [entry]), out=tmp_path / "run")
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert board.loc[0, "status"] == "ok" and board.loc[0, "tokenizer"] == "pretrained"
    history = pd.read_csv(tmp_path / "run/models/gpt2/history.csv")
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0] + 1e-6
    generator = ladder.load(tmp_path / "run/models/gpt2/artifact")
    assert generator.generate("the cat", max_new_tokens=8, seed=1) == generator.generate(
        "the cat", max_new_tokens=8, seed=1
    )
    files = json.loads((tmp_path / "run/models/gpt2/artifact/manifest.json").read_text())["files"]
    assert "model/config.json" in files and "model/tokenizer.json" in files


def test_causal_lm_bad_folders_and_targets_are_one_line(tmp_path, gpt2_folder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "config_only").mkdir()
    (tmp_path / "config_only/config.json").write_text((gpt2_folder / "config.json").read_text())
    entries = [
        {"name": "empty", "type": "causal_lm", "path": str(tmp_path / "empty")},
        {"name": "config_only", "type": "causal_lm", "path": str(tmp_path / "config_only")},
        {"name": "bad_target", "type": "causal_lm", "path": str(gpt2_folder),
         "lora": {"target_modules": ["q_proj"]}},
    ]  # fmt: skip
    result = run(lm_config(tmp_path, entries), out=tmp_path / "run")
    assert "empty has no config.json" in result.failed["empty"]
    assert "config_only has no weights" in result.failed["config_only"]
    assert "q_proj" in result.failed["bad_target"] and "c_attn" in result.failed["bad_target"]
