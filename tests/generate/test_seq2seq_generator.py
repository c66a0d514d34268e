"""The seq2seq generators: `Seq2SeqGenerator` over a tiny random Transformer with char
tokenizers, `SourceConditioned` (the model as a language-model decoder whose prompt is the
source), the translation memory's `MemoryGenerator` and `RecallDecoder`, and the sources of
`ladder predict` (`read_sources`, `translations_frame`)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

import ladder.generate.seq2seq_generator as seq2seq_generator
from ladder.data.lm_tokenizers import CharTokenizer
from ladder.data.pair_tokenizers import PairTokenizer
from ladder.errors import DataError
from ladder.export.s2s_predictions import read_sources, translations_frame
from ladder.generate.engine import STOP, Engine
from ladder.generate.generator import PromptTooLong
from ladder.generate.memory_generator import MemoryGenerator, RecallDecoder
from ladder.generate.seq2seq_generator import Seq2SeqGenerator, SourceConditioned
from ladder.generate.seq2seq_search import SearchParams
from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder
from ladder.generate.stream import SamplingParams, stream_ids
from ladder.models.memory import TranslationMemory
from ladder.models.seq2seq_transformer import (
    Seq2SeqTransformerConfig,
    build_seq2seq_transformer,
)

SOURCES = ["twelve", "forty one", "seven", "ninety nine", "three hundred"]
TARGETS = ["douze", "quarante et un", "sept", "quatre-vingt-dix-neuf", "trois cents"]
MAX_SOURCE, MAX_TARGET = 12, 10


@pytest.fixture(scope="module")
def tokenizer() -> PairTokenizer:
    return PairTokenizer.train("char", SOURCES, TARGETS, shared=True)


@pytest.fixture(scope="module")
def module(tokenizer):
    """A random one-layer Transformer (no training: these tests check the decoding). Its head
    is untied (a random tied head echoes its input, bos then eos: empty outputs); with this
    seed its greedy outputs are not empty, differ by source and some end at eos."""
    torch.manual_seed(3)
    config = Seq2SeqTransformerConfig(
        d_model=16,
        n_head=2,
        n_encoder_layers=1,
        n_decoder_layers=1,
        dropout=0.0,
        tie_embeddings=False,
        max_source_length=MAX_SOURCE,
        max_target_length=MAX_TARGET,
    )
    vocab = tokenizer.source.vocab_size
    return build_seq2seq_transformer(config, vocab, vocab).eval()


@pytest.fixture
def generator(module, tokenizer) -> Seq2SeqGenerator:
    decoder = TorchSeq2SeqDecoder(module)
    return Seq2SeqGenerator(decoder, tokenizer, search=SearchParams(beam_size=2))


class EosAfter:
    """A Seq2SeqDecoder that ends every target after `count` tokens (its logits force eos
    there); otherwise the inner decoder's logits. States carry how many tokens were fed."""

    def __init__(self, inner, count: int) -> None:
        self.inner, self.count = inner, count
        for name in ("vocab_size", "bos_id", "eos_id", "max_source_length", "max_target_length"):
            setattr(self, name, getattr(inner, name))

    def encode(self, sources):
        return self.inner.encode(sources)

    def start(self, encoded):
        logits, states = self.inner.start(encoded)
        return self._limited(logits, [0] * len(states)), [(s, 0) for s in states]

    def decode(self, tokens, states):
        logits, inner = self.inner.decode(tokens, [s for s, _ in states])
        fed = [n + 1 for _, n in states]
        return self._limited(logits, fed), list(zip(inner, fed, strict=True))

    def _limited(self, logits, fed):
        logits = np.array(logits, dtype=np.float32)
        for row, n in enumerate(fed):
            if n >= self.count:
                logits[row] = -np.inf
                logits[row, self.eos_id] = 0.0
        return logits


# ------------------------------------------------------------------ Seq2SeqGenerator


def test_prompt_ids_keep_the_first_tokens_and_count_the_cut(generator):
    source = "ninety nine forty one"
    full = generator.encode(source)
    assert len(full) == len(source) > MAX_SOURCE
    ids, cut = generator.prompt_ids(source)
    assert ids == full[:MAX_SOURCE] and cut == len(source) - MAX_SOURCE
    assert generator.prompt_ids("seven") == (generator.encode("seven"), 0)


