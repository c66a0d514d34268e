"""Decoding: pick each next token from a causal language model's logits, and stream them.

`next_token` turns the logits at the last position into one token id: greedy (temperature 0)
or sampled from softmax(logits / temperature), restricted first to the `top_k` most likely
tokens, then to the nucleus, the fewest most likely tokens holding `top_p` of the probability
(Holtzman et al. 2019). `generate_ids` feeds the model its own choices, one token at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import torch  # noqa: TID253


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raises ValueError naming the first decoding parameter out of its range."""
    if not temperature >= 0:  # `not >=` also refuses NaN
        raise ValueError(
            f"The 'temperature' parameter must be a float >= 0 (0: greedy). Got {temperature}."
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"The 'top_k' parameter must be an int >= 1 or None. Got {top_k!r}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"The 'top_p' parameter must be a float in (0, 1] or None. Got {top_p}.")


def next_token(
    logits_last: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
) -> int:
    """The next token id from the logits (vocab,) at the last position.

    Temperature 0 is greedy (argmax; top_k and top_p change nothing). Otherwise the logits are
    divided by the temperature, cut to the top_k largest (ties at the k-th value are kept),
    then to the nucleus of top_p probability, and one id is drawn with `generator`."""
    check_sampling(temperature, top_k, top_p)
    if logits_last.dim() != 1:
        raise ValueError(f"logits_last must be 1-D (vocab,); got shape {tuple(logits_last.shape)}")
    if temperature == 0:
        return int(logits_last.argmax())
    logits = logits_last.float() / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        ordered, order = logits.sort(descending=True)
        probs = ordered.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # the mass of the more likely tokens
        # keep a token while the ones before it hold less than top_p: the most likely one
        # always stays, so a tiny top_p is greedy
        cut = torch.zeros_like(logits, dtype=torch.bool).scatter(0, order, before >= top_p)
        logits = logits.masked_fill(cut, float("-inf"))
    probs = logits.softmax(dim=-1).to(generator.device)  # the draw happens where the generator is
    return int(torch.multinomial(probs, 1, generator=generator))


def generate_ids(
    model: Any,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Iterator[int]:
    """Streams `max_new_tokens` new token ids, one by one, continuing `prompt_ids`.

    `model` is any of ladder's language models: `forward(idx, past) -> (logits, present)`
    (GPT, RNNLM, CausalLM), its context length `block_size` (`context_length`). With
    `use_cache` the prompt is fed once, then one token per step with the KV cache. Without
    it, each step recomputes the whole context (its last block_size tokens). Once the context
    outgrows block_size, the cache cannot hold it: from then on each step recomputes the last
    block_size tokens, as without the cache, so both ways pick the same tokens.

    The model is put in eval mode (its mode is restored when the stream ends) and runs without
    gradients. The same `seed` gives the same tokens; None draws a fresh one. Arguments are
    checked at the call, before the first token."""
    check_sampling(temperature, top_k, top_p)
    if max_new_tokens <= 0:
        raise ValueError(f"The 'max_new_tokens' parameter must be >= 1. Got {max_new_tokens}.")
    if not prompt_ids:
        raise ValueError("prompt_ids is empty: the model needs at least one token to continue")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)

    def stream() -> Iterator[int]:
        block_size = context_length(model)
        context = deque(prompt_ids, maxlen=block_size)  # all the model can see
        past: Any = None
        cached = 0  # tokens the cache (or a recurrent model's state) has seen
        was_training = model.training
        model.eval()
        try:
            for _ in range(max_new_tokens):
                if use_cache and past is not None and cached < block_size:
                    feed = [context[-1]]  # the cache holds everything before it
                else:
                    feed, past, cached = list(context), None, 0
                logits, present = _forward(model, feed, past, device)
                past = present if use_cache else None
                cached += len(feed)
                token = next_token(logits, temperature, top_k, top_p, generator)
                context.append(token)
                yield token
        finally:
            model.train(was_training)

    return stream()


@torch.no_grad()
def _forward(
    model: Any, feed: list[int], past: Any, device: torch.device
) -> tuple[torch.Tensor, Any]:
    """The logits (vocab,) after `feed` and the new cache. Its own function so that no_grad
    covers the forward only, never the caller's code between the stream's yields."""
    idx = torch.tensor([feed], dtype=torch.long, device=device)  # (1, len(feed))
    logits, present = model(idx, past)
    return logits[0, -1], present


def context_length(model: Any) -> int:
    """The tokens a language model reads at once: its `block_size`, or its config's."""
    size = getattr(model, "block_size", None)
    return int(size if size is not None else model.config.block_size)
