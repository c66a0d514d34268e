"""A distilled text student's embeddings taken from its pretrained-encoder teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import write_config
from torch import nn

from ladder.compress.teacher_embeddings import (
    embedding_initializer,
    on_teacher_tokens,
    reduce_vectors,
)
from ladder.config import load_config
from ladder.errors import LadderError
from ladder.models.sequence import EMBEDDING_INIT, PAD_ID
from ladder.models.textcnn import TextCNN, TextCNNConfig
from ladder.runner.ladder import run


def _vectors(rows: int = 40, hidden: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    scales = np.linspace(3.0, 0.1, hidden)  # distinct variances: a well-defined PCA
    return (rng.normal(size=(rows, hidden)) * scales + 5.0).astype(np.float32)


def test_reduced_vectors_keep_the_main_directions_at_the_students_scale():
    vectors = _vectors()
    reduced = reduce_vectors(vectors, 4)
    assert reduced.shape == (40, 4) and reduced.dtype == np.float32
    assert not reduced[PAD_ID].any()
    assert reduced.std() == pytest.approx(EMBEDDING_INIT / np.sqrt(3.0), rel=0.05)
    kept = np.delete(reduced, PAD_ID, axis=0)
    assert np.abs(kept.mean(axis=0)).max() < 1e-6  # centred
    variances = kept.var(axis=0)
    assert list(variances) == sorted(variances, reverse=True)  # principal directions first
    correlation = np.corrcoef(kept.T)
    np.testing.assert_allclose(correlation, np.eye(4), atol=1e-6)


def test_a_student_wider_than_the_teacher_is_one_clear_error():
    with pytest.raises(LadderError, match=r"embedding_dim 16 is wider than .* hidden size 12"):
        reduce_vectors(_vectors(), 16)


def test_the_initializer_overwrites_the_token_embedding():
    vectors = _vectors()
    student = TextCNN(TextCNNConfig(embedding_dim=4, filters=2), vocab_size=40, n_classes=2)
    embedding_initializer(vectors, "textcnn")(student)
    np.testing.assert_array_equal(
        student.embedding.weight.detach().numpy(), reduce_vectors(vectors, 4)
    )


def test_students_the_teacher_vectors_do_not_fit_are_refused():
    vectors = _vectors()
    small = TextCNN(TextCNNConfig(embedding_dim=4, filters=2), vocab_size=30, n_classes=2)
    with pytest.raises(LadderError, match="vocabulary has 30 tokens, the teacher's 40"):
        embedding_initializer(vectors, "textcnn")(small)
    with pytest.raises(LadderError, match="a mlp student has no token embedding"):
        embedding_initializer(vectors, "mlp")(nn.Sequential(nn.Linear(3, 2)))


def _text_config(tmp_path: Path, minilm_path: Path, compress: list[dict]) -> Path:
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "superb", "fun"], "neg": ["dull", "awful", "boring"]}
    rows = [
        {
            "review": " ".join([*rng.choice(words[label], 2), "the", "film"]),
            "label": label,
        }
        for label in ["pos", "neg"] * 20
    ]
    source = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    teacher = {"name": "enc", "type": "pretrained", "path": str(minilm_path), "epochs": 1}
    config = write_config(
        tmp_path,
        str(source),
        [teacher, {"name": "words", "type": "tfidf_logreg"}],
        compress=compress,
        text={"max_length": 16},
        evaluate={"bootstrap": 20},
    )
    raw = yaml.safe_load(config.read_text())
    raw["data"]["text"] = "review"
    config.write_text(yaml.safe_dump(raw))
    return config


def test_only_a_pretrained_encoder_teacher_lends_its_tokenizer(tmp_path, minilm_path):
    config = load_config(_text_config(tmp_path, minilm_path, []))
    student = config.model("words").model_copy(update={"name": "s", "type": "textcnn"})
    on_teacher = on_teacher_tokens(student, config.model("enc"), config.base_dir)
    assert on_teacher.text.tokenizer == "pretrained"
    assert on_teacher.text.tokenizer_path == str(minilm_path)
    assert on_teacher.text.max_length == 16  # the student's other text settings stay
    with pytest.raises(LadderError, match="needs a pretrained-encoder teacher; words is a"):
        on_teacher_tokens(student, config.model("words"), config.base_dir)


@pytest.mark.slow
def test_a_student_starts_from_the_teachers_token_vectors(tmp_path, minilm_path):
    student = {"type": "textcnn", "embedding_dim": 8, "filters": 4}
    method = {"method": "distill", "teacher": "enc", "student": student, "alpha": 0.0}
    config = _text_config(
        tmp_path, minilm_path, [{**method, "embeddings_from_teacher": True, "epochs": 1}]
    )
    result = run(config, out=tmp_path / "run")
    board = result.leaderboard.set_index("model")
    assert board.loc["enc→textcnn", "status"] == "ok"
    vocab = json.loads((minilm_path / "tokenizer.json").read_text())["model"]["vocab"]
    # MiniLM's whole vocabulary (30,522 tokens x 8), not the few words of the training texts
    assert board.loc["enc→textcnn", "params"] > len(vocab) * 8
    artifact = tmp_path / "run/models/enc→textcnn/artifact"
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["compression"]["embeddings_from_teacher"] is True
    from safetensors.torch import load_file

    weights = load_file(str(artifact / manifest["model_file"]))
    embedding = weights["embedding.weight"]
    # the PCA scores of the teacher's vectors, at the uniform initialisation's spread but
    # not bounded like it
    assert embedding[1:].std().item() == pytest.approx(EMBEDDING_INIT / np.sqrt(3.0), rel=0.1)
    assert embedding[1:].abs().max().item() > EMBEDDING_INIT
