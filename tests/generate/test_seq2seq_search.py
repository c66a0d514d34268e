"""Sequence-to-sequence decoding: greedy, beam search and sampling over a scripted numpy decoder
whose log-probabilities the tests choose (beam search against greedy and against an exhaustive
search, length penalty, repeated n-grams, eos, length limits, batching), then
TorchSeq2SeqDecoder on the real RNN (GRU, LSTM) and Transformer models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ladder.errors import DataError
from ladder.generate.seq2seq_search import (
    SearchParams,
    banned_tokens,
    beam_search,
    greedy,
    sample,
    search,
    stream_target,
)
from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder
from ladder.models.seq2seq_rnn import Seq2SeqRNNConfig, build_seq2seq_rnn
from ladder.models.seq2seq_transformer import Seq2SeqTransformerConfig, build_seq2seq_transformer

PAD, BOS, EOS, A, B, C = range(6)


class ScriptedDecoder:
    """A Seq2SeqDecoder whose log-probabilities are `script(source, prefix)`; a state is the
    (source, prefix) pair. Records the rows of every decode call."""

    def __init__(self, script, vocab_size=6, max_target_length=8):
        self.script, self.vocab_size = script, vocab_size
        self.bos_id, self.eos_id = BOS, EOS
        self.max_source_length, self.max_target_length = 16, max_target_length
        self.calls: list[int] = []

    def encode(self, sources):
        return [(tuple(s), ()) for s in sources]

    def start(self, encoded):
        return self._logits(encoded), list(encoded)

    def decode(self, tokens, states):
        self.calls.append(len(tokens))
        new = [
            (source, (*prefix, token))
            for token, (source, prefix) in zip(tokens, states, strict=True)
        ]
        return self._logits(new), new

    def _logits(self, states):
        return np.stack([self.script(s, p) for s, p in states]).astype(np.float32)


def table(rows, default=None):
    """A script from {prefix: {token: probability}}: the rest of the mass spread evenly."""

    def script(source, prefix):
        probs = rows.get(prefix, default or {})
        rest = (1 - sum(probs.values())) / (6 - len(probs))
        return np.log([probs.get(t, rest) for t in range(6)])

    return script


def random_script(scale=2.0, vocab_size=6):
    def script(source, prefix):
        rng = np.random.default_rng([*source, 1000, *prefix])
        return rng.normal(size=vocab_size) * scale

    return script


def logprob(decoder, source, target, ended=True):
    """The summed log-probability of `target` (+ eos when `ended`) given `source`."""
    total, prefix = 0.0, ()
    for token in [*target, EOS] if ended else target:
        row = decoder.script(tuple(source), prefix).astype(np.float64)
        total += row[token] - np.log(np.exp(row).sum())
        prefix = (*prefix, token)
    return total


def exhaustive(decoder, source, alpha, limit):
    """The best target by the beam score, over every target of at most `limit` tokens."""
    tokens = [t for t in range(decoder.vocab_size) if t != EOS]
    best, best_score = None, -math.inf
    for length in range(limit + 1):
        for target in itertools.product(tokens, repeat=length):
            ended = length < limit  # a target of `limit` tokens ends without eos
            total = logprob(decoder, source, target, ended)
            score = total / (length + ended) ** alpha
            if score > best_score:
                best, best_score = list(target), score
    return best


SOURCES = [[3, 4], [5], [4, 4, 3, 5], [3], [5, 3, 4]]


def test_beam_search_finds_a_likelier_target_than_greedy():
    decoder = ScriptedDecoder(
        table({(): {A: 0.5, B: 0.4, EOS: 0.05}, (A,): {EOS: 0.35}, (B,): {EOS: 0.9}})
    )
    assert greedy(decoder, [[3]]) == [[A]]  # A first, then eos is its likeliest next token
    assert beam_search(decoder, [[3]], beam_size=2, length_penalty=0) == [[B]]
    assert logprob(decoder, [3], [B]) > logprob(decoder, [3], [A])


def test_the_length_penalty_changes_the_choice():
    # [b]: log(0.5 * 0.6) = -1.20 over 2 tokens (eos counts); [a, c]: log(0.45 * 0.8 * 0.7)
    # = -1.38 over 3: the short one wins without the penalty, the long one with alpha = 1
    decoder = ScriptedDecoder(
        table(
            {
                (): {B: 0.5, A: 0.45},
                (B,): {EOS: 0.6},
                (A,): {C: 0.8},
                (A, C): {EOS: 0.7},
            }
        )
    )
    assert beam_search(decoder, [[3]], beam_size=3, length_penalty=0.0) == [[B]]
    assert beam_search(decoder, [[3]], beam_size=3, length_penalty=1.0) == [[A, C]]


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0, -0.5])
def test_a_wide_beam_finds_the_best_target_of_an_exhaustive_search(alpha):
    decoder = ScriptedDecoder(random_script(scale=1.5), max_target_length=4)
    found = beam_search(decoder, SOURCES, beam_size=5**4, length_penalty=alpha)
    assert found == [exhaustive(decoder, s, alpha, limit=4) for s in SOURCES]


def test_banned_tokens_complete_an_earlier_ngram():
    assert banned_tokens([3, 4, 5, 3, 4], 3) == [5]
    assert banned_tokens([3, 4, 3, 5, 3], 2) == [4, 5]
    assert sorted(banned_tokens([3, 4, 3], 1)) == [3, 3, 4]
    assert banned_tokens([3, 4], 3) == []
    assert banned_tokens([3, 3, 3], 0) == []


def test_no_repeat_ngram_size_steers_every_mode():
    always_a = ScriptedDecoder(lambda s, p: np.array([0.0, 0.0, -9.0, 3.0, 2.0, 1.0]))
    assert greedy(always_a, [[3]]) == [[A] * 8]
    assert greedy(always_a, [[3]], no_repeat_ngram_size=1) == [[A, B, C, PAD, BOS]]  # then eos
    assert greedy(always_a, [[3]], no_repeat_ngram_size=2) == [[A, A, B, A, C, A, PAD, A]]
    decoder = ScriptedDecoder(random_script(scale=3.0), max_target_length=12)
    for n in (1, 2, 3):
        for params in (
            SearchParams(no_repeat_ngram_size=n),
            SearchParams(no_repeat_ngram_size=n, beam_size=3),
            SearchParams(no_repeat_ngram_size=n, temperature=1.0, seed=0),
        ):
            for target in search(decoder, SOURCES, params):
                grams = [tuple(target[i : i + n]) for i in range(len(target) - n + 1)]
                assert len(grams) == len(set(grams)), (params, target)


@pytest.mark.parametrize(
    "params",
    [
        SearchParams(),
        SearchParams(beam_size=3, length_penalty=1.0, no_repeat_ngram_size=2),
        SearchParams(beam_size=2, length_penalty=0.0),
        SearchParams(temperature=1.0, top_k=4, seed=5),
        SearchParams(temperature=0.7, top_p=0.9, seed=1, no_repeat_ngram_size=2),
    ],
)
def test_a_batch_decodes_as_its_sources_one_at_a_time(params):
    batched = ScriptedDecoder(random_script(), max_target_length=10)
    targets = search(batched, SOURCES, params)
    singles = []
    for source, target in zip(SOURCES, targets, strict=True):
        single = ScriptedDecoder(random_script(), max_target_length=10)
        assert search(single, [source], params) == [target]
        singles.append(single.calls)
    # one decode call per step for every live hypothesis of every source
    assert len(batched.calls) == max(len(calls) for calls in singles)
    assert sum(batched.calls) == sum(sum(calls) for calls in singles)
    assert len({len(t) for t in targets}) > 1  # targets of different lengths ended in the batch


def test_eos_ends_a_target_and_never_shows():
    first_eos = ScriptedDecoder(table({(): {EOS: 0.9}}))
    for params in (SearchParams(), SearchParams(beam_size=3), SearchParams(temperature=0.1)):
        assert search(first_eos, [[3], [4, 5]], params) == [[], []]
    decoder = ScriptedDecoder(random_script(scale=3.0), max_target_length=20)
    targets = search(decoder, SOURCES, SearchParams(beam_size=2))
    assert all(EOS not in t for t in targets)
    assert any(len(t) < 20 for t in targets)


@pytest.mark.parametrize("params", [{}, {"beam_size": 3}, {"temperature": 1.0, "seed": 0}])
def test_targets_stop_at_the_asked_or_the_models_length(params):
    never_ends = ScriptedDecoder(
        lambda s, p: np.array([0.0, 0.0, -50.0, *np.random.default_rng(len(p)).normal(size=3)]),
        max_target_length=6,
    )
    lengths = [len(t) for t in search(never_ends, SOURCES[:2], SearchParams(**params))]
    assert lengths == [6, 6]
    asked = SearchParams(max_new_tokens=3, **params)
    assert [len(t) for t in search(never_ends, SOURCES[:2], asked)] == [3, 3]
    asked = SearchParams(max_new_tokens=50, **params)
    assert [len(t) for t in search(never_ends, SOURCES[:2], asked)] == [6, 6]


def test_sampling_follows_its_seed_and_filters():
    decoder = ScriptedDecoder(random_script(scale=0.5), max_target_length=10)

    def draw(**options):
        return sample(decoder, SOURCES, **options)

    assert draw(seed=3) == draw(seed=3)
    assert draw(seed=3) != draw(seed=4)
    assert draw(top_k=1, seed=4) == greedy(decoder, SOURCES)
    assert draw(temperature=0, seed=9) == greedy(decoder, SOURCES)


def test_stream_target_yields_the_search_target_token_by_token():
    decoder = ScriptedDecoder(random_script(scale=0.5), max_target_length=10)
    for params in (SearchParams(), SearchParams(temperature=1.0, top_p=0.8, seed=2)):
        stream = stream_target(decoder, SOURCES[3], params)
        first = next(stream)
        target = search(decoder, [SOURCES[3]], params)[0]
        assert [first, *stream] == target and len(target) > 2


def test_no_sources_give_no_targets():
    decoder = ScriptedDecoder(random_script())
    assert greedy(decoder, []) == []
    assert beam_search(decoder, [], beam_size=2) == []
    assert decoder.calls == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (SearchParams(beam_size=0), "beam_size must be >= 1, got 0"),
        (SearchParams(beam_size=2.5), "beam_size must be an integer >= 1"),
        (SearchParams(beam_size=2, temperature=1.0), "temperature must be 0 with beam_size > 1"),
        (SearchParams(length_penalty=float("nan")), "length_penalty must be a finite number"),
        (SearchParams(no_repeat_ngram_size=-1), "no_repeat_ngram_size must be an integer >= 0"),
        (SearchParams(max_new_tokens=0), "max_new_tokens must be >= 1"),
        (SearchParams(temperature=-1), "temperature must be a number >= 0"),
        (SearchParams(top_p=0.0, temperature=1), r"top_p must be in \(0, 1\]"),
    ],
)
def test_parameters_out_of_range_are_named(params, message):
    assert params.problems()
    with pytest.raises(ValueError, match=message):
        search(ScriptedDecoder(random_script()), SOURCES, params)


def test_the_search_functions_check_their_arguments():
    decoder = ScriptedDecoder(random_script())
    with pytest.raises(ValueError, match="beam_size must be >= 1, got -2"):
        beam_search(decoder, SOURCES, beam_size=-2)
    with pytest.raises(ValueError, match="top_k must be an integer >= 1"):
        sample(decoder, SOURCES, top_k=0)
    with pytest.raises(ValueError, match="stream_target decodes greedily or by sampling"):
        stream_target(decoder, SOURCES[0], SearchParams(beam_size=2))
    assert SearchParams().problems() == []


# --- TorchSeq2SeqDecoder on the real models ---------------------------------------------------

SOURCE_VOCAB, TARGET_VOCAB = 17, 19
LIMITS = {"max_source_length": 12, "max_target_length": 10}
TORCH_SOURCES = [[5, 9, 3, 12], [7], [16, 4, 4, 8, 10, 3, 11, 6, 13], [9, 9, 5], [3, 3]]


def lively(model, seed=0):
    """The model in eval mode with large random weight matrices (varied, source-dependent
    targets); the Transformer's tied head leans towards eos (targets of different lengths)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
        if hasattr(model, "decoder_norm"):
            eos = model.target_embedding.weight[model.eos_id]
            model.decoder_norm.bias += 2 * eos / eos.norm()
    return model.eval()


