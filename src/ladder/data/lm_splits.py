"""The text of a language-model run, split once: training, validation and test are contiguous,
non-overlapping parts of the corpus (cut at line ends), or runs of whole prompt/completion
examples. Each part is a list of examples, an example being a prompt (not scored) and the
text that is learned and scored; plain text has an empty prompt. The test part is cut into
segments so that models with different tokenizers are compared on the same pieces of text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ladder.data.corpus import DOCUMENT_SEPARATOR, PromptCompletion
from ladder.errors import DataError

EXAMPLE_END = "\n\n"  # after each prompt/completion example: what ends a completion


@dataclass(frozen=True)
class Example:
    """Text to learn (`text`) after a context that is read but not scored (`prompt`)."""

    prompt: str
    text: str

    @property
    def n_bytes(self) -> int:
        """UTF-8 bytes of the scored text."""
        return len(self.text.encode("utf-8"))


@dataclass(frozen=True)
class CorpusSplits:
    """The three parts of a corpus; `kind` is "text" or "prompt_completion"."""

    train: list[Example]
    val: list[Example]
    test: list[Example]
    kind: str = "text"

    def items(self) -> list[tuple[str, list[Example]]]:
        """(name, examples) of each non-empty part."""
        parts = [("train", self.train), ("val", self.val), ("test", self.test)]
        return [(name, part) for name, part in parts if part]

    def texts(self, part: str) -> list[str]:
        """The whole text (prompt and scored text) of each example of a part."""
        return [ex.prompt + ex.text for ex in getattr(self, part)]


def split_text(documents: list[str], val: float, test: float) -> CorpusSplits:
    """The documents joined into one text and cut at the line ends nearest the fractions:
    training first, then validation, then test; DataError when a part would be empty."""
    text = DOCUMENT_SEPARATOR.join(documents)
    n = len(text)
    cut_val = _line_end(text, round(n * (1 - val - test)))
    cut_test = _line_end(text, round(n * (1 - test)))
    parts = {"train": text[:cut_val], "val": text[cut_val:cut_test], "test": text[cut_test:]}
    for name, part in parts.items():
        name = "validation" if name == "val" else name
        if len(part.strip()) < 2 and (name != "validation" or val > 0):  # one token scores nothing
            raise DataError(
                f"the corpus is too short to split: its {name} part (data.split) holds too "
                f"little text ({n:,} characters in all); add text or change data.split"
            )
    return CorpusSplits(
        *([Example("", part)] if part else [] for part in parts.values()), kind="text"
    )


def split_examples(pairs: list[PromptCompletion], val: float, test: float) -> CorpusSplits:
    """Contiguous runs of whole prompt/completion examples (in file order); each completion
    is followed by EXAMPLE_END, which the model learns as its end."""
    examples = [Example(p.prompt, p.completion + EXAMPLE_END) for p in pairs]
    n = len(examples)
    n_test, n_val = max(1, round(n * test)), round(n * val)
    if val > 0:
        n_val = max(1, n_val)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"{n} prompt/completion examples are too few to split into training, validation "
            f"and test (data.split val {val}, test {test}); add examples"
        )
    train, rest = examples[:n_train], examples[n_train:]
    return CorpusSplits(train, rest[:n_val], rest[n_val:], kind="prompt_completion")


def scoring_segments(examples: list[Example], target: int = 64) -> list[Example]:
    """The test part as about `target` segments of similar size, cut at line ends (each
    prompt/completion example stays whole): the units of the confidence interval and the
    paired test of the leaderboard."""
    if any(ex.prompt for ex in examples) or len(examples) != 1:
        return examples
    text = examples[0].text
    size = max(1, len(text) // target)
    segments, start = [], 0
    while start < len(text):
        stop = _line_end(text, start + size)
        segments.append(Example("", text[start:stop]))
        start = stop
    return segments


def describe_corpus(splits: CorpusSplits, source: str) -> dict[str, Any]:
    """The content of data.json for a language-model run: source, examples, characters and
    bytes per part, and a sha256 fingerprint of the text."""
    digest = hashlib.sha256()
    for _, part in splits.items():
        for ex in part:
            digest.update(ex.prompt.encode("utf-8") + b"\0" + ex.text.encode("utf-8") + b"\0")
    parts = {name: part for name, part in splits.items()}
    return {
        "source": source,
        "kind": splits.kind,
        "task": "generation",
        "examples": {name: len(part) for name, part in parts.items()},
        "characters": {
            name: sum(len(e.prompt) + len(e.text) for e in p) for name, p in parts.items()
        },
        "bytes": {name: sum(e.n_bytes for e in p) for name, p in parts.items()},
        "dropped_non_finite": 0,
        "sha256": digest.hexdigest(),
    }


def _line_end(text: str, at: int) -> int:
    """The position just after the first line end at or after `at` (the end of the text when
    none; `at` itself when the text has no line end at all)."""
    at = min(max(at, 0), len(text))
    newline = text.find("\n", at)
    if newline >= 0:
        return newline + 1
    return len(text) if "\n" in text[:at] else at