def test_prompt_ids_refuse_a_long_source_without_truncation_and_an_empty_one(generator):
    with pytest.raises(PromptTooLong, match=rf"21 tokens and the model reads at most {MAX_SOURCE}"):
        generator.prompt_ids("ninety nine forty one", truncate=False)
    assert generator.prompt_ids("twelve", truncate=False)[1] == 0
    with pytest.raises(ValueError, match="the source is empty"):
        generator.prompt_ids("")


def test_translate_takes_params_or_keyword_options_but_not_both(generator):
    greedy = SearchParams(beam_size=1)
    by_params = generator.translate(SOURCES, greedy)
    assert generator.translate(SOURCES, beam_size=1) == by_params
    with pytest.raises(TypeError, match="either params or keyword options"):
        generator.translate(SOURCES, greedy, beam_size=1)
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        generator.translate(SOURCES, beam_size=0)
    # no params and no options: the generator's own search (here beam search of 2)
    assert generator.translate(SOURCES) == generator.translate(SOURCES, SearchParams(beam_size=2))


def test_translate_batches_alike_and_reads_an_empty_source(generator, monkeypatch):
    one_by_one = [generator.translate([s], beam_size=1)[0] for s in SOURCES]
    monkeypatch.setattr(seq2seq_generator, "TRANSLATE_BATCH", 2)
    assert generator.translate(SOURCES, beam_size=1) == one_by_one
    outputs = generator.translate(["", "seven"], beam_size=1)
    assert isinstance(outputs[0], str) and outputs[1] == one_by_one[2]
    assert generator.translate([]) == []


def test_greedy_generate_and_stream_give_greedy_search(generator):
    outputs = generator.translate(SOURCES, beam_size=1)
    assert all(outputs) and len(set(outputs)) > 1
    assert min(map(len, outputs)) < MAX_TARGET  # some end at the model's own eos
    for source, greedy in zip(SOURCES, outputs, strict=True):
        assert generator.generate(source, temperature=0, max_new_tokens=40) == greedy
        assert "".join(generator.stream(source, temperature=0, max_new_tokens=40)) == greedy
    # max_new_tokens cuts the stream; greedy search is cut alike
    cut = generator.translate(SOURCES[:1], beam_size=1, max_new_tokens=3)[0]
    assert generator.generate(SOURCES[0], temperature=0, max_new_tokens=3) == cut
    with pytest.raises(TypeError, match="either params or keyword options"):
        generator.generate("seven", SamplingParams(temperature=0), temperature=0)


def test_source_conditioned_is_the_model_read_as_a_language_model_decoder(module):
    inner = TorchSeq2SeqDecoder(module)
    decoder = SourceConditioned(inner)
    assert decoder.vocab_size == inner.vocab_size and decoder.eos_id == inner.eos_id
    assert decoder.context_length == MAX_SOURCE + MAX_TARGET + 2
    ids = [5, 6, 7]
    logits, state = decoder.prefill(ids)
    want, states = inner.start(inner.encode([ids]))
    np.testing.assert_array_equal(logits, want[0])
    token = int(np.argmax(logits))
    stepped, _ = decoder.decode([token], [state])
    np.testing.assert_array_equal(stepped, inner.decode([token], states)[0])


def test_eos_ends_the_stream_and_is_never_shown(module, tokenizer):
    ended = Seq2SeqGenerator(EosAfter(TorchSeq2SeqDecoder(module), 3), tokenizer)
    ids, _ = ended.prompt_ids("forty one")
    params = SamplingParams(max_new_tokens=40, temperature=0)
    tokens = list(stream_ids(ended.decoder, ids, params))
    assert len(tokens) == 3 and ended.decoder.eos_id not in tokens
    text = ended.generate("forty one", params)
    assert text == ended.decode(tokens) == ended.translate(["forty one"], beam_size=1)[0]
    assert "".join(ended.stream("forty one", params)) == text


def test_the_engine_finishes_a_sequence_at_eos(module, tokenizer):
    ended = Seq2SeqGenerator(EosAfter(TorchSeq2SeqDecoder(module), 4), tokenizer)
    ids, _ = ended.prompt_ids("seven")
    events, done = [], threading.Event()

    def emit(text: str, finish: str | None) -> None:
        events.append((text, finish))
        if finish is not None:
            done.set()

    engine = Engine(ended)
    engine.start()
    try:
        engine.submit(ids, SamplingParams(max_new_tokens=40, temperature=0), emit)
        assert done.wait(30)
    finally:
        engine.close()
        engine.join(30)
    assert events[-1][1] == STOP
    assert "".join(text for text, _ in events) == ended.generate("seven", temperature=0)


