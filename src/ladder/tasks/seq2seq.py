"""Sequence to sequence (translation, summarization): a model that writes a target text for
each source text. Ranked by a corpus metric of its test outputs (BLEU by default; chrF,
ROUGE-1/2/L or exact match by `evaluate.primary`), with a 95% bootstrap interval over test
sentences and paired bootstrap resampling against the best model (as sacreBLEU does); its
"outputs" are the texts it wrote, one per test source."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import TrainConfig
from ladder.evaluate.plots import plot_learning_curves
from ladder.evaluate.seq2seq import (
    SEQ2SEQ_METRICS,
    bootstrap_ci,
    corpus_scores,
    paired_bootstrap_p,
)
from ladder.io import atomic_write_text
from ladder.train.objective import LanguageModeling

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "model",
    "type",
    "variant_of",
    *SEQ2SEQ_METRICS,
    "ci_low",
    "ci_high",
    "bleu_delta",
    "params",
    "size_bytes",
    "train_seconds",
    "train_tokens_per_s",
    "latency_ms",
    "throughput_per_s",
    "bootstrap_p",
    "pareto",
    "status",
)
PAIRED_RESAMPLES = 1000  # paired bootstrap resampling (sacreBLEU's default)


@dataclass(frozen=True)
class Seq2SeqTask:
    """Source text -> target text; `primary` is the metric the interval and the paired test
    are of (`evaluate.primary`)."""

    name: str = "seq2seq"
    metric_names: tuple[str, ...] = SEQ2SEQ_METRICS
    default_metrics: tuple[str, ...] = SEQ2SEQ_METRICS
    default_primary: str = "bleu"
    lower_is_better: frozenset[str] = frozenset()
    headline: tuple[str, ...] = SEQ2SEQ_METRICS
    leaderboard_columns: tuple[str, ...] = LEADERBOARD_COLUMNS
    paired_column: str = "bootstrap_p"
    delta_column: str = "bleu_delta"
    delta_metric: str = "bleu"
    prediction_columns: tuple[str, str] = ("reference", "hypothesis")
    primary: str = "bleu"

    def with_primary(self, primary: str | None) -> Seq2SeqTask:
        """The task whose interval and paired test are of `primary` (None: the default)."""
        return replace(self, primary=primary or self.default_primary)

    def n_outputs(self, labels: list[Any]) -> int:
        """Not used: a seq2seq model's output size is its target vocabulary."""
        raise TypeError("a seq2seq model's output size is its target vocabulary size")

    def objective(self, train: TrainConfig) -> LanguageModeling:
        """Next-target-token cross-entropy under teacher forcing (padding ignored)."""
        return LanguageModeling()

    def predict(self, fitted: Any, features: Any) -> np.ndarray:
        """The texts a fitted model writes for the source texts `features`."""
        return np.asarray(fitted.translate(list(features)), dtype=object)

    def metrics(self, y_true: np.ndarray, outputs: np.ndarray, labels: list[Any]) -> dict[str, Any]:
        """Every seq2seq metric of the outputs against the references (`labels`: unused)."""
        return corpus_scores(
            [str(h) for h in outputs], [str(r) for r in y_true], list(self.metric_names)
        )

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
        test pair with its source (`labels`: the test sources), reference and output."""
        frame = pd.DataFrame(
            {"source": list(labels), "reference": list(y_true), "hypothesis": list(outputs)}
        )
        atomic_write_text(model_dir / "test_predictions.csv", frame.to_csv(index=False))
        if history:
            plots = model_dir / "plots"
            plots.mkdir(parents=True, exist_ok=True)
            plot_learning_curves(history, plots / "learning_curve.png", x="step")
        return self.metrics(y_true, outputs, labels)

    def leaderboard_figures(
        self, metrics: dict[str, Any], predictions: pd.DataFrame, bootstrap: int, seed: int
    ) -> dict[str, Any]:
        """Every metric, the primary metric's bootstrap interval over test sentences and the
        training throughput."""
        references = _texts(predictions["reference"])
        hypotheses = _texts(predictions["hypothesis"])
        low, high = bootstrap_ci(self.primary, hypotheses, references, bootstrap, seed)
        return {
            **{k: metrics.get(k) for k in self.metric_names},
            "ci_low": low,
            "ci_high": high,
            "train_tokens_per_s": metrics.get("train_tokens_per_s"),
        }

    def paired_p(self, truth: np.ndarray, best: np.ndarray, other: np.ndarray) -> float:
        """Paired bootstrap resampling of the primary metric: `other`'s outputs against the
        best model's on the same resampled test sentences (`truth`: the references)."""
        p = paired_bootstrap_p(
            self.primary, _texts(truth), _texts(best), _texts(other), PAIRED_RESAMPLES, 0
        )
        return 1.0 if math.isnan(p) else p


def _texts(column: Any) -> list[str]:
    """Strings of a CSV column (an empty output is read back as NaN)."""
    return ["" if isinstance(v, float) and math.isnan(v) else str(v) for v in column]


SEQ2SEQ = Seq2SeqTask()
