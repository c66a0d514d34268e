"""Scores of sequence-to-sequence outputs against one reference each, their bootstrap confidence
intervals and the paired bootstrap test between two systems.

Every metric is higher-is-better on a 0-100 scale:

- bleu, chrf: sacreBLEU's corpus BLEU and chrF with its default settings (`signatures()` gives
  the exact strings to report);
- rouge1, rouge2, rougeL: rouge-score F1 x 100 of each sentence, averaged over the sentences.
  No stemming (the Porter stemmer is English-only) and tokens are the lowercased runs of
  Unicode letters and digits: on ASCII text that is rouge-score's own tokenizer, which would
  drop every accented or non-Latin letter;
- exact_match: the percentage of outputs equal to their reference (surrounding whitespace
  stripped).

Each metric is computed from sufficient statistics per sentence (sacreBLEU's own: n-gram
matches and lengths; a per-sentence value for ROUGE and exact match), so a bootstrap resample
sums rows of statistics instead of rescoring text: exact, and fast. The paired bootstrap test
is sacreBLEU's (`--paired-bs`, after Koehn 2004): the same resampled sentences for both systems
and its p-value, `(1 + #{resamples whose centred |difference| > the observed one}) / (1 + n)`.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from importlib.metadata import version

import numpy as np
import sacrebleu  # noqa: TID253
from rouge_score import rouge_scorer  # noqa: TID253
from sacrebleu.metrics.base import Metric  # noqa: TID253

SEQ2SEQ_METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match")
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL")
MAX_BOOTSTRAP_CELLS = 10_000_000  # resampled sentence indices drawn per chunk, to bound memory

_WORD = re.compile(r"[^\W_]+")  # a run of Unicode letters and digits


class _UnicodeWords:
    """ROUGE tokens: lowercased runs of letters and digits in any script, no stemming."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())


def _sacrebleu_metric(name: str) -> Metric:
    """A fresh sacreBLEU metric object with the settings `corpus_bleu` / `corpus_chrf` use."""
    return sacrebleu.BLEU() if name == "bleu" else sacrebleu.CHRF()


def signatures() -> dict[str, str]:
    """What to report next to the scores: sacreBLEU's BLEU and chrF signatures (one reference
    per sentence), and the ROUGE and exact-match settings."""
    result = {}
    for name in ("bleu", "chrf"):
        metric = _sacrebleu_metric(name)
        metric._extract_corpus_statistics([""], [[""]])  # settles nrefs:1 in the signature
        result[name] = str(metric.get_signature())
    result["rouge"] = (
        f"rouge-score:{version('rouge-score')}|score:f1x100|mean-over-sentences|"
        "tok:lowercased-unicode-letters-and-digits|stem:no"
    )
    result["exact_match"] = "percent-of-sentences|strip:yes|case:mixed"
    return result


# ----------------------------------------------------------------------------- statistics


def sentence_statistics(
    metric: str, hypotheses: Sequence[str], references: Sequence[str]
) -> np.ndarray:
    """The sufficient statistics of `metric` for each sentence, (n_sentences, k) float64: rows
    summed over any sentences (repeats allowed) give their score (`score_from_sums`)."""
    hyps, refs = _checked(metric, hypotheses, references)
    if metric in ("bleu", "chrf"):
        stats = _sacrebleu_metric(metric)._extract_corpus_statistics(hyps, [refs])
        return np.asarray(stats, dtype=np.float64).reshape(len(hyps), -1)
    if metric == "exact_match":
        same = [h.strip() == r.strip() for h, r in zip(hyps, refs, strict=True)]
        return 100.0 * np.asarray(same, dtype=np.float64)[:, None]
    scorer = rouge_scorer.RougeScorer([metric], tokenizer=_UnicodeWords())
    f1 = [scorer.score(r, h)[metric].fmeasure for h, r in zip(hyps, refs, strict=True)]
    return 100.0 * np.asarray(f1, dtype=np.float64)[:, None]


