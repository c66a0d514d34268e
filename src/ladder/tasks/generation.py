"""Generation (causal language modelling): a model of text that continues prompts. Ranked by
bits per byte on the test text, with a bootstrap interval over test segments and a paired
t-test on per-segment bits per byte; its "outputs" are the nats each model spends on each test
segment, so models with different tokenizers are compared on the same text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import TrainConfig
from ladder.evaluate.lm import bits_per_byte_ci, lm_metrics, paired_bits_p
from ladder.evaluate.plots import plot_learning_curves
from ladder.io import atomic_write_text

GENERATION_METRICS = ("bits_per_byte", "perplexity", "loss")

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "model",
    "type",
    "variant_of",
    "bits_per_byte",
    "bpb_ci_low",
    "bpb_ci_high",
    "bpb_delta",
    "perplexity",
    "loss",
    "tokenizer",
    "vocab_size",
    "params",
    "size_bytes",
    "train_seconds",
    "train_tokens_per_s",
    "latency_ms",
    "throughput_per_s",
    "ttest_p",
    "pareto",
    "status",
)


@dataclass(frozen=True)
class GenerationTask:
    """Text generation: next-token prediction, scored on the test text's bytes."""

    name: str = "generation"
    metric_names: tuple[str, ...] = GENERATION_METRICS
    default_metrics: tuple[str, ...] = GENERATION_METRICS
    default_primary: str = "bits_per_byte"
    lower_is_better: frozenset[str] = frozenset(GENERATION_METRICS)
    headline: tuple[str, ...] = (*GENERATION_METRICS, "val_bits_per_byte")
    leaderboard_columns: tuple[str, ...] = LEADERBOARD_COLUMNS
    paired_column: str = "ttest_p"
    delta_column: str = "bpb_delta"
    delta_metric: str = "bits_per_byte"
    prediction_columns: tuple[str, str] = ("bytes", "nats")

    def n_outputs(self, labels: list[Any]) -> int:
        """Not used: a language model's output size is its tokenizer's vocabulary."""
        raise TypeError("a language model's output size is its vocabulary size")

    def objective(self, train: TrainConfig) -> Any:
        """Next-token cross-entropy (positions of prompts masked out)."""
        raise NotImplementedError("MERGE-PENDING: LanguageModeling from train.objective")

    def predict(self, fitted: Any, features: Any) -> np.ndarray:
        """The nats the fitted model spends on each test segment (`features`: the segments'
        token stream, `ladder.runner.lm_data.TokenStream`)."""
        return fitted.segment_nats(features)

    def metrics(self, y_true: np.ndarray, outputs: np.ndarray, labels: list[Any]) -> dict[str, Any]:
        """Loss, perplexity and bits per byte from segment bytes (`y_true`) and segment nats
        (`outputs`); `labels` holds the number of predicted tokens."""
        return lm_metrics(float(np.sum(outputs)), int(labels[0]), int(np.sum(y_true)))

    def evaluate(
        self,
        y_true: np.ndarray,
        outputs: np.ndarray,
        labels: list[Any],
        model_dir: Path,
        history: list[dict[str, Any]] | None = None,
        radius: float | None = None,
    ) -> dict[str, Any]:
        """Test metrics, the learning curve (per step) and test_predictions.csv: one row per
        test segment with its bytes and the model's nats on it."""
        n_bytes = np.asarray(y_true, dtype=np.int64)
        nats = np.asarray(outputs, dtype=np.float64)
        frame = pd.DataFrame({"segment": np.arange(len(nats)), "bytes": n_bytes, "nats": nats})
        atomic_write_text(
            model_dir / "test_predictions.csv", frame.to_csv(index=False, float_format="%.10g")
        )
        if history:
            plots = model_dir / "plots"
            plots.mkdir(parents=True, exist_ok=True)
            plot_learning_curves(history, plots / "learning_curve.png", x="step")
        return self.metrics(n_bytes, nats, labels)

    def leaderboard_figures(
        self, metrics: dict[str, Any], predictions: pd.DataFrame, bootstrap: int, seed: int
    ) -> dict[str, Any]:
        """Bits per byte with its bootstrap interval over test segments, perplexity, loss,
        the tokenizer and the training throughput."""
        low, high = bits_per_byte_ci(
            predictions["nats"].to_numpy(), predictions["bytes"].to_numpy(), bootstrap, seed
        )
        keys = ("bits_per_byte", "perplexity", "loss", "tokenizer", "vocab_size")
        return {
            **{k: metrics.get(k) for k in keys},
            "bpb_ci_low": low,
            "bpb_ci_high": high,
            "train_tokens_per_s": metrics.get("train_tokens_per_s"),
        }

    def paired_p(self, truth: np.ndarray, best: np.ndarray, other: np.ndarray) -> float:
        """Paired t-test on per-segment bits per byte (`truth`: the segments' bytes; `best`,
        `other`: each model's nats per segment)."""
        p = paired_bits_p(truth, best, other)
        return 1.0 if math.isnan(p) else p


GENERATION = GenerationTask()
