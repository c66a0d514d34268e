"""Seq2seq scores: equal to sacreBLEU's corpus BLEU and chrF, ROUGE and exact match by hand,
bootstrap intervals from per-sentence statistics, and sacreBLEU's paired bootstrap test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu
from sacrebleu.significance import PairedTest

from ladder.evaluate.seq2seq import (
    SEQ2SEQ_METRICS,
    bootstrap_ci,
    corpus_scores,
    paired_bootstrap_p,
    score_from_sums,
    sentence_statistics,
    signatures,
)

REFERENCES = [
    "The cat sat on the mat today.",
    "A dog barked at the mailman.",
    "It is raining in Paris again.",
    "We ate bread and cheese for lunch.",
    "The train left the station early.",
    "She reads a book every night.",
    "My brother plays the guitar well.",
    "They built a house near the river.",
] * 5
GOOD = [
    "The cat sat on a mat today.",
    "A dog barked at the postman.",
    "It rains in Paris again.",
    "We ate bread and cheese at lunch.",
    "The train left the station early.",
    "She reads a book each night.",
    "My brother plays guitar well.",
    "They built a house by the river.",
] * 5
CLOSE = list(GOOD)
for _i in (0, 9, 17, 26, 33):
    CLOSE[_i] = CLOSE[_i].replace("the", "a")
BAD = ["Nothing to see here.", "Completely wrong words", "", "a b c d"] * 10


def test_bleu_and_chrf_equal_sacrebleus_corpus_scores():
    for hypotheses in (GOOD, CLOSE, BAD):
        scores = corpus_scores(hypotheses, REFERENCES, ("bleu", "chrf"))
        assert scores["bleu"] == pytest.approx(
            sacrebleu.corpus_bleu(hypotheses, [REFERENCES]).score, abs=1e-9
        )
        assert scores["chrf"] == pytest.approx(
            sacrebleu.corpus_chrf(hypotheses, [REFERENCES]).score, abs=1e-9
        )


def test_every_metric_is_on_a_0_to_100_scale_and_perfect_output_scores_100():
    perfect = corpus_scores(REFERENCES, REFERENCES)
    assert list(perfect) == list(SEQ2SEQ_METRICS)
    assert all(value == pytest.approx(100.0) for value in perfect.values())
    worst = corpus_scores(BAD, REFERENCES)
    assert all(0.0 <= value < 20.0 for value in worst.values())


def test_rouge_and_exact_match_by_hand():
    hyps = ["the cat sat", "un café au lait", "Exact  "]
    refs = ["the cat sat down", "un thé au lait", "Exact"]
    scores = corpus_scores(hyps, refs, ("rouge1", "rouge2", "rougeL", "exact_match"))
    # rouge1 F1: 3/3 & 3/4 -> 6/7; 3/4 & 3/4 -> 3/4 (é is a letter: "café" is one token); 1
    assert scores["rouge1"] == pytest.approx(100 * (6 / 7 + 3 / 4 + 1) / 3)
    # rouge2 F1: 2/2 & 2/3 -> 4/5; "au lait" of 3 and 3 -> 1/3; no bigram in "exact" -> 0
    assert scores["rouge2"] == pytest.approx(100 * (4 / 5 + 1 / 3 + 0) / 3)
    assert scores["rougeL"] == pytest.approx(scores["rouge1"])  # the matches are in order
    assert scores["exact_match"] == pytest.approx(100 / 3)  # surrounding spaces do not count


def test_signatures_name_sacrebleus_settings_and_the_rouge_settings():
    sig = signatures()
    assert sig["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert sig["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")
    assert "stem:no" in sig["rouge"] and sig["rouge"].startswith("rouge-score:")
    assert set(sig) == {"bleu", "chrf", "rouge", "exact_match"}


@pytest.mark.parametrize("metric", SEQ2SEQ_METRICS)
def test_summed_sentence_statistics_give_the_corpus_score(metric):
    stats = sentence_statistics(metric, CLOSE, REFERENCES)
    assert stats.shape[0] == len(REFERENCES)
    score = score_from_sums(metric, len(REFERENCES))(stats.sum(axis=0))
    assert score == pytest.approx(corpus_scores(CLOSE, REFERENCES, [metric])[metric])


@pytest.mark.parametrize("metric", SEQ2SEQ_METRICS)
def test_the_interval_contains_the_score_and_the_seed_fixes_it(metric):
    score = corpus_scores(CLOSE, REFERENCES, [metric])[metric]
    low, high = bootstrap_ci(metric, CLOSE, REFERENCES, n_resamples=300, seed=0)
    assert low <= score <= high and low < high
    assert bootstrap_ci(metric, CLOSE, REFERENCES, 300, 0) == (low, high)


def test_the_bleu_interval_is_the_percentiles_of_rescored_resamples():
    """Rescoring each resampled test set with sacreBLEU gives the very same interval."""
    rng = np.random.default_rng(5)
    rows = rng.choice(len(REFERENCES), size=(50, len(REFERENCES)), replace=True)
    scores = [
        sacrebleu.corpus_bleu([CLOSE[i] for i in r], [[REFERENCES[i] for i in r]]).score
        for r in rows
    ]
    expected = (np.quantile(scores, 0.025), np.quantile(scores, 0.975))
    assert bootstrap_ci("bleu", CLOSE, REFERENCES, 50, 5) == pytest.approx(expected, abs=1e-9)


def test_identical_systems_give_p_one():
    for metric in SEQ2SEQ_METRICS:
        assert paired_bootstrap_p(metric, REFERENCES, GOOD, list(GOOD), 200, 0) == 1.0


@pytest.mark.parametrize("metric", SEQ2SEQ_METRICS)
def test_clearly_different_systems_give_a_small_p(metric):
    p = paired_bootstrap_p(metric, REFERENCES, REFERENCES, BAD, n_resamples=500, seed=0)
    assert p == pytest.approx(1 / 501)


@pytest.mark.parametrize(("metric", "name"), [("bleu", "BLEU"), ("chrf", "chrF2")])
def test_p_equals_sacrebleus_paired_bootstrap(metric, name, monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    sacre = sacrebleu.BLEU() if metric == "bleu" else sacrebleu.CHRF()
    _, results = PairedTest(
        [("good", GOOD), ("close", CLOSE)], {name: sacre}, [REFERENCES], "bs", n_samples=1000
    )()
    expected = results[name][1].p_value
    assert 0.01 < expected < 0.5  # a case where the test is not at its floor
    assert paired_bootstrap_p(metric, REFERENCES, GOOD, CLOSE, 1000, 12345) == expected
    assert paired_bootstrap_p(metric, REFERENCES, CLOSE, GOOD, 1000, 12345) == expected


def test_no_resamples_give_nan():
    assert all(math.isnan(v) for v in bootstrap_ci("bleu", GOOD, REFERENCES, 0, 0))
    assert math.isnan(paired_bootstrap_p("bleu", REFERENCES, GOOD, CLOSE, 0, 0))


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match=r"unknown metric 'blue'; did you mean 'bleu'\?"):
        corpus_scores(GOOD, REFERENCES, ["blue"])
    with pytest.raises(ValueError, match=r"got 2 hypotheses and 1 references"):
        corpus_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"got 0 hypotheses"):
        corpus_scores([], [])
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        bootstrap_ci("bleu", GOOD, REFERENCES, 10, 0, level=1.0)
    with pytest.raises(ValueError, match=r"n_resamples must be >= 0"):
        paired_bootstrap_p("bleu", REFERENCES, GOOD, CLOSE, -1, 0)
    with pytest.raises(ValueError, match=r"best and other differ in length"):
        paired_bootstrap_p("bleu", REFERENCES, GOOD, CLOSE[:3], 10, 0)
