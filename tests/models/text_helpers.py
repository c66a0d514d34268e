"""Shared pieces of the neural text model tests: a tiny learnable token task."""

from __future__ import annotations

import torch
from torch import nn

from ladder.models.sequence import PAD_ID

TOKEN = 5  # the token whose presence decides the class


def random_ids(row_lengths: list[int], vocab: int, seed: int = 0) -> torch.Tensor:
    """Random right-padded token ids (batch, max(row_lengths)), no pad id inside a text."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((len(row_lengths), max(row_lengths)), PAD_ID, dtype=torch.long)
    for row, n in enumerate(row_lengths):
        ids[row, :n] = torch.randint(1, vocab, (n,), generator=gen)
    return ids


def pad_more(ids: torch.Tensor, extra: int) -> torch.Tensor:
    """The same batch with `extra` more pad columns on the right."""
    return torch.cat([ids, torch.full((ids.size(0), extra), PAD_ID, dtype=ids.dtype)], dim=1)


def token_task(n: int = 128, seq: int = 10, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (n, seq) of random lengths; class 1 rows hold TOKEN at a real position."""
    ids = torch.randint(TOKEN + 1, vocab, (n, seq))
    lens = torch.randint(2, seq + 1, (n,))
    ids[torch.arange(seq) >= lens.unsqueeze(1)] = PAD_ID
    labels = torch.arange(n) % 2
    where = (torch.rand(n) * lens).long()  # a random real position of each row
    ids[labels == 1, where[labels == 1]] = TOKEN
    return ids, labels


def training_accuracy(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy on the training rows after 40 full-batch Adam steps (lr 1e-2)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(ids).argmax(dim=1) == labels).float().mean().item()
