"""`ladder run` with data.task seq2seq: the translation memory, the recurrent encoder-decoder and
the Transformer on the same pairs, ranked by BLEU with intervals and paired bootstrap tests;
artifacts on torch and ONNX Runtime, int8 compression, predict and generate, the report's
examples, and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

import ladder
from ladder.cli import main
from ladder.errors import ConfigError, DataError
from ladder.runner.ladder import run
from ladder.tasks.seq2seq import LEADERBOARD_COLUMNS

CHAR = {"tokenizer": "char"}
SHORT = {"max_source_length": 48, "max_target_length": 48}
TRANSFORMER = {
    "name": "transformer",
    "type": "seq2seq_transformer",
    "d_model": 32,
    "n_head": 2,
    "n_encoder_layers": 1,
    "n_decoder_layers": 1,
    "dropout": 0.0,
    **SHORT,
    "max_steps": 60,
    "eval_interval": 30,
    "text": CHAR,
}
RNN = {
    "name": "gru",
    "type": "seq2seq_rnn",
    "embedding_dim": 16,
    "hidden_size": 32,
    "dropout": 0.0,
    **SHORT,
    "max_steps": 40,
    "eval_interval": 20,
    "text": CHAR,
}
MEMORY = {"name": "memory", "type": "memory"}


def write_s2s_config(tmp_path, models, source="builtin:numbers-en-fr:300", **extra):
    config = {
        "name": "s2s",
        "seed": 0,
        "data": {"source": source, "task": "seq2seq", "split": {"val": 0.1, "test": 0.2}},
        "models": models,
        "train": {"batch_size": 16, "eval_batches": 2},
        "evaluate": {"bootstrap": 50, "beam_size": 2, "examples": 3},
        **extra,
    }
    path = tmp_path / "s2s.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s")
    config = write_s2s_config(tmp, [MEMORY, RNN, TRANSFORMER], compress=[{"method": "quantize"}])
    return tmp, run(config, out=tmp / "run")


@pytest.mark.slow
def test_every_rung_is_ranked_by_bleu_with_intervals_and_paired_tests(finished_run):
    _, result = finished_run
    board = result.leaderboard
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert result.failed == {}
    names = set(board["model"])
    assert {"memory", "gru", "transformer", "gru+int8", "transformer+int8"} <= names
    assert list(board["bleu"]) == sorted(board["bleu"], reverse=True)
    for _, row in board.iterrows():
        assert 0 <= row["ci_low"] <= row["bleu"] <= row["ci_high"] <= 100
        assert 0 <= row["bootstrap_p"] <= 1
        assert row["latency_ms"] > 0
    assert board.iloc[0]["bootstrap_p"] == 1.0  # the best against itself
    variant = board.set_index("model").loc["transformer+int8"]
    assert variant["variant_of"] == "transformer" and variant["bleu_delta"] == pytest.approx(
        variant["bleu"] - board.set_index("model").loc["transformer", "bleu"]
    )


@pytest.mark.slow
def test_test_predictions_and_report_show_each_rungs_outputs(finished_run):
    tmp, _ = finished_run
    run_dir = tmp / "run"
    frames = {
        name: pd.read_csv(run_dir / "models" / name / "test_predictions.csv", keep_default_na=False)
        for name in ("memory", "gru", "transformer")
    }
    sources = [list(f["source"]) for f in frames.values()]
    assert sources[0] == sources[1] == sources[2] and len(sources[0]) == 60
    memory = frames["memory"]  # it recalls training targets: never a (disjoint) test number
    assert memory["hypothesis"].str.len().min() > 0
    assert (memory["hypothesis"] != memory["reference"]).all()
    report = (run_dir / "report.html").read_text()
    assert "<h3>Examples</h3>" in report and "Metric signatures" in report
    first = frames["memory"].iloc[0]
    assert str(first["source"]) in report and str(first["reference"]) in report
    metrics = json.loads((run_dir / "models" / "transformer" / "metrics.json").read_text())
    assert metrics["signatures"]["bleu"].startswith("nrefs:1")
    assert metrics["decoding"]["beam_size"] == 2 and metrics["primary"] == "bleu"


@pytest.mark.slow
def test_artifacts_translate_alike_on_torch_and_onnxruntime(finished_run):
    tmp, _ = finished_run
    sources = ["deux cent", "twelve", "three hundred and five"]
    for name in ("transformer", "gru"):
        artifact = tmp / "run" / "models" / name / "artifact"
        manifest = json.loads((artifact / "manifest.json").read_text())
        assert manifest["task"] == "seq2seq" and manifest["onnx"]["exported"]
        assert manifest["onnx"]["max_abs_diff"] <= 1e-4
        torch_model = ladder.load(artifact)
        onnx_model = ladder.load(artifact, backend="onnxruntime")
        for beam in (1, 3):
            want = torch_model.translate(sources, beam_size=beam)
            assert onnx_model.translate(sources, beam_size=beam) == want
        greedy = torch_model.translate(sources[:1], beam_size=1)[0]
        assert torch_model.generate(sources[0], temperature=0, max_new_tokens=48) == greedy
        assert "".join(torch_model.stream(sources[0], temperature=0)) == greedy
    int8 = ladder.load(tmp / "run" / "models" / "transformer+int8" / "artifact")
    assert len(int8.translate(sources)) == 3
    memory = ladder.load(tmp / "run" / "models" / "memory" / "artifact")
    recalled = memory.translate(["twelve"])[0]
    assert memory.generate("twelve", temperature=0, max_new_tokens=200) == recalled


@pytest.mark.slow
def test_predict_and_generate_on_the_command_line(finished_run, tmp_path, capsys):
    tmp, _ = finished_run
    artifact = tmp / "run" / "models" / "transformer" / "artifact"
    sources = tmp_path / "sources.txt"
    sources.write_text("twelve\n\nforty-one\n")
    out = tmp_path / "out.csv"
    assert main(["predict", str(artifact), str(sources), "--output", str(out)]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == ["source", "output"] and len(frame) == 3
    assert frame["output"][1] == ""
    model = ladder.load(artifact)
    assert list(frame["output"]) == [
        model.translate(["twelve"])[0],
        "",
        *model.translate(["forty-one"]),
    ]
    capsys.readouterr()
    assert main(["generate", str(artifact), "--prompt", "twelve"]) == 0
    assert capsys.readouterr().out.strip() == model.translate(["twelve"])[0].strip()
    assert main(["generate", str(artifact), "-p", "twelve", "--beam-size", "0"]) == 2


@pytest.mark.slow
def test_a_second_run_reuses_the_trained_models(finished_run):
    tmp, _ = finished_run
    config = write_s2s_config(tmp, [MEMORY, RNN, TRANSFORMER], compress=[{"method": "quantize"}])
    again = run(config, out=tmp / "run")
    assert set(again.status.values()) <= {"cached", "ok"}
    assert again.status["transformer"] == "cached"


def test_a_missing_source_column_is_named_with_the_columns(tmp_path):
    (tmp_path / "pairs.csv").write_text("en,fr\none,un\ntwo,deux\n")
    config = write_s2s_config(tmp_path, [MEMORY], source="pairs.csv")
    with pytest.raises(DataError, match=r"'source'.*en, fr"):
        run(config, out=tmp_path / "run")


def test_all_empty_pairs_are_an_error_and_some_are_dropped_with_a_count(tmp_path, capsys):
    (tmp_path / "pairs.csv").write_text("source,target\n,un\ntwo,\n")
    config = write_s2s_config(tmp_path, [MEMORY], source="pairs.csv")
    with pytest.raises(DataError, match="empty"):
        run(config, out=tmp_path / "run")
    rows = "\n".join(f"n{i},m{i}" for i in range(40))
    (tmp_path / "pairs.csv").write_text(f"source,target\n,un\ntwo,\n{rows}\n")
    result = run(config, out=tmp_path / "run2")
    assert result.failed == {}
    assert "2 with an empty source or target dropped" in capsys.readouterr().err


def test_a_long_target_is_truncated_with_a_count(tmp_path, capsys):
    rows = "\n".join(f"n{i},{'m' * (60 if i < 3 else 5)}{i}" for i in range(40))
    (tmp_path / "pairs.csv").write_text(f"source,target\n{rows}\n")
    tiny = {**TRANSFORMER, "max_target_length": 16, "max_steps": 2, "eval_interval": 1}
    config = write_s2s_config(tmp_path, [tiny], source="pairs.csv")
    run(config, out=tmp_path / "run")
    err = capsys.readouterr().err
    assert "target(s) longer than max_target_length 16" in err and "truncated" in err


def test_options_that_do_not_fit_seq2seq_are_refused_by_name(tmp_path):
    config = write_s2s_config(
        tmp_path,
        [MEMORY, {**RNN, "text": {"tokenizer": "word"}}],
        compress=[{"method": "prune", "amount": 0.5}],
    )
    with pytest.raises(ConfigError) as raised:
        run(config, out=tmp_path / "run")
    text = str(raised.value)
    assert "compress: prune" in text and "models.gru.text.tokenizer: word" in text
    wrong = write_s2s_config(tmp_path, [{"name": "lr", "type": "logistic_regression"}])
    with pytest.raises(ConfigError, match=r"models\.lr\.type: logistic_regression learns"):
        run(wrong, out=tmp_path / "run")


def test_beam_size_below_one_is_a_config_error(tmp_path, capsys):
    config = write_s2s_config(tmp_path, [MEMORY])
    settings = yaml.safe_load(config.read_text())
    settings["evaluate"]["beam_size"] = 0
    config.write_text(yaml.safe_dump(settings))
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "beam_size" in capsys.readouterr().err
