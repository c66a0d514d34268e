"""Knowledge distillation (Hinton et al., 2015): a small student learns from the labels and from
a trained teacher's softened predictions.

The teacher (any model of the run with an artifact: a fine-tuned pretrained encoder, a forest,
...) predicts the raw training rows once; its log-probabilities serve as its logits (softmax
of log p / T is the tempered teacher distribution) and are cached beside the teacher, keyed by
the teacher's manifest checksum and the training split. The student is then trained like any
model of the ladder (its own preprocessing fitted on the training split, validation on the
val split with plain cross-entropy, early stopping as configured), with the distillation loss
on its training batches. The variant `<teacher>→<student>` is a normal artifact.

Text data may add a transfer set (Tang et al., 2019, "Distilling task-specific knowledge from
BERT into simple neural networks"): `augment` perturbed copies of each training text (some
words masked, some texts cut to a short n-gram), which only the teacher labels. The student
learns their soft labels; the hard-label term uses the real training rows only.

With `embeddings_from_teacher`, a text student of a pretrained-encoder teacher tokenizes like
the teacher and starts from the teacher's vectors of its tokens (`teacher_embeddings`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch  # noqa: TID253
from torch.nn import functional as F  # noqa: TID253

from ladder.compress.teacher_embeddings import (
    embedding_initializer,
    on_teacher_tokens,
    teacher_token_vectors,
)
from ladder.compress.variant import CompressContext, Variant
from ladder.config import DistillConfig, ModelEntry
from ladder.data import class_weights, fingerprint
from ladder.errors import LadderError
from ladder.export.artifact import load, read_manifest
from ladder.io import atomic_write, save_tensors
from ladder.registry import get_spec
from ladder.runner.rung import task_scaling, train_entry
from ladder.tasks import get_task

CACHE_DIR = Path("distill_cache")
CACHE_FILE = CACHE_DIR / "train_logits.safetensors"  # the teacher's logits of the training rows
# a class the teacher rules out (p = 0, e.g. a decision-tree leaf) gets this probability, so
# that its logit log(p) is finite
PROBABILITY_FLOOR = 1e-30
MASK_TOKEN = "[MASK]"  # a special token of ladder's tokenizers and of BERT-style ones
MASK_PROBABILITY = 0.15  # of each word of an augmented text
NGRAM_PROBABILITY = 0.25  # of cutting an augmented text to a random n-gram, n in 1..5
MAX_NGRAM = 5


def distill(method: DistillConfig, context: CompressContext) -> Variant:
    """Train the student of `method` on its teacher's cached logits and the labels; its
    artifact is written to the run folder as `<teacher>→<student>`."""
    entry = context.config.student(method)
    if not get_spec(entry.type).trains_with_trainer:
        raise LadderError(
            f"{entry.name}: a distill student must be a neural model, got {entry.type}"
        )
    copies = method.augment
    data, logits = transfer_set(context, method.teacher, copies)
    y = context.data.splits.train.y
    task = get_task(context.data.task)
    if task.name == "regression":  # the student regresses on the teacher's predictions too
        scaling = task_scaling(task, context.config, True, data.splits.train.y)
        assert scaling is not None
        teacher = scaling.forward(logits[:, 0])
        loss: Any = RegressionDistillationLoss(teacher, method.alpha, task.objective(entry.train))
    else:
        weights = None
        if context.config.data.balance == "class_weight":
            weights = class_weights(y, len(context.data.labels))
        loss = DistillationLoss(logits, method.alpha, method.temperature, weights, labelled=len(y))
    info = _compression(method, copies)
    init = None
    if method.embeddings_from_teacher:
        entry, init = _on_teacher_embeddings(context, method.teacher, entry)
    result = train_entry(
        context.config, entry, data, context.run_dir, loss=loss, compression=info, init=init
    )
    assert result is not None  # only torchrun workers other than rank 0 get None
    return Variant(
        entry.name,
        method.teacher,
        entry.type,
        params=result.metrics.get("params"),
        train_seconds=round(result.train_seconds, 3),
        details=_details(context, method.teacher, result.metrics.get("params"), len(logits)),
        history=result.history,
    )


def _on_teacher_embeddings(
    context: CompressContext, teacher: str, student: ModelEntry
) -> tuple[ModelEntry, Any]:
    """The student on the teacher's tokenizer, and the hook that initialises its embeddings
    from the teacher's token vectors."""
    if context.data.splits.train.kind != "text":
        raise LadderError(
            f"compress distill: embeddings_from_teacher needs text data; "
            f"{context.data.source} is {context.data.splits.train.kind} data"
        )
    student = on_teacher_tokens(student, context.entries[teacher], context.config.base_dir)
    vectors = teacher_token_vectors(context.artifact(teacher))
    return student, embedding_initializer(vectors, student.type)


