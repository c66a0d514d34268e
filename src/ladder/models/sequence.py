"""Shared pieces of the neural text models: the padding id, padding masks and masked pooling.

Token ids arrive as int64 (batch, seq), right-padded with `PAD_ID`; every row holds at least
one real token (the tokenizers start each text with [CLS]).
"""

from __future__ import annotations

import torch  # noqa: TID253

from ladder.errors import LadderError

PAD_ID = 0  # the id of [PAD] in every tokenizer ladder trains
EMBEDDING_INIT = 0.25  # half-width of the uniform initial word vectors


def text_shape(input_shape: tuple[int, ...], model_type: str) -> tuple[int, int]:
    """(max_length, vocab_size) of a text model's input; LadderError for other data."""
    if len(input_shape) != 2:
        raise LadderError(
            f"{model_type} needs text data (token ids; input_shape (max_length, vocab_size)), "
            f"got input of shape {tuple(input_shape)}"
        )
    max_length, vocab_size = (int(s) for s in input_shape)
    return max_length, vocab_size


def padding_mask(ids: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """True at real tokens, False at padding: (batch, seq) bool."""
    return ids != pad_id


def lengths(ids: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """The number of real tokens of each row (batch,), at least 1."""
    return padding_mask(ids, pad_id).sum(dim=1).clamp(min=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x (batch, seq, dim) over the positions where mask (batch, seq) is True."""
    weights = mask.unsqueeze(-1).to(x.dtype)  # (batch, seq, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of x (batch, seq, dim) over the positions where mask (batch, seq) is True."""
    filled = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min)
    return filled.max(dim=1).values  # (batch, dim)


def init_embedding(embedding: torch.nn.Embedding) -> None:
    """Uniform in [-0.25, 0.25] as Kim (2014) initialises unseen words; the pad row stays zero."""
    # torch's default N(0, 1) is so large next to Adam's ~lr-sized steps that the vectors of
    # rare words barely move in a few epochs (rt-polarity, 4 epochs: 70% test, 77% with this)
    torch.nn.init.uniform_(embedding.weight, -EMBEDDING_INIT, EMBEDDING_INIT)
    with torch.no_grad():
        embedding.weight[PAD_ID].zero_()