# ------------------------------------------------------------------ the translation memory


@pytest.fixture(scope="module")
def memory() -> MemoryGenerator:
    fitted = TranslationMemory().fit(SOURCES, TARGETS)
    return MemoryGenerator(fitted, CharTokenizer.train([*SOURCES, *TARGETS]))


def test_recall_decoder_spells_the_recalled_target_then_eos(memory):
    decoder = memory.decoder
    assert isinstance(decoder, RecallDecoder)
    assert decoder.eos_id == memory.chars.vocab_size == decoder.vocab_size - 1
    logits, state = decoder.prefill(memory.encode("forty one"))
    spelled = []
    for _ in range(len("quarante et un") + 3):
        token = int(np.argmax(logits))
        assert np.count_nonzero(logits == logits.max()) == 1  # one token allowed
        spelled.append(token)
        rows, (state,) = decoder.decode([token], [state])
        logits = rows[0]
    eos = spelled.index(decoder.eos_id)
    assert memory.decode(spelled[:eos]) == "quarante et un"
    assert set(spelled[eos:]) == {decoder.eos_id}  # it stays at eos


def test_memory_generates_what_it_translates(memory):
    for source in ["twelve", "fourty one", "ninety-nine", "SEVEN", "Seven!"]:
        recalled = memory.translate([source])[0]
        assert memory.generate(source, temperature=0, max_new_tokens=100) == recalled
        assert "".join(memory.stream(source, temperature=0.7, seed=1)) == recalled
    assert memory.generate("forty one", max_new_tokens=4) == "quar"
    # decoding options do not apply to a lookup
    assert memory.translate(["seven"], beam_size=4) == memory.translate(["seven"]) == ["sept"]


def test_memory_reads_a_source_as_it_is(memory):
    # characters unseen in training (upper case, here) reach the memory unchanged
    ids, cut = memory.prompt_ids("SEVEN")
    assert cut == 0 and "".join(map(chr, ids)) == "SEVEN"
    assert memory.generate("SEVEN", temperature=0) == "sept"
    assert memory.prompt_ids("x" * 5000)[1] == 0  # nothing is cut
    with pytest.raises(ValueError, match="the source is empty"):
        memory.prompt_ids("")
    assert memory.task == "seq2seq" and memory.context_length > 100_000


# ------------------------------------------------------------------ ladder predict's sources


def test_read_sources_of_a_text_file_is_its_lines(tmp_path):
    path = tmp_path / "sources.txt"
    path.write_text("twelve\n\nforty one\r\n", encoding="utf-8")
    assert read_sources(path) == ["twelve", "", "forty one"]
    path.write_bytes("\ufeffseven\neight\n".encode())  # a byte-order mark (Notepad)
    assert read_sources(path) == ["seven", "eight"]
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"sources\.txt: not UTF-8 text \(byte 3\)"):
        read_sources(path)


def test_read_sources_of_a_table_is_its_column(tmp_path):
    path = tmp_path / "sources.csv"
    pd.DataFrame({"en": ["twelve", None, "007"], "n": [12, 0, 7]}).to_csv(path, index=False)
    assert read_sources(path, "en") == ["twelve", "", "007"]
    with pytest.raises(DataError, match=r"no 'source' column for the sources \(columns: en, n\)"):
        read_sources(path)
    jsonl = tmp_path / "sources.jsonl"
    jsonl.write_text('{"source": "seven"}\n{"source": "eight"}\n')
    assert read_sources(jsonl) == ["seven", "eight"]


def test_read_sources_of_a_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.txt: file not found"):
        read_sources(tmp_path / "nowhere.txt")
    with pytest.raises(DataError, match=r"nowhere\.csv: file not found"):
        read_sources(tmp_path / "nowhere.csv")


def test_translations_frame_keeps_empty_sources_empty(memory):
    asked: list[list[str]] = []

    class Recording:
        def translate(self, sources):
            asked.append(list(sources))
            return memory.translate(sources)

    sources = ["twelve", "", "   ", "seven"]
    frame = translations_frame(Recording(), sources)
    assert list(frame.columns) == ["source", "output"]
    assert list(frame["source"]) == sources
    assert list(frame["output"]) == ["douze", "", "", "sept"]
    assert asked == [["twelve", "seven"]]  # blank sources are never decoded
    assert translations_frame(Recording(), ["", " "])["output"].tolist() == ["", ""]