def _compression(method: DistillConfig, copies: int) -> dict[str, Any]:
    """The manifest's "compression" entry of the variant."""
    info: dict[str, Any] = {
        "method": "distill",
        "teacher": method.teacher,
        "alpha": method.alpha,
        "temperature": method.temperature,
        "variant_of": method.teacher,
    }
    if copies:
        info["augment"] = copies
    if method.embeddings_from_teacher:
        info["embeddings_from_teacher"] = True
    return info


def _details(
    context: CompressContext, teacher: str, params: int | None, rows: int
) -> dict[str, Any]:
    """What the variant's metrics.json adds: the teacher's size and the transfer set's rows."""
    metrics = json.loads((context.model_dir(teacher) / "metrics.json").read_text())
    teacher_params = metrics.get("params")
    details: dict[str, Any] = {"teacher_params": teacher_params, "transfer_rows": rows}
    if teacher_params and params:
        details["params_reduction"] = teacher_params / params
    return details


# ----------------------------------------------------------------------------- the loss


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || p_student).

    p = softmax(logits / T) for both models; the KL divergence is summed over classes and
    averaged over rows: mean_i sum_c p_t[i, c] * (log p_t[i, c] - log p_s[i, c]). T^2 keeps
    the soft term's gradients on the scale of the hard one's as T changes. The cross-entropy
    uses the plain (T = 1) logits, weighted by `class_weights` when given, over the rows with
    a label (a negative label marks a row only the teacher labelled). alpha = 1 is plain
    cross-entropy (the soft term is not even computed), alpha = 0 the soft term alone.
    """
    if alpha == 1.0:
        return _hard_loss(student_logits, labels, class_weights)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    soft = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    soft = soft * temperature**2
    if alpha == 0.0:
        return soft
    return alpha * _hard_loss(student_logits, labels, class_weights) + (1 - alpha) * soft


def _hard_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy over the rows with a label (>= 0); 0 for a batch without any."""
    known = labels >= 0
    if bool(known.all()):
        return F.cross_entropy(logits, labels, weight=class_weights)
    if not bool(known.any()):
        return logits.sum() * 0.0  # keeps the graph (and the dtype) of a real loss
    return F.cross_entropy(logits[known], labels[known], weight=class_weights)


class DistillationLoss:
    """The trainer's loss hook: `distillation_loss` with the teacher's logits of the batch's
    training rows. Rows from `labelled` on (a transfer set's) count for the soft term only."""

    def __init__(
        self,
        teacher_logits: np.ndarray,
        alpha: float,
        temperature: float,
        class_weights: np.ndarray | None = None,
        labelled: int | None = None,
    ) -> None:
        self.teacher = torch.as_tensor(np.asarray(teacher_logits, dtype=np.float32))
        self.alpha, self.temperature = alpha, temperature
        self.weights = None if class_weights is None else torch.as_tensor(class_weights)
        self.labelled = len(self.teacher) if labelled is None else labelled

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> Any:
        """The loss of a batch whose rows are `rows` of the training data."""
        if self.teacher.device != logits.device:  # moved once, to where training happens
            self.teacher = self.teacher.to(logits.device)
            self.weights = None if self.weights is None else self.weights.to(logits.device)
        rows = rows.to(logits.device)
        if self.labelled < len(self.teacher):
            labels = labels.masked_fill(rows >= self.labelled, -1)
        return distillation_loss(
            logits, self.teacher[rows], labels, self.alpha, self.temperature, self.weights
        )


class RegressionDistillationLoss:
    """The trainer's loss hook for a regression student: alpha x its loss against the targets
    plus (1 - alpha) x the same loss against the teacher's predictions of the batch's rows
    (both in the student's standardised target space)."""

    def __init__(self, teacher: np.ndarray, alpha: float, objective: Any) -> None:
        self.teacher = torch.as_tensor(np.asarray(teacher, dtype=np.float32))
        self.alpha, self.objective = alpha, objective

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> Any:
        """The batch's distillation loss."""
        if self.teacher.device != outputs.device:
            self.teacher = self.teacher.to(outputs.device)
        soft = self.objective.loss(outputs, self.teacher[rows.to(outputs.device)], None)
        return self.alpha * self.objective.loss(outputs, targets, None) + (1 - self.alpha) * soft


# ----------------------------------------------------------------------------- the transfer set