def build(kind):
    torch.manual_seed(0)  # the biases keep their initial values
    if kind == "transformer":
        config = Seq2SeqTransformerConfig(
            d_model=16,
            n_head=2,
            n_encoder_layers=1,
            n_decoder_layers=2,
            shared_vocab=False,
            **LIMITS,
        )
        return build_seq2seq_transformer(config, SOURCE_VOCAB, TARGET_VOCAB)
    cell, attention = kind.split("-")
    config = Seq2SeqRNNConfig(
        cell=cell, attention=attention, embedding_dim=8, hidden_size=12, num_layers=2, **LIMITS
    )
    return build_seq2seq_rnn(config, SOURCE_VOCAB, TARGET_VOCAB)


KINDS = ["transformer", "gru-bahdanau", "lstm-luong"]


@pytest.fixture(scope="module", params=KINDS)
def model(request):
    return lively(build(request.param))


def teacher_forced_argmax(model, source, target):
    """The argmax of `forward` at every decoder position of [bos] + target (as fits)."""
    fed = [model.bos_id, *target][: model.max_target_length]
    x = torch.zeros((1, 2, max(len(source), len(fed))), dtype=torch.long)
    x[0, 0, : len(source)] = torch.tensor(source, dtype=torch.long)
    x[0, 1, : len(fed)] = torch.tensor(fed)
    with torch.no_grad():
        return model(x)[0, : len(fed)].argmax(dim=-1).tolist()


