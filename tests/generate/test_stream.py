"""Numpy decoding: the sampler, streaming ids from any Decoder, text chunks with stop
strings, and TextGenerator's prompt handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.data.lm_tokenizers import ByteBPETokenizer, CharTokenizer
from ladder.generate.decoders import NgramDecoder, TorchDecoder
from ladder.generate.generator import PromptTooLong, TextGenerator
from ladder.generate.sampling import generate_ids
from ladder.generate.stream import Sampler, SamplingParams, TextStream, stream_ids
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.models.ngram import KneserNey, NgramConfig

LOGITS = np.array([0.0, 3.0, 2.9, -1.0, 1.0], dtype=np.float32)


def test_greedy_takes_the_argmax_whatever_the_filters():
    params = SamplingParams(temperature=0, top_k=3, top_p=0.1)
    assert Sampler(params)(LOGITS) == 1


def test_top_k_and_a_tiny_top_p_restrict_the_draws():
    top2 = Sampler(SamplingParams(temperature=5.0, top_k=2, seed=0))
    assert {top2(LOGITS) for _ in range(200)} == {1, 2}
    nucleus = Sampler(SamplingParams(temperature=1.0, top_p=1e-6, seed=0))
    assert {nucleus(LOGITS) for _ in range(50)} == {1}


def test_a_seed_repeats_the_draws():
    def draws(seed):
        sampler = Sampler(SamplingParams(temperature=1.0, seed=seed))
        return [sampler(LOGITS) for _ in range(30)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (SamplingParams(max_new_tokens=0), "max_new_tokens must be >= 1"),
        (SamplingParams(temperature=-0.5), "temperature must be a number >= 0"),
        (SamplingParams(top_k=0), "top_k must be an integer >= 1"),
        (SamplingParams(top_p=0.0), r"top_p must be in \(0, 1\]"),
        (SamplingParams(top_p=1.5), r"top_p must be in \(0, 1\]"),
        (SamplingParams(stop=("",)), "stop must be a list of non-empty strings"),
    ],
)
def test_parameters_out_of_range_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        params.check()


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return build_gpt(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16), 23).eval()


def test_the_decoder_stream_equals_the_torch_loop_past_the_context(gpt):
    prompt = [1, 2, 3, 4, 5]
    ours = list(stream_ids(TorchDecoder(gpt), prompt, SamplingParams(40, temperature=0)))
    reference = list(generate_ids(gpt, prompt, 40, temperature=0))
    assert ours == reference  # 45 tokens: the 16-token context slides


def test_a_prompt_longer_than_the_context_keeps_its_last_tokens(gpt):
    long_prompt = [*range(20), 3, 4]
    params = SamplingParams(5, temperature=0)
    assert list(stream_ids(TorchDecoder(gpt), long_prompt, params)) == list(
        stream_ids(TorchDecoder(gpt), long_prompt[-16:], params)
    )


def test_the_ngram_decoder_follows_its_distribution():
    ids = np.tile(np.arange(6), 50)
    model = KneserNey(NgramConfig(order=3)).fit(ids, 6)
    assert list(stream_ids(NgramDecoder(model), [0, 1], SamplingParams(8, temperature=0))) == [
        2, 3, 4, 5, 0, 1, 2, 3,
    ]  # fmt: skip


def test_text_stream_stops_before_a_stop_string_split_over_tokens():
    tokenizer = CharTokenizer.train(["abcdef END"])
    stream = TextStream(tokenizer.decode, stop=("END",))
    chunks = [stream.push(int(i)) for i in tokenizer.encode("abc ENDdef")]
    assert "".join(chunks) == "abc "
    assert chunks[4] == "" and chunks[5] == ""  # "E", "EN" held back: they may become END
    assert stream.stopped and stream.flush() == ""


def test_text_stream_holds_back_half_a_utf8_character():
    tokenizer = ByteBPETokenizer.train(["plain ascii text only"], vocab_size=260)
    ids = tokenizer.encode("é!")  # é is two bytes, each its own token here
    stream = TextStream(tokenizer.decode)
    chunks = [stream.push(int(i)) for i in ids]
    assert chunks[0] == "" and "".join(chunks) + stream.flush() == "é!"


def test_text_generator_truncates_or_refuses_a_long_prompt(gpt):
    tokenizer = CharTokenizer(list("abcdefghijklmnopqrstuv"))
    generator = TextGenerator(TorchDecoder(gpt), tokenizer)
    ids, cut = generator.prompt_ids("abcdefghijklmnopqrst")
    assert cut == 5 and len(ids) == 15
    with pytest.raises(
        PromptTooLong, match="the prompt is 20 tokens and the model reads at most 15"
    ):
        generator.prompt_ids("abcdefghijklmnopqrst", truncate=False)
    with pytest.raises(ValueError, match="the prompt is empty"):
        generator.prompt_ids("")
    one = generator.generate("abc", max_new_tokens=12, seed=4, temperature=1.0)
    assert one == generator.generate("abc", max_new_tokens=12, seed=4, temperature=1.0)
    assert len(one) == 12
    assert "".join(generator.stream("abc", max_new_tokens=12, seed=4, temperature=1.0)) == one