def transfer_set(context: CompressContext, teacher: str, copies: int = 0) -> tuple[Any, np.ndarray]:
    """The data the student trains on (the run's, with `copies` perturbed copies of each
    training text appended to the training split) and the teacher's logits of its training
    rows. Appended rows carry the teacher's most probable class as their `y`."""
    logits = [teacher_logits(context, teacher)]
    if copies == 0:
        return context.data, logits[0]
    train = context.data.splits.train
    if train.kind != "text":
        raise LadderError(
            f"compress distill: augment makes perturbed copies of texts, but "
            f"{context.data.source} is {train.kind} data; use augment: 0"
        )
    texts = [train.X]
    for copy in range(1, copies + 1):  # each copy cached on its own: more copies reuse them
        texts.append(augment_texts(train.X, context.config.seed, copy))
        logits.append(teacher_logits(context, teacher, texts[-1], f"augmented{copy}"))
    extra = np.concatenate(logits[1:])
    # the teacher's answer: its most probable class, or (regression) its predicted value
    answers = extra[:, 0] if context.data.task == "regression" else extra.argmax(axis=1)
    augmented = replace(train, X=np.concatenate(texts), y=np.concatenate([train.y, answers]))
    data = replace(context.data, splits=replace(context.data.splits, train=augmented))
    return data, np.concatenate(logits)


def augment_texts(texts: np.ndarray, seed: int, copy: int) -> np.ndarray:
    """One perturbed version of each text (copy number `copy` of the transfer set): each word
    is replaced by [MASK] with probability 0.15, then with probability 0.25 the text is cut to
    a random run of 1 to 5 of its words. A 1-D object array of strings."""
    rng = np.random.default_rng([seed, copy])
    out = []
    for text in texts:
        words = str(text).split()
        masked = rng.random(len(words)) < MASK_PROBABILITY
        words = [MASK_TOKEN if m else w for w, m in zip(words, masked, strict=True)]
        if len(words) > 1 and rng.random() < NGRAM_PROBABILITY:
            n = int(rng.integers(1, MAX_NGRAM + 1))
            start = int(rng.integers(0, max(1, len(words) - n + 1)))
            words = words[start : start + n]
        out.append(" ".join(words))
    return np.array(out, dtype=object)


# ----------------------------------------------------------------------------- teacher logits


def teacher_logits(
    context: CompressContext, teacher: str, rows: Any = None, name: str = "train"
) -> np.ndarray:
    """The teacher's logits (log-probabilities, float32 (n_rows, n_classes)) of the raw
    training rows, or of other raw `rows` (augmented texts) cached under `name`; from the
    teacher's cache when neither the teacher nor the rows changed."""
    artifact = context.artifact(teacher)
    if not (artifact / "manifest.json").is_file():
        raise LadderError(
            f"compress distill: teacher {teacher} has no trained model in {context.run_dir} "
            "(no artifact); train it with ladder run"
        )
    manifest = read_manifest(artifact)
    if list(manifest["labels"]) != list(context.data.labels):
        raise LadderError(
            f"compress distill: teacher {teacher} predicts labels {manifest['labels']}, "
            f"the data has {context.data.labels}"
        )
    if rows is None:
        rows, key = context.data.splits.train.X, _training_key(context)
    else:
        key = {"rows_sha256": _texts_sha256(rows)}
    key = {"teacher_checksum": manifest["checksum"], **key}
    path = context.model_dir(teacher) / CACHE_DIR / f"{name}_logits.safetensors"
    cached = read_cached_logits(path, key)
    if cached is not None:
        return cached
    model = load(artifact)
    if model.task == "regression":  # the teacher's predicted values, one column
        logits = model.predict_outputs_raw(rows).astype(np.float32).reshape(-1, 1)
    else:
        prob = model.predict_proba_raw(rows)
        logits = np.log(np.maximum(prob, PROBABILITY_FLOOR)).astype(np.float32)
    write_cached_logits(path, logits, key)
    return logits


def _training_key(context: CompressContext) -> dict[str, str]:
    """What the training rows' logits depend on besides the teacher: those rows, in order
    (the fingerprint is order-free, the label sequence is not)."""
    train = context.data.splits.train
    labels = np.ascontiguousarray(
        train.y, dtype=np.float64 if train.task == "regression" else np.int64
    )
    return {
        "data_sha256": str(context.data.info["sha256"]),
        "train_sha256": fingerprint([train]),
        "train_labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
    }


def _texts_sha256(texts: np.ndarray) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(str(text).encode() + b"\0")
    return digest.hexdigest()


def read_cached_logits(path: Path, key: dict[str, str]) -> np.ndarray | None:
    """The logits saved at `path` under the same `key`, else None (missing, stale, unreadable)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            if (f.metadata() or {}) != key:
                return None
            return f.get_tensor("logits")
    except (SafetensorError, OSError, KeyError):
        return None  # a damaged cache is recomputed


def write_cached_logits(path: Path, logits: np.ndarray, key: dict[str, str]) -> None:
    """Save `logits` (safetensors, `key` as its metadata) atomically at `path`."""
    atomic_write(path, lambda tmp: save_tensors({"logits": logits}, tmp, metadata=key))


__all__ = [
    "DistillationLoss",
    "augment_texts",
    "distill",
    "distillation_loss",
    "teacher_logits",
    "transfer_set",
]