def test_greedy_decoding_matches_the_teacher_forced_forward(model):
    decoder = TorchSeq2SeqDecoder(model)
    targets = greedy(decoder, TORCH_SOURCES)
    assert len({len(t) for t in targets}) > 1
    for source, target in zip(TORCH_SOURCES, targets, strict=True):
        want = [*target, model.eos_id][: model.max_target_length]
        assert teacher_forced_argmax(model, source, target) == want


@pytest.mark.parametrize("params", [SearchParams(), SearchParams(beam_size=3)])
def test_a_torch_batch_decodes_as_its_sources_one_at_a_time(model, params):
    decoder = TorchSeq2SeqDecoder(model)
    targets = search(decoder, TORCH_SOURCES, params)
    assert targets == [search(decoder, [s], params)[0] for s in TORCH_SOURCES]


def test_states_of_other_lengths_and_positions_share_a_step(model):
    decoder = TorchSeq2SeqDecoder(model)
    first, second = decoder.encode(TORCH_SOURCES[:2]), decoder.encode(TORCH_SOURCES[2:4])
    _, first = decoder.start(first)
    _, first = decoder.decode([5, 6], first)
    _, second = decoder.start(second)
    mixed, states = decoder.decode([7, 8, 9, 10], first + second)
    apart = np.concatenate([decoder.decode([7, 8], first)[0], decoder.decode([9, 10], second)[0]])
    np.testing.assert_allclose(mixed, apart, atol=1e-5)
    assert mixed.dtype == np.float32 and mixed.shape == (4, TARGET_VOCAB)
    assert [s.position for s in states] == [3, 3, 2, 2]
    # the old states stay valid: decoding them again gives the same logits
    np.testing.assert_allclose(decoder.decode([7, 8], first)[0], apart[:2], atol=1e-6)


