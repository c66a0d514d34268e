"""Text generation: decoding token ids from a causal language model (`ladder.models.gpt`).

The `Decoder` contract (`decoder`) and the numpy sampler and streaming (`stream`) need no torch,
so an ONNX Runtime decoder runs without it; `generate_ids` and `next_token` (`sampling`) load
torch when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["generate_ids", "next_token"]


def __getattr__(name: str) -> Any:
    """`generate_ids` and `next_token`, imported (with torch) on first use."""
    if name in __all__:
        return getattr(importlib.import_module("ladder.generate.sampling"), name)
    raise AttributeError(f"module 'ladder.generate' has no attribute {name!r}")