def score_from_sums(metric: str, n_sentences: int) -> Callable[[np.ndarray], float]:
    """A function from the summed statistics (k,) of `n_sentences` sentences to their score."""
    if metric in ("bleu", "chrf"):
        scorer = _sacrebleu_metric(metric)
        return lambda sums: float(scorer._compute_score_from_stats(sums.tolist()).score)
    return lambda sums: float(sums[0] / n_sentences)


def corpus_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    metrics: Sequence[str] = SEQ2SEQ_METRICS,
) -> dict[str, float]:
    """Each of `metrics` (from SEQ2SEQ_METRICS) of the outputs against their references."""
    n = len(hypotheses)
    return {
        name: score_from_sums(name, n)(sentence_statistics(name, hypotheses, references).sum(0))
        for name in metrics
    }


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    metric: str,
    hypotheses: Sequence[str],
    references: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric`, resampling sentences with replacement;
    (nan, nan) with no resamples."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    stats = sentence_statistics(metric, hypotheses, references)
    if n_resamples == 0:
        return math.nan, math.nan
    (scores,) = _resampled_scores(metric, [stats], n_resamples, seed)
    tail = (1 - level) / 2
    return float(np.quantile(scores, tail)), float(np.quantile(scores, 1 - tail))


def paired_bootstrap_p(
    metric: str,
    references: Sequence[str],
    best: Sequence[str],
    other: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
) -> float:
    """p-value of sacreBLEU's paired bootstrap test: could the difference in `metric` between
    the outputs `best` and `other` be noise of the test sentences?

    Both systems are scored on the same `n_resamples` resamples of the sentences (drawn as
    sacreBLEU draws them from `numpy.random.default_rng(seed)`, so the same seed gives its
    p-value). Where no resample tells the systems apart (e.g. identical outputs) p is 1, not
    sacreBLEU's 1 / (n_resamples + 1). nan with no resamples.
    """
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    if len(best) != len(other):
        raise ValueError(f"best and other differ in length: {len(best)} and {len(other)}")
    stats = [sentence_statistics(metric, h, references) for h in (best, other)]
    if n_resamples == 0:
        return math.nan
    score = score_from_sums(metric, len(references))
    observed = abs(score(stats[0].sum(axis=0)) - score(stats[1].sum(axis=0)))
    scores_best, scores_other = _resampled_scores(metric, stats, n_resamples, seed)
    differences = np.abs(scores_other - scores_best)  # (n_resamples,)
    if not differences.any():
        return 1.0
    centred = differences - differences.mean()  # the differences as if the systems were equal
    return (int(np.sum(centred > observed)) + 1) / (n_resamples + 1)


def _resampled_scores(
    metric: str, stats: list[np.ndarray], n_resamples: int, seed: int
) -> list[np.ndarray]:
    """The score of each system (one statistics array each) on each of `n_resamples`
    resamples of the sentences, the same resamples for all systems: (n_resamples,) each."""
    n = len(stats[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_BOOTSTRAP_CELLS // n)
    score = score_from_sums(metric, n)
    scores: list[list[float]] = [[] for _ in stats]
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        rows = rng.choice(n, size=(size, n), replace=True)  # sacreBLEU's draw, chunk by chunk
        offsets = rows + n * np.arange(size)[:, None]
        counts = np.bincount(offsets.ravel(), minlength=size * n).reshape(size, n)
        for system, system_stats in enumerate(stats):
            sums = counts.astype(np.float64) @ system_stats  # (size, k): exact integer sums
            scores[system].extend(score(row) for row in sums)
    return [np.asarray(s, dtype=np.float64) for s in scores]


def _checked(
    metric: str, hypotheses: Sequence[str], references: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The texts as lists of str; ValueError for an unknown metric or mismatched lengths."""
    if metric not in SEQ2SEQ_METRICS:
        hint = difflib.get_close_matches(metric, SEQ2SEQ_METRICS, n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ValueError(
            f"unknown metric '{metric}'{did_you_mean} (valid: {', '.join(SEQ2SEQ_METRICS)})"
        )
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(
            "expected one hypothesis per reference and at least one of each, got "
            f"{len(hypotheses)} hypotheses and {len(references)} references"
        )
    return [str(h) for h in hypotheses], [str(r) for r in references]
