"""An interpolated Kneser-Ney n-gram language model over integer token ids (numpy only).

The variant is Chen & Goodman's (1998) interpolated Kneser-Ney with one discount per order (not
the modified three-discount form). With `c_k` the counts of order k (raw counts at the highest
order `n`, continuation counts `N1+(. h w)` below it), `S(h) = sum_w c_k(h w)` and
`N(h) = #{w : c_k(h w) > 0}`:

    P_k(w | h) = max(c_k(h w) - D_k, 0) / S(h) + D_k * N(h) / S(h) * P_{k-1}(w | h[1:])
    P_0(w) = 1 / vocab_size

and `P_k(w | h) = P_{k-1}(w | h[1:])` where `S(h) = 0` (a context never seen at that order), so
every token keeps a non-zero probability. A context shorter than `order - 1` (at the start of a
stream) starts the chain at its own length, from the continuation-count orders. Order 1 is
absolute discounting of the unigram counts, interpolated with the uniform distribution.

Storage is a trie in sorted int64 arrays: the k-gram `(h, w)` has the key `id(h) * vocab_size + w`
where `id(h)` is the row of the (k-1)-gram `h` in order k-1 (the empty context is row 0), so each
order is one `np.unique` over the stream and a lookup is one `np.searchsorted`.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ladder.errors import ArtifactError
from ladder.io import atomic_write, atomic_write_text

DISCOUNT_RANGE = (0.05, 0.95)  # an estimated discount is clipped into this range
FORMAT = "ladder.ngram.kneser_ney"
FORMAT_VERSION = 1
JSON_FILE, ARRAYS_FILE = "ngram.json", "ngram.npz"


class NgramConfig(BaseModel):
    """Hyperparameters of the n-gram model.

    `discount: null` estimates one per order from its count-of-counts, `n1 / (n1 + 2 n2)`.
    """

    model_config = ConfigDict(extra="forbid")

    order: int = Field(3, ge=1, description="n: each token is predicted from the n-1 before it")
    discount: float | None = Field(None, gt=0, lt=1, description="absolute discount, all orders")


def estimate_discount(counts: np.ndarray) -> float:
    """Chen & Goodman's `n1 / (n1 + 2 n2)` from the counts of one order, clipped."""
    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    if n1 + 2 * n2 == 0:
        return 0.5  # no singletons nor doubletons to estimate from
    return float(np.clip(n1 / (n1 + 2 * n2), *DISCOUNT_RANGE))


