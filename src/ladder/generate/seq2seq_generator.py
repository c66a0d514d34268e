"""`Seq2SeqGenerator`: a loaded sequence-to-sequence model with its tokenizers, writing a target
text for each source text (what `ladder.load(path)` returns for a seq2seq artifact, what
`ladder predict`, `ladder generate` and the server's generate endpoints use).

`translate` decodes many sources at once with the search `evaluate` asks for (greedy, beam,
sampling). `stream` and the server's continuous batching see the model through
`SourceConditioned`, the language-model `Decoder` contract (`ladder.generate.decoder`) where
the "prompt" is the source and the first logits come from the encoder: every decoding path
the generation task has (streaming, stop strings, batching of sequences) serves seq2seq too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ladder.generate.generator import PromptTooLong, sampling_params
from ladder.generate.seq2seq_search import SearchParams, Seq2SeqDecoder, search
from ladder.generate.stream import SamplingParams, stream_text

TRANSLATE_BATCH = 32  # sources decoded together by `translate`


class SourceConditioned:
    """A seq2seq decoder seen as a language-model `Decoder`: `prefill(source ids)` encodes the
    source and gives the first target token's logits; `decode` steps the target. Its context
    is long enough never to slide; the output ends at `eos_id` (or the model's longest)."""

    def __init__(self, inner: Seq2SeqDecoder) -> None:
        self.inner = inner
        self.vocab_size = inner.vocab_size
        self.eos_id = inner.eos_id
        self.context_length = inner.max_source_length + inner.max_target_length + 2

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        """Logits of the first target token for source `ids`, and the decoding state."""
        logits, states = self.inner.start(self.inner.encode([list(ids)]))
        return logits[0], states[0]

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """One target token for each sequence."""
        return self.inner.decode(list(tokens), list(states))


@dataclass
class Seq2SeqGenerator:
    """A seq2seq decoder (`ladder.generate.seq2seq_search.Seq2SeqDecoder`) and its pair of
    tokenizers (`ladder.data.pair_tokenizers.PairTokenizer`); `manifest`: the artifact's."""

    model: Seq2SeqDecoder
    tokenizer: Any
    manifest: dict[str, Any] = field(default_factory=dict)
    search: SearchParams = field(default_factory=SearchParams)  # translate's default

    def __post_init__(self) -> None:
        self.decoder = SourceConditioned(self.model)

    @property
    def task(self) -> str:
        """Always "seq2seq" (the manifest's task)."""
        return "seq2seq"

    @property
    def context_length(self) -> int:
        """What the decoding engine may hold: the longest source and output together."""
        return self.decoder.context_length

    def encode(self, text: str) -> list[int]:
        """The source token ids of `text`."""
        return [int(i) for i in self.tokenizer.source.encode(text)]

    def decode(self, ids: list[int]) -> str:
        """The target text of token ids."""
        return self.tokenizer.target.decode(ids)

    def prompt_ids(self, source: str, truncate: bool = True) -> tuple[list[int], int]:
        """The source's ids that fit the model and how many were cut from its end; ValueError
        for an empty source, PromptTooLong (a ValueError) for one too long when `truncate` is
        off."""
        ids = self.encode(source)
        if not ids:
            raise ValueError("the source is empty: give a text to translate")
        room = self.model.max_source_length
        cut = max(0, len(ids) - room)
        if cut and not truncate:
            raise PromptTooLong(
                f"the source is {len(ids)} tokens and the model reads at most {room}; "
                "shorten it or ask for truncation (its first tokens are kept)"
            )
        return [int(i) for i in self.tokenizer.source.truncate(ids, room)], cut

    def translate(
        self, sources: list[str], params: SearchParams | None = None, **options: Any
    ) -> list[str]:
        """The output text for each source (keyword options: those of SearchParams; default:
        the artifact's decoding, beam search with `evaluate.beam_size` beams)."""
        if params is not None and options:
            raise TypeError("give either params or keyword options, not both")
        params = (params or (SearchParams(**options) if options else self.search)).check()
        outputs: list[str] = []
        for start in range(0, len(sources), TRANSLATE_BATCH):
            chunk = [self.prompt_ids(s or " ")[0] for s in sources[start : start + TRANSLATE_BATCH]]
            outputs += [self.decode(ids) for ids in search(self.model, chunk, params)]
        return outputs

    def stream(
        self, source: str, params: SamplingParams | None = None, **options: Any
    ) -> Iterator[str]:
        """Text chunks of the output for `source` as they are decoded (keyword options: those
        of SamplingParams; temperature 0 is greedy). A long source keeps its first tokens."""
        params = sampling_params(params, options)
        ids, _ = self.prompt_ids(source)
        return stream_text(self.decoder, lambda _: ids, self.decode, source, params)

    def generate(self, source: str, params: SamplingParams | None = None, **options: Any) -> str:
        """The output text for `source`; options as for `stream`."""
        return "".join(self.stream(source, params, **options))
