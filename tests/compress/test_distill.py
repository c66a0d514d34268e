"""Knowledge distillation: a student trained on a teacher's cached logits and the labels,
written as the variant `<teacher>→<student>` of the run and ranked beside its teacher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import make_table, write_config
from safetensors.numpy import load_file
from torch.nn import functional as F

import ladder
import ladder.export.artifact as artifact_module
from ladder.compress.distill import (
    CACHE_FILE,
    DistillationLoss,
    augment_texts,
    distill,
    distillation_loss,
    read_cached_logits,
    teacher_logits,
    transfer_set,
    write_cached_logits,
)
from ladder.compress.variant import CompressContext
from ladder.config import load_run_config
from ladder.errors import ConfigError, LadderError
from ladder.runner.ladder import run
from ladder.runner.prepare import prepare_data
from ladder.train import Trainer

MODELS = [
    {"name": "tree", "type": "decision_tree", "max_depth": 3},
    {"name": "small", "type": "mlp", "hidden": [8], "epochs": 10, "optimizer": {"lr": 0.02}},
]
STUDENT = {"type": "mlp", "hidden": [8], "optimizer": {"lr": 0.02}}
DISTILL = {"method": "distill", "teacher": "tree", "student": STUDENT, "alpha": 0.5, "epochs": 10}
VARIANT = "tree→mlp"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("distill")
    table = tmp / "animals.csv"
    make_table(n=150).to_csv(table, index=False)
    config = write_config(tmp, str(table), MODELS, compress=[DISTILL], evaluate={"bootstrap": 50})
    run(config, out=tmp / "run")
    return tmp / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def _context(run_dir: Path, overrides: list[str] | None = None) -> CompressContext:
    config = load_run_config(run_dir, overrides)
    entries = {e["name"]: config.model(e["name"]) for e in config.models}
    return CompressContext(config, run_dir, prepare_data(config), entries)


# ----------------------------------------------------------------------------- the loss


def test_alpha_one_is_plain_cross_entropy_and_alpha_zero_the_tempered_kl():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    labels = torch.tensor([0, 2, 1, 1, 0])
    hard = distillation_loss(student, teacher, labels, alpha=1.0, temperature=3.0)
    assert torch.equal(hard, F.cross_entropy(student, labels))

    t = 3.0
    p_teacher = torch.softmax(teacher / t, dim=1)
    p_student = torch.softmax(student / t, dim=1)
    by_hand = t**2 * (p_teacher * (p_teacher.log() - p_student.log())).sum(dim=1).mean()
    soft = distillation_loss(student, teacher, labels, alpha=0.0, temperature=t)
    assert soft.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert soft.item() > 0

    mixed = distillation_loss(student, teacher, labels, alpha=0.3, temperature=t)
    assert mixed.item() == pytest.approx(0.3 * hard.item() + 0.7 * by_hand.item(), rel=1e-5)
    same = distillation_loss(teacher, teacher, labels, alpha=0.0, temperature=t)
    assert same.item() == pytest.approx(0.0, abs=1e-6)  # the student agrees with its teacher


def test_gradients_flow_to_the_student_only_and_class_weights_apply():
    student = torch.randn(4, 2, requires_grad=True)
    teacher = torch.randn(4, 2, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 0])
    distillation_loss(student, teacher.detach(), labels, alpha=0.5, temperature=2.0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None

    weights = torch.tensor([1.0, 4.0])
    weighted = distillation_loss(student, teacher, labels, 1.0, 2.0, class_weights=weights)
    assert weighted.item() == pytest.approx(F.cross_entropy(student, labels, weight=weights).item())


def test_rows_only_the_teacher_labelled_count_for_the_soft_term_only():
    torch.manual_seed(1)
    student, teacher = torch.randn(6, 2), torch.randn(10, 2)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])  # rows 8 and 9: augmented, y = teacher's class
    rows = torch.tensor([0, 8, 3, 9, 1, 2])
    hook = DistillationLoss(teacher.numpy(), alpha=0.4, temperature=2.0, labelled=8)
    real = rows < 8
    hard = F.cross_entropy(student[real], labels[real])
    soft = distillation_loss(student, teacher[rows], labels, alpha=0.0, temperature=2.0)
    assert hook(student, labels, rows).item() == pytest.approx(
        (0.4 * hard + 0.6 * soft).item(), rel=1e-5
    )
    only_augmented = torch.tensor([8, 9, 8, 9, 8, 9])
    hard_only = DistillationLoss(teacher.numpy(), alpha=1.0, temperature=2.0, labelled=8)
    assert hard_only(student, labels, only_augmented).item() == 0.0


def test_augmented_texts_are_seeded_perturbations_of_the_training_texts():
    texts = np.array([f"word{i} " * 8 for i in range(200)], dtype=object)
    first = augment_texts(texts, seed=0, copy=1)
    assert first.shape == (200,) and first.dtype == object
    assert list(first) == list(augment_texts(texts, seed=0, copy=1))  # reproducible
    assert list(first) != list(augment_texts(texts, seed=0, copy=2))
    words = [text.split() for text in first]
    assert all(set(w) <= {f"word{i}", "[MASK]"} for i, w in enumerate(words))
    masked = sum(w.count("[MASK]") for w in words) / sum(len(w) for w in words)
    assert 0.08 < masked < 0.25  # each word with probability 0.15
    cut = sum(len(w) <= 5 for w in words) / len(words)
    assert 0.15 < cut < 0.35  # a short n-gram with probability 0.25


def test_the_trainer_hook_sees_every_training_row_with_its_teacher_logits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    teacher = np.stack([-X[:, 0], X[:, 0]], axis=1).astype(np.float32)
    hook = DistillationLoss(teacher, alpha=0.0, temperature=2.0)
    seen: list[torch.Tensor] = []

    def spy(logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows)
        assert torch.equal(labels, torch.as_tensor(y)[rows])  # rows index the training data
        return hook(logits, labels, rows)

    config = ladder.config.TrainConfig(epochs=2, batch_size=16, early_stopping=None)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    history = Trainer(module, config, loss=spy).fit(X, y, X[:10], y[:10])
    assert sorted(torch.cat(seen[:3]).tolist()) == list(range(40))  # epoch 1: 3 batches
    assert len(seen) == 6 and all(np.isfinite(h["train_loss"]) for h in history)


# ----------------------------------------------------------------------------- the variant


def test_the_distilled_student_is_ranked_as_a_variant_of_its_teacher(finished_run):
    board = pd.read_csv(finished_run / "leaderboard.csv").set_index("model")
    assert board.loc[VARIANT, "variant_of"] == "tree"
    assert board.loc[VARIANT, "status"] == "ok"
    assert board.loc[VARIANT, "accuracy_delta"] == pytest.approx(
        board.loc[VARIANT, "accuracy"] - board.loc["tree", "accuracy"]
    )
    assert board.loc[VARIANT, "accuracy"] >= 0.8  # a learnable table
    metrics = json.loads((finished_run / "models" / VARIANT / "metrics.json").read_text())
    assert metrics["model_type"] == "mlp" and metrics["teacher_params"] == 5  # the tree's nodes
    assert metrics["params_reduction"] == pytest.approx(
        metrics["teacher_params"] / metrics["params"]
    )
    assert metrics["transfer_rows"] == 90  # the training rows, no augmented texts
    assert metrics["compress"]["teacher"] == "tree"
    history = pd.read_csv(finished_run / "models" / VARIANT / "history.csv")
    assert len(history) == 10  # the method's epochs, not train.epochs


def test_the_variant_artifact_predicts_with_both_backends(finished_run):
    folder = finished_run / "models" / VARIANT / "artifact"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["compression"] == {
        "method": "distill",
        "teacher": "tree",
        "alpha": 0.5,
        "temperature": 4.0,
        "variant_of": "tree",
    }
    assert {"weights.safetensors", "model.onnx", "preprocess.json"} <= set(manifest["files"])
    table = make_table(n=30, seed=3)
    onnx, eager = ladder.load(folder), ladder.load(folder, backend="torch")
    assert onnx.backend == "onnxruntime"
    np.testing.assert_allclose(onnx.predict_proba(table), eager.predict_proba(table), atol=1e-4)
    assert (onnx.predict(table) == table["label"].to_numpy()).mean() >= 0.8


def test_teacher_logits_are_cached_and_reused(run_copy, monkeypatch):
    cache = run_copy / "models" / "tree" / CACHE_FILE
    assert cache.is_file()  # written by the run
    saved = load_file(str(cache))["logits"]
    assert saved.shape == (90, 3) and saved.dtype == np.float32  # 150 rows - test - val
    made = cache.stat().st_mtime_ns
    loaded: list[Path] = []
    real_load = artifact_module.load

    def spy(directory, backend=None):
        loaded.append(Path(directory))
        return real_load(directory, backend)

    monkeypatch.setattr(artifact_module, "load", spy)
    context = _context(run_copy, ["compress.0.alpha=0.2"])
    variant = distill(context.config.compress[0], context)
    assert loaded == []  # the teacher predicted nothing: its logits came from the cache
    assert cache.stat().st_mtime_ns == made
    manifest = json.loads((run_copy / "models" / VARIANT / "artifact/manifest.json").read_text())
    assert manifest["compression"]["alpha"] == 0.2 and variant.history


def test_a_stale_or_damaged_cache_is_recomputed(run_copy):
    context = _context(run_copy)
    cache = run_copy / "models" / "tree" / CACHE_FILE
    fresh = teacher_logits(context, "tree")
    write_cached_logits(cache, np.zeros_like(fresh), {"teacher_checksum": "old"})
    assert read_cached_logits(cache, {"teacher_checksum": "new"}) is None
    np.testing.assert_array_equal(teacher_logits(context, "tree"), fresh)
    cache.write_bytes(b"not safetensors")
    np.testing.assert_array_equal(teacher_logits(context, "tree"), fresh)
    assert not list(cache.parent.glob("*.tmp"))  # written atomically


def test_a_tree_teacher_ruling_classes_out_gives_finite_logits(run_copy):
    logits = teacher_logits(_context(run_copy), "tree")
    assert np.isfinite(logits).all() and logits.min() < -50  # p = 0 floored, not -inf
    prob = np.exp(logits)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-6)


def test_alpha_one_trains_exactly_the_label_only_student(run_copy):
    overrides = ["compress.0.alpha=1.0", "compress.0.student.name=small"]
    context = _context(run_copy, overrides)
    variant = distill(context.config.compress[0], context)
    assert variant.name == "tree→small" and variant.original == "tree"
    distilled = load_file(str(run_copy / "models/tree→small/artifact/weights.safetensors"))
    plain = load_file(str(run_copy / "models/small/artifact/weights.safetensors"))
    assert distilled.keys() == plain.keys()
    assert all(np.array_equal(distilled[k], plain[k]) for k in plain)


def test_augmenting_tabular_data_is_one_clear_error(run_copy):
    with pytest.raises(LadderError, match=r"augment makes perturbed copies of texts.*tabular"):
        transfer_set(_context(run_copy), "tree", copies=2)


def test_teacher_embeddings_for_tabular_data_are_one_clear_error(run_copy):
    context = _context(run_copy, ["compress.0.embeddings_from_teacher=true"])
    with pytest.raises(LadderError, match=r"embeddings_from_teacher needs text data.*tabular"):
        distill(context.config.compress[0], context)


def test_a_teacher_without_a_trained_model_is_one_clear_error(run_copy):
    context = _context(run_copy)
    shutil.rmtree(run_copy / "models" / "tree" / "artifact")
    with pytest.raises(LadderError, match=r"teacher tree has no trained model in .*train it"):
        distill(context.config.compress[0], context)


def test_bad_teachers_and_students_are_rejected_by_the_config(run_copy):
    with pytest.raises(ConfigError, match=r"compress\[0\].teacher: no model named 'tre'"):
        load_run_config(run_copy, ["compress.0.teacher=tre"])
    with pytest.raises(ConfigError, match="must be a neural model"):
        load_run_config(
            run_copy, ["compress.0.student={type: decision_tree}", "compress.0.epochs=null"]
        )


# ----------------------------------------------------------------------------- text


def _reviews(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "superb", "fun"], "neg": ["dull", "awful", "boring"]}
    rows = []
    for i in range(n):
        label = ("pos", "neg")[i % 2]
        review = [*rng.choice(words[label], 2), *rng.choice(["the", "film", "was", "a"], 3)]
        rows.append({"review": " ".join(rng.permutation(review)), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_text_student_learns_from_the_teacher_on_augmented_texts(tmp_path):
    student = {"type": "textcnn", "embedding_dim": 8, "filters": 4, "optimizer": {"lr": 0.02}}
    config = write_config(
        tmp_path,
        str(_reviews(tmp_path / "reviews.csv")),
        [{"name": "words", "type": "tfidf_logreg"}],
        compress=[
            {
                "method": "distill",
                "teacher": "words",
                "student": student,
                "alpha": 0.0,
                "augment": 2,
            }
        ],
        text={"tokenizer": "word", "max_length": 16},
        evaluate={"bootstrap": 20},
    )
    raw = yaml.safe_load(config.read_text())
    raw["data"]["text"] = "review"
    config.write_text(yaml.safe_dump(raw))
    result = run(config, out=tmp_path / "run")
    board = result.leaderboard.set_index("model")
    assert board.loc["words→textcnn", "status"] == "ok"
    model_dir = tmp_path / "run/models/words→textcnn"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["transfer_rows"] == 3 * 36  # the training rows and two augmented copies
    manifest = json.loads((model_dir / "artifact/manifest.json").read_text())
    assert manifest["compression"]["augment"] == 2
    cache = tmp_path / "run/models/words/distill_cache"
    assert sorted(p.name for p in cache.iterdir()) == [
        "augmented1_logits.safetensors",
        "augmented2_logits.safetensors",
        "train_logits.safetensors",
    ]
    texts = pd.DataFrame({"review": ["great fun film", "a dull awful film"]})
    onnx, eager = ladder.load(model_dir / "artifact"), ladder.load(model_dir / "artifact", "torch")
    np.testing.assert_allclose(onnx.predict_proba(texts), eager.predict_proba(texts), atol=1e-4)