def lookup(keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows of `codes` in the sorted `keys`; -1 where a code is absent."""
    rows = np.searchsorted(keys, codes)
    safe = np.minimum(rows, max(len(keys) - 1, 0))
    found = (rows < len(keys)) & (keys[safe] == codes) if len(keys) else np.zeros_like(codes, bool)
    return np.where(found, rows, -1)


def suffix_rows(keys: list[np.ndarray], vocab_size: int) -> list[np.ndarray]:
    """For each order k >= 2, the row at order k-1 of every k-gram's last k-1 tokens (-1 where it
    is missing, which only a damaged file can give); order 1 gets the empty context, row 0."""
    suffixes = [np.zeros(len(keys[0]), dtype=np.int64)]
    for k in range(1, len(keys)):
        context, word = np.divmod(keys[k], vocab_size)
        tail = suffixes[k - 1][context]  # the suffix of the k-gram's context, one order lower
        suffixes.append(np.where(tail >= 0, lookup(keys[k - 1], tail * vocab_size + word), -1))
    return suffixes


def continuation_counts(keys: list[np.ndarray], vocab_size: int) -> list[np.ndarray]:
    """`N1+(. g)` for every k-gram g below the top order: how many distinct (k+1)-grams end in g."""
    suffixes = suffix_rows(keys, vocab_size)
    return [np.bincount(suffixes[k + 1], minlength=len(keys[k])) for k in range(len(keys) - 1)]


def as_ids(ids: Any, vocab_size: int, what: str = "ids") -> np.ndarray:
    """A 1-D int64 array of token ids in [0, vocab_size); ValueError otherwise."""
    array = np.asarray(ids)
    if array.size == 0:
        array = array.astype(np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{what} must be a 1-D sequence of integers, got {array.dtype} {array.shape}"
        )
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise ValueError(
            f"{what} must lie in [0, {vocab_size}), got [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64, copy=False)


class KneserNey:
    """Interpolated Kneser-Ney language model (one discount per order) over token ids.

    Attributes (after fit): vocab_size_, discounts_ (one per order, unigram first), keys_ and
    counts_ (one sorted int64 array each per order: trie keys and their counts, raw at the top
    order, continuation counts below).
    """

    def __init__(self, config: NgramConfig | None = None) -> None:
        self.config = config

    # ------------------------------------------------------------------------- fitting

    def fit(self, ids: np.ndarray, vocab_size: int) -> KneserNey:
        """Count every order's n-grams in the stream `ids` and derive the model; returns self."""
        config = self.config or NgramConfig()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
        x = as_ids(ids, vocab_size)
        if len(x) == 0:
            raise ValueError("ids is empty: a language model needs at least one token")
        if (len(x) + 1) * vocab_size >= 2**62:
            raise ValueError("len(ids) * vocab_size is too large for int64 trie keys")
        keys, raw = [], []
        context = np.zeros(len(x), dtype=np.int64)  # row of the k-1 tokens before each position
        for k in range(1, config.order + 1):
            # the k-grams end at positions k-1 .. len(x)-1
            codes = context[k - 1 :] * vocab_size + x[k - 1 :]
            unique, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
            keys.append(unique)
            raw.append(counts.astype(np.int64))
            context = np.full(len(x), -1, dtype=np.int64)
            context[k:] = inverse.reshape(-1)[:-1]  # the k-gram ending just before position i
        counts = [*continuation_counts(keys, vocab_size), raw[-1]]
        if config.discount is None:
            discounts = [estimate_discount(c) for c in counts]
        else:
            discounts = [config.discount] * config.order
        self._set_state(vocab_size, discounts, keys, counts)
        return self

    def _set_state(
        self,
        vocab_size: int,
        discounts: list[float],
        keys: list[np.ndarray],
        counts: list[np.ndarray],
    ) -> None:
        """Store the learned arrays and the per-context sums every query needs."""
        self.vocab_size_, self.discounts_ = vocab_size, tuple(float(d) for d in discounts)
        self.keys_, self.counts_ = keys, counts
        self._totals, self._types = [], []  # S(h) and N(h), indexed by the row of h
        n_contexts = 1  # order 1 has one context: the empty one
        for k in range(len(keys)):
            context = keys[k] // vocab_size
            self._totals.append(np.bincount(context, weights=counts[k], minlength=n_contexts))
            self._types.append(np.bincount(context[counts[k] > 0], minlength=n_contexts))
            n_contexts = len(keys[k])

    @property
    def order(self) -> int:
        return len(self._fitted_keys())

    def n_params(self) -> int:
        """The number of stored counts (every order's distinct n-grams)."""
        self._fitted_keys()
        return sum(len(c) for c in self.counts_)

    def _fitted_keys(self) -> list[np.ndarray]:
        if not hasattr(self, "keys_"):
            raise RuntimeError("this KneserNey model is not fitted yet: call fit(ids, vocab_size)")
        return self.keys_

    # ------------------------------------------------------------------------- prediction

    def _context_row(self, history: np.ndarray) -> int:
        """The row of the (k-1)-gram `history` at its order (0 for the empty one), -1 if unseen."""
        row = 0
        for k, token in enumerate(history):
            row = int(lookup(self.keys_[k], np.array([row * self.vocab_size_ + token]))[0])
            if row < 0:
                return -1
        return row

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(. | the last order-1 tokens of `context`): (vocab_size,) float64, summing to 1."""
        n, vocab = self.order, self.vocab_size_
        tokens = as_ids(context, vocab, "context")
        history = tokens[len(tokens) - min(len(tokens), n - 1) :]  # n = 1: no history
        probs = np.full(vocab, 1.0 / vocab)
        for k in range(1, len(history) + 2):  # order k conditions on the last k-1 tokens
            row = self._context_row(history[len(history) - (k - 1) :])
            if row < 0:
                break  # a longer context ends in this one, so it is unseen too
            total = self._totals[k - 1][row]
            if total == 0:
                continue  # seen, but never followed at this order: keep the lower order
            discount = self.discounts_[k - 1]
            keys = self.keys_[k - 1]
            lo, hi = np.searchsorted(keys, [row * vocab, (row + 1) * vocab])
            probs *= discount * self._types[k - 1][row] / total
            probs[keys[lo:hi] % vocab] += (
                np.maximum(self.counts_[k - 1][lo:hi] - discount, 0) / total
            )
        return probs

    def log_likelihood(self, ids: Any) -> tuple[float, int]:
        """(sum of log P(token | the tokens before it) in nats, <= 0; number of tokens predicted)
        over the stream `ids`, the first token from the empty context. Loss = -total / n."""
        logp = self.token_log_probs(ids)
        return float(np.sum(logp)), len(logp)

    def token_log_probs(self, ids: Any) -> np.ndarray:
        """log P(token | the tokens before it) in nats for each token of the stream `ids`
        (float64, the first token from the empty context)."""
        n, vocab = self.order, self.vocab_size_
        y = as_ids(ids, vocab)
        probs = np.full(len(y), 1.0 / vocab)
        context = np.zeros(len(y), dtype=np.int64)  # row of the k-1 tokens before each position
        for k in range(1, min(n, len(y)) + 1):
            # positions k-1.. have k-1 tokens before them; earlier ones stopped at a lower order
            rows = context[k - 1 :]
            seen = rows >= 0
            grams = lookup(self.keys_[k - 1], np.where(seen, rows * vocab + y[k - 1 :], -1))
            safe_rows = np.where(seen, rows, 0)
            total = np.where(seen, self._totals[k - 1][safe_rows], 0.0)
            use = total > 0
            count = np.where(grams >= 0, self.counts_[k - 1][np.maximum(grams, 0)], 0)
            discount = self.discounts_[k - 1]
            mixed = (
                np.maximum(count - discount, 0)
                + discount * self._types[k - 1][safe_rows] * probs[k - 1 :]
            ) / np.where(use, total, 1.0)
            probs[k - 1 :] = np.where(use, mixed, probs[k - 1 :])
            context = np.full(len(y), -1, dtype=np.int64)
            context[k:] = grams[:-1]  # the k-gram ending just before position i
        return np.log(probs)

    def generate(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> list[int]:
        """Sample `max_new_tokens` tokens after `prompt_ids`; returns the new tokens only.

        Args:
            temperature: 0 is greedy (the most probable token, the lowest id on a tie); above 0
                the probabilities are raised to 1/temperature and renormalised.
            seed: seeds a numpy Generator, so the same seed gives the same tokens.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        rng = np.random.default_rng(seed)
        tokens = [int(t) for t in as_ids(prompt_ids, self.vocab_size_, "prompt_ids")]
        new: list[int] = []
        for _ in range(max_new_tokens):
            probs = self.next_distribution(tokens[-self.order :])
            if temperature == 0:
                token = int(np.argmax(probs))
            else:
                logits = np.log(probs) / temperature
                weights = np.exp(logits - logits.max())
                token = int(rng.choice(self.vocab_size_, p=weights / weights.sum()))
            tokens.append(token)
            new.append(token)
        return new

    # ------------------------------------------------------------------------- persistence

    def save(self, folder: str | Path) -> list[str]:
        """Write the model into `folder` (JSON header, npz arrays), atomically; returns names."""
        keys = self._fitted_keys()
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": (self.config or NgramConfig()).model_dump(),
            "vocab_size": self.vocab_size_,
            "discounts": list(self.discounts_),
        }
        arrays = {f"keys_{k + 1}": keys[k] for k in range(len(keys))}
        arrays.update({f"counts_{k + 1}": self.counts_[k] for k in range(len(keys))})

        def write_arrays(tmp: Path) -> None:
            with tmp.open("wb") as fh:  # a file object, so numpy adds no ".npz" to the name
                np.savez(fh, **arrays)

        atomic_write(Path(folder) / ARRAYS_FILE, write_arrays)
        atomic_write_text(Path(folder) / JSON_FILE, json.dumps(header, indent=2) + "\n")
        return [JSON_FILE, ARRAYS_FILE]

    @classmethod
    def load(cls, folder: str | Path) -> KneserNey:
        """Load what `save` wrote; ArtifactError for a missing, damaged or inconsistent file."""
        folder = Path(folder)
        header = _read_header(folder / JSON_FILE)
        config, vocab, discounts = header["config"], header["vocab_size"], header["discounts"]
        keys, counts = _read_arrays(folder / ARRAYS_FILE, config.order)
        _check_arrays(folder / ARRAYS_FILE, keys, counts, vocab)
        if config.discount is not None and any(d != config.discount for d in discounts):
            raise ArtifactError(f"{folder / JSON_FILE}: discounts differ from config.discount")
        model = cls(config)
        model._set_state(vocab, discounts, keys, counts)
        return model


