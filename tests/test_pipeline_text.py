"""Text data through the whole pipeline: every text rung in `ladder run`, artifacts that
predict from raw strings, and the bad inputs of text configs (exit 2, one line)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import ladder
from ladder.cli import main

WORDS = {
    "pos": ["great", "moving", "superb", "fun", "wonderful"],
    "neg": ["dull", "awful", "boring", "mess", "tedious"],
}
SMALL = [
    {"name": "cnn", "type": "textcnn", "embedding_dim": 16, "filters": 8},
    {"name": "lstm", "type": "rnn", "embedding_dim": 16, "hidden": 16, "cell": "gru"},
    {"name": "attn", "type": "transformer", "d_model": 16, "heads": 2, "ff_dim": 32},
]


def write_reviews(path: Path, n: int = 80, seed: int = 0, empty: int = 2) -> Path:
    """A CSV of short reviews (a few sentiment words among filler); `empty` texts left blank."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ("pos", "neg")[i % 2]
        words = [*rng.choice(WORDS[label], 2), *rng.choice(["the", "film", "was", "a"], 3)]
        rows.append({"id": i, "review": " ".join(rng.permutation(words)), "label": label})
    for row in rows[:empty]:
        row["review"] = ""
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_text_config(tmp_path: Path, models: list[dict], **data) -> Path:
    config = {
        "name": "reviews",
        "data": {
            "source": str(write_reviews(tmp_path / "reviews.csv")),
            "text": "review",
            "split": {"test": 0.25, "val": 0.25},
            **data,
        },
        "text": {"tokenizer": "word", "max_length": 16},
        "train": {
            "epochs": 8,
            "batch_size": 8,
            "early_stopping": None,
            "optimizer": {"lr": 0.01},
        },
        "evaluate": {"bootstrap": 50},
        "models": models,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.slow
def test_the_text_ladder_runs_and_its_artifacts_read_raw_strings(tmp_path):
    config = write_text_config(tmp_path, SMALL)
    result = ladder.run(config, out=tmp_path / "run")
    assert set(result.status.values()) == {"ok"}, result.status
    info = json.loads((tmp_path / "run/data.json").read_text())
    assert info["kind"] == "text" and info["features"]["empty_texts"] >= 1
    for name in ("cnn", "lstm", "attn"):
        artifact = tmp_path / "run/models" / name / "artifact"
        manifest = json.loads((artifact / "manifest.json").read_text())
        assert "tokenizer.json" in manifest["files"] and manifest["input"]["kind"] == "text"
        model = ladder.load(artifact)
        texts = ["superb wonderful fun", "awful tedious mess", ""]
        assert model.predict_proba(texts).shape == (3, 2)
        assert list(model.predict(texts[:2])) == ["pos", "neg"]
        assert model.predict_proba("great moving film").shape == (1, 2)  # one bare text
    board = result.leaderboard.set_index("model")
    assert (board.loc[["cnn", "lstm", "attn"], "accuracy"] >= 0.8).all()


def test_predict_and_evaluate_take_text_files(tmp_path, capsys):
    config = write_text_config(tmp_path, SMALL[:1])
    assert main(["train", str(config), "--model", "cnn", "--out", str(tmp_path / "run")]) == 0
    artifact = tmp_path / "run/models/cnn/artifact"
    texts = tmp_path / "new.txt"
    texts.write_text("great superb film\n\ndull boring mess\n")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(artifact), str(texts), "--output", str(out)]) == 0
    predictions = pd.read_csv(out)
    assert len(predictions) == 3 and predictions["prediction"].iloc[0] == "pos"
    capsys.readouterr()
    labelled = write_reviews(tmp_path / "more.csv", n=20, seed=5, empty=0)
    assert main(["evaluate", str(artifact), str(labelled)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_missing_text_column_lists_the_columns(tmp_path, capsys):
    config = write_text_config(tmp_path, SMALL[:1], text="reveiw")
    err = one_line_error(capsys, ["train", str(config), "--model", "cnn"])
    assert "no text column 'reveiw'; did you mean 'review'?" in err
    assert "columns: id, review, label" in err


def test_a_single_class_is_refused(tmp_path, capsys):
    config = write_text_config(tmp_path, SMALL[:1])
    frame = pd.read_csv(tmp_path / "reviews.csv")
    frame.assign(label="pos").to_csv(tmp_path / "reviews.csv", index=False)
    err = one_line_error(capsys, ["train", str(config), "--model", "cnn"])
    assert "target column 'label' has only one class ('pos')" in err


def test_models_refuse_the_wrong_kind_of_data(tmp_path, capsys, table_csv):
    config = write_text_config(tmp_path, [{"name": "lr", "type": "logistic_regression"}])
    err = one_line_error(capsys, ["train", str(config), "--model", "lr"])
    assert "needs tabular or image data" in err and "tfidf_logreg" in err
    raw = yaml.safe_load(config.read_text())
    raw["data"] = {"source": str(table_csv)}
    raw["models"] = SMALL[:1]
    config.write_text(yaml.safe_dump(raw))
    err = one_line_error(capsys, ["train", str(config), "--model", "cnn"])
    assert "type textcnn needs text data" in err


def test_pretrained_path_problems_name_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    config = write_text_config(
        tmp_path, [{"name": "b", "type": "pretrained", "path": str(missing)}]
    )
    assert str(missing) in one_line_error(capsys, ["train", str(config), "--model", "b"])
    (tmp_path / "not-a-model").mkdir()
    raw = yaml.safe_load(config.read_text())
    raw["models"][0]["path"] = str(tmp_path / "not-a-model")
    config.write_text(yaml.safe_dump(raw))
    err = one_line_error(capsys, ["train", str(config), "--model", "b"])
    assert "not-a-model" in err and "config.json" in err


def test_a_hub_id_while_offline_fails_fast(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    config = write_text_config(
        tmp_path, [{"name": "b", "type": "pretrained", "path": "someone/unknown-bert"}]
    )
    started = time.perf_counter()
    err = one_line_error(capsys, ["train", str(config), "--model", "b"])
    assert time.perf_counter() - started < 30  # no network timeouts and retries
    assert "someone/unknown-bert" in err and "HF_HUB_OFFLINE" in err


def test_max_length_beyond_the_pretrained_model(tmp_path, capsys, minilm_path):
    config = write_text_config(
        tmp_path,
        [{"name": "b", "type": "pretrained", "path": str(minilm_path), "text": {}}],
    )
    raw = yaml.safe_load(config.read_text())
    raw["text"]["max_length"] = 1024
    config.write_text(yaml.safe_dump(raw))
    err = one_line_error(capsys, ["train", str(config), "--model", "b"])
    assert "text.max_length" in err and "1024" in err and "512" in err


SMS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sms_spam" / "SMSSpamCollection"


@pytest.mark.slow
@pytest.mark.skipif(not SMS.is_file(), reason="needs ../shared/data/sms_spam")
def test_class_weights_raise_the_recall_of_rare_spam(tmp_path):
    """The SMS Spam Collection (13% spam, a headerless suffix-less TSV): balancing the classes
    catches more spam with the same model."""
    from ladder.config import validate_config
    from ladder.runner.ladder import train_model

    recall = {}
    for balance in ("none", "class_weight"):
        raw = {
            "name": "sms",
            "data": {
                "source": str(SMS),
                "format": "tsv",
                "columns": ["label", "text"],
                "text": "text",
                "balance": balance,
            },
            "models": [{"name": "m", "type": "tfidf_logreg", "C": 0.5}],
        }
        result = train_model(validate_config(raw), "m", tmp_path / balance)
        matrix = np.asarray(result.metrics["confusion_matrix"])  # rows: ham, spam
        recall[balance] = matrix[1, 1] / matrix[1].sum()
    assert recall["class_weight"] > recall["none"] + 0.03, recall
