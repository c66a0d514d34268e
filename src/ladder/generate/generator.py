"""`TextGenerator`: a loaded language model with its tokenizer, continuing prompts as text
(what `ladder.load(path)` returns for a generation artifact, what `ladder generate` and the
server's generate endpoints use)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ladder.generate.decoder import Decoder
from ladder.generate.stream import SamplingParams, stream_text


class PromptTooLong(ValueError):
    """The prompt has more tokens than the model's context and truncation was not asked for."""


@dataclass
class TextGenerator:
    """A decoder and the tokenizer it was trained with (`encode(text) -> ids`,
    `decode(ids) -> text`); `manifest` is the artifact's (empty when built in memory)."""

    decoder: Decoder
    tokenizer: Any
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def context_length(self) -> int:
        """The most tokens the model reads at once."""
        return self.decoder.context_length

    @property
    def task(self) -> str:
        """Always "generation" (the manifest's task)."""
        return "generation"

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`."""
        return [int(i) for i in self.tokenizer.encode(text)]

    def decode(self, ids: list[int]) -> str:
        """The text of token ids."""
        return self.tokenizer.decode(ids)

    def prompt_ids(self, prompt: str, truncate: bool = True) -> tuple[list[int], int]:
        """The prompt's token ids that fit the context, and how many were cut from its start.

        The context must leave room for one new token. Without `truncate`, a prompt that does
        not fit raises PromptTooLong."""
        ids = self.encode(prompt)
        if not ids:
            raise ValueError("the prompt is empty: give at least one character to continue")
        room = max(1, self.context_length - 1)
        cut = max(0, len(ids) - room)
        if cut and not truncate:
            raise PromptTooLong(
                f"the prompt is {len(ids)} tokens and the model reads at most {room} before "
                "the first new one; shorten it or ask for truncation (its last tokens are kept)"
            )
        return ids[cut:], cut

    def stream(
        self, prompt: str, params: SamplingParams | None = None, **options: Any
    ) -> Iterator[str]:
        """Text chunks continuing `prompt` as they are generated (keyword options: those of
        SamplingParams). A prompt longer than the context keeps its last tokens."""
        params = sampling_params(params, options)
        ids, _ = self.prompt_ids(prompt)
        return stream_text(self.decoder, lambda _: ids, self.decode, prompt, params)

    def generate(self, prompt: str, params: SamplingParams | None = None, **options: Any) -> str:
        """The text continuing `prompt` (without the prompt); options as for `stream`."""
        return "".join(self.stream(prompt, params, **options))


def sampling_params(params: SamplingParams | None, options: dict[str, Any]) -> SamplingParams:
    """`params`, or SamplingParams from keyword `options` (not both), checked."""
    if params is not None and options:
        raise TypeError("give either params or keyword options, not both")
    if params is None:
        if isinstance(options.get("stop"), str):
            options["stop"] = (options["stop"],)
        elif options.get("stop") is not None:
            options["stop"] = tuple(options["stop"])
        else:
            options.pop("stop", None)
        params = SamplingParams(**options)
    return params.check()
