"""Text generation: decoding token ids from a causal language model (`ladder.models.gpt`).

Importing this package loads torch.
"""

from ladder.generate.sampling import generate_ids, next_token

__all__ = ["generate_ids", "next_token"]
