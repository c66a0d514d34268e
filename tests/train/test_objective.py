"""Trainer objectives: what the loop minimises and what its predictions mean, per task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ladder.config import TrainConfig
from ladder.train import Trainer
from ladder.train.objective import Classification, LanguageModeling, Regression


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("mse", lambda p, y: F.mse_loss(p, y)),
        ("mae", lambda p, y: F.l1_loss(p, y)),
        ("huber", lambda p, y: F.huber_loss(p, y, delta=0.5)),
    ],
)
def test_regression_losses_are_torchs_on_the_one_output(kind, reference):
    outputs, y = torch.randn(7, 1), torch.randn(7)
    objective = Regression(kind, huber_delta=0.5)
    assert torch.allclose(objective.loss(outputs, y, None), reference(outputs[:, 0], y))
    total, rows = objective.loss_sum(outputs, y, None)
    assert torch.allclose(total / rows, reference(outputs[:, 0], y)) and rows.item() == 7
    assert objective.predictions(outputs).shape == (7,)
    assert objective.target_dtype == np.float32


def test_classification_is_weighted_cross_entropy_and_softmax():
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    weight = torch.tensor([1.0, 2.0, 0.5])
    objective = Classification()
    assert torch.allclose(
        objective.loss(logits, y, weight), F.cross_entropy(logits, y, weight=weight)
    )
    total, denominator = objective.loss_sum(logits, y, weight)
    assert torch.allclose(total / denominator, F.cross_entropy(logits, y, weight=weight))
    assert torch.allclose(objective.predictions(logits).sum(dim=1), torch.ones(6))


def test_the_trainer_learns_a_line_with_the_regression_objective():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3)).astype(np.float32)
    y = (X @ np.array([1.5, -2.0, 0.5]) + 0.3).astype(np.float32)
    config = TrainConfig(epochs=60, batch_size=32, early_stopping=None, optimizer={"lr": 0.05})
    trainer = Trainer(torch.nn.Linear(3, 1), config, objective=Regression("mse"))
    history = trainer.fit(X, y, X[:64], y[:64])
    predicted = trainer.predict(X)
    assert predicted.shape == (256,)
    assert np.mean((predicted - y) ** 2) < 1e-3
    assert history[-1]["val_loss"] < 1e-3 and "val_accuracy" not in history[-1]


# ----------------------------------------------------------------------------- language modeling


def test_language_modeling_counts_only_unmasked_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    y = torch.tensor([[1, -100, 2], [-100, -100, 4]])
    objective = LanguageModeling()
    total, count = objective.loss_sum((logits, None), y)  # a language model's (logits, cache)
    counted = y != -100
    expected = F.cross_entropy(logits[counted], y[counted], reduction="sum")
    assert count.item() == 3 and torch.allclose(total, expected)
    assert torch.allclose(objective.loss(logits, y), expected / 3)
    assert objective.predictions(logits).shape == (2, 3, 5)


def test_language_modeling_with_every_target_masked_is_zero_without_nan():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = LanguageModeling().loss(logits, torch.full((2, 3), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
