"""A distilled text student's token embeddings taken from its pretrained-encoder teacher.

A TextCNN trained from random vectors knows nothing of the words its training texts lack; the
teacher does. Each token of the teacher's vocabulary is passed through the fine-tuned teacher on
its own (with the tokenizer's special tokens around it, e.g. `[CLS] token [SEP]`), and the mean
of the teacher's last hidden states is that token's vector: a static embedding that carries
what the teacher learnt, sentiment included (the approach of Model2Vec, and of Bommasani et
al., 2020). The vectors are reduced by PCA to the student's embedding width and scaled to the
spread of the student's own initialisation; the student then tokenizes with the teacher's
tokenizer so that row i is token i.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.config import ModelEntry
from ladder.errors import LadderError
from ladder.export.artifact import neural_module, read_manifest
from ladder.models.sequence import EMBEDDING_INIT, PAD_ID

TOKENS_PER_BATCH = 1024  # single-token texts passed through the teacher at once


def on_teacher_tokens(student: ModelEntry, teacher: ModelEntry, base_dir: Path) -> ModelEntry:
    """The student entry, tokenizing with the teacher's tokenizer (a pretrained encoder's);
    `base_dir` resolves a relative tokenizer path as the teacher's training did."""
    path = teacher.text.tokenizer_path
    if teacher.text.tokenizer != "pretrained" or path is None:
        raise LadderError(
            f"compress distill: embeddings_from_teacher needs a pretrained-encoder teacher; "
            f"{teacher.name} is a {teacher.type} model"
        )
    if not Path(path).is_absolute() and (base_dir / path).exists():
        path = str(base_dir / path)
    text = student.text.model_copy(update={"tokenizer": "pretrained", "tokenizer_path": path})
    return student.model_copy(update={"text": text})


def teacher_token_vectors(artifact: Path) -> np.ndarray:
    """(vocab_size, hidden) float32: the teacher's mean last hidden state for each token of
    its vocabulary, passed on its own between the tokenizer's special tokens."""
    from tokenizers import Tokenizer

    manifest = read_manifest(artifact)
    module = neural_module(artifact / manifest["model_file"], manifest).eval()
    encoder = getattr(getattr(module, "model", None), "base_model", None)
    if not isinstance(encoder, nn.Module):
        raise LadderError(
            f"compress distill: embeddings_from_teacher needs a pretrained-encoder teacher; "
            f"{artifact} holds a {manifest.get('model_type')} model"
        )
    tokenizer = Tokenizer.from_file(str(artifact / "tokenizer.json"))
    specials = tokenizer.encode("").ids  # e.g. [CLS] [SEP]: the first goes before the token
    vocab_size = tokenizer.get_vocab_size()
    prefix, suffix = specials[:1], specials[1:]
    ids = torch.tensor([[*prefix, token, *suffix] for token in range(vocab_size)])
    vectors = []
    with torch.no_grad():
        for start in range(0, vocab_size, TOKENS_PER_BATCH):
            batch = ids[start : start + TOKENS_PER_BATCH]
            hidden = encoder(input_ids=batch, attention_mask=torch.ones_like(batch))[0]
            vectors.append(hidden.mean(dim=1))
    return torch.cat(vectors).numpy().astype(np.float32)


def reduce_vectors(vectors: np.ndarray, width: int) -> np.ndarray:
    """(n, width) float32: `vectors` centred and projected on their first `width` principal
    directions (fitted on every row but the pad row), scaled to the standard deviation of the
    students' uniform initialisation; the pad row is zero."""
    if width > vectors.shape[1]:
        raise LadderError(
            f"compress distill: the student's embedding_dim {width} is wider than the "
            f"teacher's hidden size {vectors.shape[1]}; use embedding_dim <= {vectors.shape[1]}"
        )
    data = vectors.astype(np.float64)
    centred = data - np.delete(data, PAD_ID, axis=0).mean(axis=0)
    _, _, directions = np.linalg.svd(np.delete(centred, PAD_ID, axis=0), full_matrices=False)
    reduced = centred @ directions[:width].T
    reduced *= (EMBEDDING_INIT / np.sqrt(3.0)) / reduced.std()  # uniform(-a, a) has std a/√3
    reduced[PAD_ID] = 0.0
    return reduced.astype(np.float32)


def embedding_initializer(vectors: np.ndarray, student: str) -> Callable[[nn.Module], None]:
    """A hook that overwrites a freshly built student's token embedding (its `embedding` or
    `embed` attribute) with `vectors` reduced to the embedding's width."""

    def initialise(module: nn.Module) -> None:
        embedding = getattr(module, "embedding", None) or getattr(module, "embed", None)
        if not isinstance(embedding, nn.Embedding):
            raise LadderError(
                f"compress distill: embeddings_from_teacher: a {student} student has no token "
                "embedding to initialise; use a textcnn, rnn or transformer student"
            )
        rows, width = embedding.weight.shape
        if rows != len(vectors):
            raise LadderError(
                f"compress distill: embeddings_from_teacher: the student's vocabulary has {rows} "
                f"tokens, the teacher's {len(vectors)}"
            )
        with torch.no_grad():
            embedding.weight.copy_(torch.from_numpy(reduce_vectors(vectors, width)))

    return initialise


__all__ = ["embedding_initializer", "on_teacher_tokens", "reduce_vectors", "teacher_token_vectors"]
