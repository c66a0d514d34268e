"""Shared pieces of the neural text model tests: a tiny learnable token task."""

from __future__ import annotations

import torch
from torch import nn

from ladder.models.sequence import PAD_ID

TOKEN = 5  # the token whose presence decides the class


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