def test_a_state_at_the_last_position_can_only_end(model):
    decoder = TorchSeq2SeqDecoder(model)
    _, states = decoder.start(decoder.encode([[5, 6]]))
    for _ in range(model.max_target_length - 1):
        _, states = decoder.decode([7], states)
    assert states[0].position == model.max_target_length
    logits, again = decoder.decode([7], states)
    assert logits[0, model.eos_id] == 0 and np.isneginf(np.delete(logits[0], model.eos_id)).all()
    assert again[0] is states[0]


def test_the_torch_decoder_keeps_the_training_mode_and_checks_sources():
    model = build("gru-none").train()
    decoder = TorchSeq2SeqDecoder(model)
    first = greedy(decoder, [[4, 5]])
    assert model.training
    assert greedy(decoder, [[4, 5]]) == first  # eval mode inside: no dropout
    with pytest.raises(DataError, match="source 1 has 13 tokens; the model reads at most 12"):
        decoder.encode([[4], [5] * 13])
    with pytest.raises(DataError, match="source 0 holds token id 17, outside"):
        decoder.encode([[4, 17]])
    with pytest.raises(ValueError, match="2 tokens for 1 states"):
        decoder.decode([4, 5], decoder.encode([[4]]))


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_source_decodes_alike_in_any_batch(kind):
    decoder = TorchSeq2SeqDecoder(lively(build(kind)))
    alone, _ = decoder.start(decoder.encode([[]]))
    beside_a_long_one, _ = decoder.start(decoder.encode([[], TORCH_SOURCES[2]]))
    np.testing.assert_allclose(beside_a_long_one[0], alone[0], atol=1e-5)
