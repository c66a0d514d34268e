"""`ladder run` with data.task generation: every language model on the same text, ranked by
bits per byte with intervals and paired tests; samples, artifacts, caching and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

import ladder
from ladder.cli import main
from ladder.config import load_run_config
from ladder.errors import ConfigError, DataError
from ladder.generate.generator import TextGenerator
from ladder.runner.cache import cached_status
from ladder.runner.ladder import run
from ladder.runner.prepare import prepare
from ladder.tasks.generation import LEADERBOARD_COLUMNS

SENTENCES = [
    "the cat sat on the mat and looked at the dog.",
    "a dog ran in the park after the red ball.",
    "the bird sang a song in the old tree.",
    "we read a book by the warm fire at night.",
]


def corpus_text(lines: int = 400) -> str:
    return "\n".join(SENTENCES[(i * 7 + i // 3) % 4] for i in range(lines)) + "\n"


def write_lm_config(tmp_path, models, source="corpus.txt", text=None, **extra):
    if text is not None:
        (tmp_path / source).write_text(text)
    config = {
        "name": "lm",
        "seed": 0,
        "data": {"source": source, "task": "generation", "split": {"val": 0.1, "test": 0.2}},
        "models": models,
        "evaluate": {"bootstrap": 100, "sample_tokens": 20},
        **extra,
    }
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


NGRAMS = [
    {"name": "unigram", "type": "ngram", "order": 1},
    {"name": "sixgram", "type": "ngram", "order": 6},
    {
        "name": "bpe_bigram",
        "type": "ngram",
        "order": 2,
        "text": {"tokenizer": "bpe", "vocab_size": 300},
    },
]


def test_ngram_ladder_ranks_on_bits_per_byte_with_intervals(tmp_path):
    config = write_lm_config(tmp_path, NGRAMS, text=corpus_text())
    result = run(config, out=tmp_path / "run")
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert list(board["bits_per_byte"]) == sorted(board["bits_per_byte"])
    assert board.iloc[-1]["model"] == "unigram"  # no context: the worst by far
    assert (board["bpb_ci_low"] <= board["bits_per_byte"]).all()
    assert (board["bits_per_byte"] <= board["bpb_ci_high"]).all()
    assert board.iloc[0]["ttest_p"] == 1.0 and board.iloc[-1]["ttest_p"] < 0.01
    assert set(board["tokenizer"]) == {"char", "bpe"}
    assert (board["throughput_per_s"] > 0).all()
    report = result.report.read_text()
    assert "Bits per byte vs latency" in report and "<h3>Samples</h3>" in report
    assert "Parts (contiguous, in order)" in report

    data = json.loads((tmp_path / "run/data.json").read_text())
    test_bytes = data["bytes"]["test"]
    for name in ("unigram", "sixgram", "bpe_bigram"):
        predictions = pd.read_csv(tmp_path / f"run/models/{name}/test_predictions.csv")
        assert predictions["bytes"].sum() == test_bytes  # every model scores the same text
        assert len(predictions) > 10
        metrics = json.loads((tmp_path / f"run/models/{name}/metrics.json").read_text())
        bpb = predictions["nats"].sum() / (0.6931471805599453 * test_bytes)
        assert metrics["bits_per_byte"] == pytest.approx(bpb)
        samples = json.loads((tmp_path / f"run/models/{name}/samples.json").read_text())
        assert len(samples) == 3 and all(s["completion"] for s in samples)


def test_a_rerun_is_cached_and_the_artifact_generates(tmp_path, capsys):
    config = write_lm_config(tmp_path, NGRAMS[1:2], text=corpus_text())
    run(config, out=tmp_path / "run")
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    assert "cached" in capsys.readouterr().err
    generator = ladder.load(tmp_path / "run/models/sixgram/artifact")
    assert isinstance(generator, TextGenerator)
    greedy = generator.generate("the cat ", max_new_tokens=20, temperature=0)
    assert greedy == generator.generate("the cat ", max_new_tokens=20, temperature=0)
    assert greedy.startswith("sat on the ")
    sampled = generator.generate("the ", max_new_tokens=30, seed=5)
    assert sampled == generator.generate("the ", max_new_tokens=30, seed=5)
    # the run folder's config reloads and prepares again, as `ladder compress` does
    config, data = prepare(load_run_config(tmp_path / "run"))
    assert config.data.task == "generation" and not config.data.split.stratify
    assert data.info["sha256"] == json.loads((tmp_path / "run/data.json").read_text())["sha256"]
    assert cached_status(tmp_path / "run", config, config.model("sixgram")) == "cached"


def test_cli_generate_streams_and_refuses_bad_parameters(tmp_path, capsys):
    config = write_lm_config(tmp_path, NGRAMS[1:2], text=corpus_text())
    run(config, out=tmp_path / "run")
    artifact = str(tmp_path / "run/models/sixgram/artifact")
    capsys.readouterr()
    assert main(["generate", artifact, "--prompt", "the cat ", "-t", "0", "-n", "6"]) == 0
    assert capsys.readouterr().out == "sat on\n"
    assert main(["generate", artifact, "-p", "the cat ", "-t", "0", "--stop", " the"]) == 0
    assert capsys.readouterr().out == "sat on\n"
    for args, message in [
        (["-n", "0"], "--max-new-tokens must be >= 1"),
        (["-t", "-1"], "--temperature must be a number >= 0"),
        (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["--top-k", "0"], "--top-k must be an integer >= 1"),
        (["--backend", "onnxruntime"], "decodes with numpy"),
    ]:
        assert main(["generate", artifact, "-p", "the", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_prompt_completion_scores_the_completions_only(tmp_path):
    lines = [
        json.dumps({"prompt": f"Q: what is {i} plus one?\nA: ", "completion": f"{i + 1}"})
        for i in range(60)
    ]
    (tmp_path / "qa.jsonl").write_text("\n".join(lines) + "\n")
    config = write_lm_config(tmp_path, NGRAMS[1:2], source="qa.jsonl")
    run(config, out=tmp_path / "run")
    data = json.loads((tmp_path / "run/data.json").read_text())
    assert data["kind"] == "prompt_completion" and data["examples"]["test"] == 12
    predictions = pd.read_csv(tmp_path / "run/models/sixgram/test_predictions.csv")
    completions = [json.loads(line)["completion"] + "\n\n" for line in lines[-12:]]
    assert list(predictions["bytes"]) == [len(c.encode()) for c in completions]
    assert (tmp_path / "run/models/sixgram/tokens/train.mask").is_file()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the corpus is empty"),
        ("   \n\n ", "the corpus is empty"),
        ("one short line", "the corpus is too short to split"),
    ],
)
def test_an_empty_or_tiny_corpus_is_one_line(tmp_path, capsys, text, message):
    config = write_lm_config(tmp_path, NGRAMS[1:2], text=text)
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_prompt_completion_line_without_a_field_is_named(tmp_path):
    good = json.dumps({"prompt": "a", "completion": "b"})
    (tmp_path / "qa.jsonl").write_text(f"{good}\n{good}\n" + json.dumps({"prompt": "x"}) + "\n")
    config = write_lm_config(tmp_path, NGRAMS[1:2], source="qa.jsonl")
    with pytest.raises(DataError, match="line 3 has no string field 'completion'"):
        run(config, out=tmp_path / "run")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"evaluate": {"cv": 3}}, "evaluate.cv: cross-validation needs exchangeable rows"),
        (
            {"models": [{"name": "w", "type": "ngram", "text": {"tokenizer": "word"}}]},
            "word cannot spell",
        ),
        (
            {"models": [{"name": "tree", "type": "decision_tree"}]},
            "decision_tree learns classification",
        ),
        ({"evaluate": {"primary": "accuracy"}}, "'accuracy' is not a generation metric"),
    ],
)
def test_options_that_do_not_fit_generation_are_named(tmp_path, change, message):
    config = yaml.safe_load(write_lm_config(tmp_path, NGRAMS[1:2], text=corpus_text()).read_text())
    config.update(change)
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message):
        run(tmp_path / "lm.yaml", out=tmp_path / "run")
