"""Interpolated Kneser-Ney n-gram model: normalised distributions, probabilities checked by hand,
held-out cross-entropy falling with the order, generation, and pickle-free persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from ladder.errors import ArtifactError
from ladder.models.ngram import KneserNey, NgramConfig, estimate_discount

# 0 1 0 1 2 over a vocabulary of 4: token 3 never occurs
TINY = np.array([0, 1, 0, 1, 2])


def noisy_text(n_chars: int, seed: int) -> np.ndarray:
    """A sentence repeated, 10% of its characters replaced by random ones, as character ids."""
    rng = np.random.default_rng(seed)
    sentence = np.frombuffer(b"the quick brown fox jumps over the lazy dog. ", dtype=np.uint8)
    text = np.resize(sentence, n_chars).astype(np.int64)
    noise = rng.random(n_chars) < 0.1
    text[noise] = rng.integers(0, 128, size=int(noise.sum()))
    return text


def fitted(order: int, discount: float | None = None, ids=TINY, vocab: int = 4) -> KneserNey:
    return KneserNey(NgramConfig(order=order, discount=discount)).fit(ids, vocab)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [None, 0.3])
def test_distributions_sum_to_one_and_are_positive(order: int, discount: float | None) -> None:
    model = fitted(order, discount, ids=noisy_text(3000, 0), vocab=128)
    rng = np.random.default_rng(1)
    contexts = [[], [116], [116, 104], [116, 104, 101], [127, 127, 127], [0] * 10]
    contexts += [list(rng.integers(0, 128, size=rng.integers(0, 6))) for _ in range(50)]
    for context in contexts:
        probs = model.next_distribution(context)
        assert probs.shape == (128,)
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)
        assert probs.min() > 0


def test_bigram_probabilities_by_hand() -> None:
    model = fitted(2, 0.5)
    # Unigram continuation counts (distinct tokens seen before w): 0 <- {1}, 1 <- {0}, 2 <- {1},
    # 3 never: cc = 1, 1, 1, 0; total S = 3; N = 3 tokens with cc > 0.
    # P1(w) = max(cc - 0.5, 0) / 3 + 0.5 * 3 / 3 * 1/4  ->  0..2: 1/6 + 1/8 = 7/24; 3: 1/8 = 3/24
    p1 = np.array([7, 7, 7, 3]) / 24
    np.testing.assert_allclose(model.next_distribution([]), p1)
    # After 0: raw bigram counts (0,1): 2, so S = 2, N = 1.
    # P(1|0) = (2 - 0.5) / 2 + 0.5 * 1 / 2 * 7/24 = 3/4 + 7/96 = 79/96; others 1/4 * P1(w)
    np.testing.assert_allclose(model.next_distribution([0]), np.array([7, 79, 7, 3]) / 96)
    # After 1: (1,0): 1 and (1,2): 1, so S = 2, N = 2.
    # P(0|1) = (1 - 0.5) / 2 + 0.5 * 2 / 2 * 7/24 = 1/4 + 7/48 = 19/48 = P(2|1); P(1|1) = 7/48
    np.testing.assert_allclose(model.next_distribution([1]), np.array([19, 7, 19, 3]) / 48)
    # 2 is never followed and 3 never seen: the unigram level alone; the history is 1 token
    np.testing.assert_allclose(model.next_distribution([2]), p1)
    np.testing.assert_allclose(model.next_distribution([0, 1, 3]), p1)


def test_trigram_probabilities_by_hand() -> None:
    model = fitted(3, 0.5)
    # Trigrams (0,1,0): 1, (1,0,1): 1, (0,1,2): 1. Bigram continuation counts (distinct tokens
    # before the bigram): (0,1) <- {1} (its first occurrence has nothing before it), (1,0) <- {0},
    # (1,2) <- {0}: all 1. Unigram continuation counts as for the bigram model: 1, 1, 1, 0.
    # P2(.|1) from (1,0): 1, (1,2): 1: S = 2, N = 2 -> 19/48, 7/48, 19/48, 3/48 (as above)
    np.testing.assert_allclose(model.next_distribution([1]), np.array([19, 7, 19, 3]) / 48)
    # P2(.|0) from (0,1): 1 (a continuation count now, not the raw 2): S = 1, N = 1
    # P2(1|0) = (1 - 0.5) / 1 + 0.5 * 1 / 1 * 7/24 = 1/2 + 7/48 = 31/48; others 1/2 * P1(w)
    np.testing.assert_allclose(model.next_distribution([0]), np.array([7, 31, 7, 3]) / 48)
    # P3(.|0,1) from (0,1,0): 1, (0,1,2): 1: S = 2, N = 2
    # P3(0|0,1) = (1 - 0.5) / 2 + 0.5 * 2 / 2 * P2(0|1) = 1/4 + 19/96 = 43/96 = P3(2|0,1)
    # P3(1|0,1) = 1/2 * 7/48 = 7/96, P3(3|0,1) = 1/2 * 3/48 = 3/96
    np.testing.assert_allclose(model.next_distribution([0, 1]), np.array([43, 7, 43, 3]) / 96)
    # (1,0) is followed by 1 once: S = 1, N = 1; P3(1|1,0) = 1/2 + 1/2 * P2(1|0) = 1/2 + 31/96
    assert model.next_distribution([2, 1, 0])[1] == pytest.approx(79 / 96)


def test_estimated_discount_is_n1_over_n1_plus_2n2() -> None:
    model = fitted(1, None, ids=np.array([0, 0, 1, 2]), vocab=3)
    # counts 2, 1, 1: n1 = 2, n2 = 1 -> D = 2 / (2 + 2) = 1/2
    assert model.discounts_ == (0.5,)
    # P(0) = (2 - 1/2) / 4 + 1/2 * 3 / 4 * 1/3 = 3/8 + 1/8 = 1/2; P(1) = P(2) = 1/8 + 1/8
    np.testing.assert_allclose(model.next_distribution([]), [0.5, 0.25, 0.25])
    assert estimate_discount(np.array([1, 1, 1])) == 0.95  # n2 = 0: clipped below 1
    assert estimate_discount(np.array([5, 7])) == 0.5  # nothing to estimate from


def test_order_one_is_a_discounted_unigram_interpolated_with_uniform() -> None:
    ids = noisy_text(2000, 2)
    model = fitted(1, 0.4, ids=ids, vocab=128)
    counts = np.bincount(ids, minlength=128)
    n_types = int(np.sum(counts > 0))
    expected = (np.maximum(counts - 0.4, 0) + 0.4 * n_types / 128) / len(ids)
    for context in ([], [116], [1, 2, 3]):
        np.testing.assert_allclose(model.next_distribution(context), expected)


def test_held_out_cross_entropy_falls_with_the_order() -> None:
    train, held_out = noisy_text(20_000, 3), noisy_text(3000, 4)
    entropy = []
    for order in (1, 2, 3):
        nats, n = fitted(order, ids=train, vocab=128).log_likelihood(held_out)
        entropy.append(-nats / n)
    assert entropy[2] < entropy[1] < entropy[0]
    assert entropy[0] - entropy[2] > 1.0  # the sentence makes the next character predictable


@pytest.mark.parametrize("order", [1, 2, 4])
def test_log_likelihood_is_the_sum_of_next_distributions(order: int) -> None:
    model = fitted(order, ids=noisy_text(3000, 5), vocab=128)
    stream = np.concatenate([noisy_text(200, 6), [0, 127, 127, 5]])  # with unseen n-grams
    nats, n = model.log_likelihood(stream)
    one_by_one = sum(
        np.log(model.next_distribution(stream[:i])[token]) for i, token in enumerate(stream)
    )
    assert n == len(stream)
    assert nats == pytest.approx(one_by_one, rel=1e-12)
    assert model.log_likelihood([]) == (0.0, 0)
    assert model.log_likelihood([3])[0] == pytest.approx(np.log(model.next_distribution([])[3]))


def test_generation_is_seeded_and_greedy_continues_a_memorised_sequence() -> None:
    sequence = np.tile(np.arange(10), 30)  # 0 1 2 ... 9 0 1 2 ...
    model = fitted(3, ids=sequence, vocab=12)
    assert model.generate([3, 4], 8, temperature=0) == [5, 6, 7, 8, 9, 0, 1, 2]
    sampled = model.generate([7], 50, temperature=1.5, seed=7)
    assert sampled == model.generate([7], 50, temperature=1.5, seed=7)
    assert len(sampled) == 50 and all(0 <= t < 12 for t in sampled)
    assert model.generate([], 0) == []
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], 3, temperature=-1)


def test_save_load_round_trip(tmp_path) -> None:
    model = fitted(3, ids=noisy_text(3000, 7), vocab=128)
    names = model.save(tmp_path)
    assert sorted(names) == ["ngram.json", "ngram.npz"]
    with np.load(tmp_path / "ngram.npz", allow_pickle=False) as data:
        assert sum(len(data[f"counts_{k}"]) for k in (1, 2, 3)) == model.n_params()
    loaded = KneserNey.load(tmp_path)
    assert loaded.config == model.config and loaded.discounts_ == model.discounts_
    assert loaded.n_params() == model.n_params()
    for context in ([], [116], [116, 104], [1, 2, 3], [127, 127]):
        np.testing.assert_array_equal(
            loaded.next_distribution(context), model.next_distribution(context)
        )
    stream = noisy_text(500, 8)
    assert loaded.log_likelihood(stream) == model.log_likelihood(stream)


def _set_array(folder, name: str, change) -> None:
    with np.load(folder / "ngram.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays[name] = change(arrays[name].copy())
    np.savez(folder / "ngram.npz", **arrays)


def _drop_array(folder, name: str) -> None:
    with np.load(folder / "ngram.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files if key != name}
    np.savez(folder / "ngram.npz", **arrays)


def _set_header(folder, key: str, value) -> None:
    header = json.loads((folder / "ngram.json").read_text())
    header[key] = value
    (folder / "ngram.json").write_text(json.dumps(header))


def _add_one(a: np.ndarray) -> np.ndarray:
    a[0] += 1
    return a


TAMPERINGS = {
    "lower-order count": (lambda f: _set_array(f, "counts_1", _add_one), "continuation"),
    "top count zero": (lambda f: _set_array(f, "counts_3", lambda a: a * 0), "at least 1"),
    "keys unsorted": (lambda f: _set_array(f, "keys_2", lambda a: a[::-1]), "increasing"),
    "key outside trie": (lambda f: _set_array(f, "keys_3", lambda a: a + 10**9), "trie keys"),
    "length mismatch": (lambda f: _set_array(f, "counts_2", lambda a: a[:-1]), "length"),
    "float counts": (lambda f: _set_array(f, "counts_2", lambda a: a * 1.0), "integer"),
    "2-D array": (lambda f: _set_array(f, "keys_2", lambda a: a[:, None]), "1-D"),
    "missing array": (lambda f: _drop_array(f, "keys_2"), "are not"),
    "discount": (lambda f: _set_header(f, "discounts", [0.5, 1.5, 0.5]), "discounts"),
    "vocabulary": (lambda f: _set_header(f, "vocab_size", 50), "trie keys"),
    "order": (lambda f: _set_header(f, "config", {"order": 2}), "discounts"),
    "config": (lambda f: _set_header(f, "config", {"order": 0}), "invalid config"),
    "format": (lambda f: _set_header(f, "format", "pickle"), "header"),
    "garbage": (lambda f: (f / "ngram.npz").write_bytes(b"\x80\x04garbage"), "readable"),
    "no arrays": (lambda f: (f / "ngram.npz").unlink(), "readable"),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_tampered_files_are_refused(tmp_path, case: str) -> None:
    fitted(3, ids=noisy_text(2000, 9), vocab=128).save(tmp_path)
    tamper, message = TAMPERINGS[case]
    tamper(tmp_path)
    with pytest.raises(ArtifactError, match=message):
        KneserNey.load(tmp_path)


@pytest.mark.parametrize(
    "params", [{"order": 0}, {"discount": 1.5}, {"discount": 0}, {"smoothing": "kn"}]
)
def test_invalid_config_is_a_validation_error(params: dict) -> None:
    with pytest.raises(ValidationError):
        NgramConfig(**params)


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        KneserNey().next_distribution([1])
    with pytest.raises(ValueError, match="empty"):
        KneserNey().fit(np.array([], dtype=np.int64), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        KneserNey().fit(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="integers"):
        KneserNey().fit(np.array([0.5, 1.0]), 4)
    model = fitted(2)
    with pytest.raises(ValueError, match="context"):
        model.next_distribution([-1])
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        model.log_likelihood([0, 9])


def test_a_stream_shorter_than_the_order_still_fits(tmp_path) -> None:
    model = fitted(4, ids=np.array([2, 3]), vocab=4)
    assert model.next_distribution([2, 3, 1]).sum() == pytest.approx(1.0)
    model.save(tmp_path)
    assert KneserNey.load(tmp_path).log_likelihood([2, 3]) == model.log_likelihood([2, 3])