def _read_header(path: Path) -> dict[str, Any]:
    """The JSON header, its config validated; ArtifactError otherwise."""
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable n-gram header ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a {FORMAT} header")
    if header.get("version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: version {header.get('version')!r} is not {FORMAT_VERSION}")
    try:
        config = NgramConfig.model_validate(header.get("config"))
    except ValidationError as exc:
        raise ArtifactError(f"{path}: invalid config ({exc.error_count()} problems)") from exc
    vocab, discounts = header.get("vocab_size"), header.get("discounts")
    if type(vocab) is not int or vocab < 1:
        raise ArtifactError(f"{path}: vocab_size must be a positive integer, got {vocab!r}")
    if (
        not isinstance(discounts, list)
        or len(discounts) != config.order
        or not all(type(d) in (int, float) and 0 < d < 1 for d in discounts)
    ):
        raise ArtifactError(f"{path}: discounts must be {config.order} numbers in (0, 1)")
    return {"config": config, "vocab_size": vocab, "discounts": [float(d) for d in discounts]}


def _read_arrays(path: Path, order: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The trie keys and counts of every order, as 1-D int64 arrays; ArtifactError otherwise."""
    names = {f"{kind}_{k}" for kind in ("keys", "counts") for k in range(1, order + 1)}
    try:
        with np.load(path, allow_pickle=False) as data:
            if set(data.files) != names:
                raise ArtifactError(f"{path}: arrays {sorted(data.files)} are not {sorted(names)}")
            arrays = {name: data[name] for name in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{path}: not a readable n-gram array file ({exc})") from exc
    for name, array in arrays.items():
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ArtifactError(f"{path}: {name} must be a 1-D integer array")
    keys = [arrays[f"keys_{k}"].astype(np.int64) for k in range(1, order + 1)]
    counts = [arrays[f"counts_{k}"].astype(np.int64) for k in range(1, order + 1)]
    return keys, counts


def _check_arrays(
    path: Path, keys: list[np.ndarray], counts: list[np.ndarray], vocab_size: int
) -> None:
    """ArtifactError unless the arrays form a trie whose counts are what fit would have stored."""
    n_contexts = 1
    for k, (key, count) in enumerate(zip(keys, counts, strict=True), start=1):
        if len(key) != len(count):
            raise ArtifactError(f"{path}: keys_{k} and counts_{k} differ in length")
        if len(key) and (key[0] < 0 or key[-1] >= n_contexts * vocab_size):
            raise ArtifactError(f"{path}: keys_{k} are not trie keys of this vocabulary")
        if np.any(np.diff(key) <= 0):
            raise ArtifactError(f"{path}: keys_{k} are not strictly increasing")
        if np.any(count < 0):
            raise ArtifactError(f"{path}: counts_{k} has negative counts")
        n_contexts = len(key)
    if np.any(counts[-1] < 1) or len(keys[0]) == 0:
        raise ArtifactError(
            f"{path}: counts_{len(keys)} (raw counts) must all be at least 1, order 1 non-empty"
        )
    if any(np.any(s < 0) for s in suffix_rows(keys, vocab_size)):
        raise ArtifactError(f"{path}: an n-gram's suffix is missing one order lower")
    for k, expected in enumerate(continuation_counts(keys, vocab_size), start=1):
        if not np.array_equal(expected, counts[k - 1]):
            raise ArtifactError(
                f"{path}: counts_{k} are not the continuation counts of keys_{k + 1}"
            )
