"""Batching of token ids: dynamic padding (each batch trimmed to its longest row) and
length bucketing (texts of similar length batched together, so little of a batch is padding).
"""

from __future__ import annotations

import torch  # noqa: TID253

BUCKET_POOL = 50  # batches per pool sorted by length: mixes lengths across pools, not within


class TokenBatching:
    """How the trainer batches right-padded token ids.

    Args:
        pad_id: the padding token id.
        bucket: batch rows of similar length together (the order stays random between pools
            and batches, and is reproducible from the generator).
    """

    def __init__(self, pad_id: int, bucket: bool = True) -> None:
        self.pad_id, self.bucket = pad_id, bucket

    def lengths(self, X: torch.Tensor) -> torch.Tensor:
        """The number of real (non-pad) tokens of each row (N,)."""
        return (self.pad_id != X).sum(dim=1)

    def trim(self, xb: torch.Tensor) -> torch.Tensor:
        """The batch without its all-padding columns on the right (at least one column)."""
        longest = int((xb != self.pad_id).sum(dim=1).max().clamp(min=1))
        return xb[:, :longest]

    def order(
        self,
        order: torch.Tensor,
        lengths: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """A shuffled row `order` rearranged so that consecutive `batch_size` rows have similar
        lengths: pools of BUCKET_POOL batches are sorted by length, cut into batches, and the
        full batches shuffled (a short last batch stays last)."""
        if not self.bucket or len(order) <= batch_size:
            return order
        pool = batch_size * BUCKET_POOL
        sorted_rows = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            keys = lengths[chunk].cpu()
            sorted_rows.append(chunk[torch.argsort(keys, stable=True).to(chunk.device)])
        rows = torch.cat(sorted_rows)
        n_full = len(rows) // batch_size
        full = rows[: n_full * batch_size].view(n_full, batch_size)  # (batches, batch_size)
        shuffled = full[torch.randperm(n_full, generator=generator).to(rows.device)]
        return torch.cat([shuffled.flatten(), rows[n_full * batch_size :]])

    def sort_by_length(self, X: torch.Tensor) -> torch.Tensor:
        """Row indices of X from shortest to longest (for fast inference; undo afterwards)."""
        return torch.argsort(self.lengths(X).cpu(), stable=True)
