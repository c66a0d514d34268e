"""A `Seq2SeqDecoder` (ladder.generate.seq2seq_search) over a torch sequence-to-sequence
module: any module with `encode(src, src_mask)`, `initial_past(memory, src_mask)` and
`step(tokens, memory, src_mask, past, position)` (seq2seq_rnn, seq2seq_transformer, the
pretrained wrapper), run in eval mode without gradients. The batching is `StepDecoder`'s; the
states hold torch tensors on the module's device, the logits come back as float32 numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch  # noqa: TID253

from ladder.generate.seq2seq_steps import StepDecoder, changed_axes


class TorchSeq2SeqDecoder(StepDecoder):
    """A torch seq2seq module decoding batches of sequences one token at a time."""

    def __init__(self, module: Any, device: str | torch.device = "cpu") -> None:
        self.module, self.device = module.to(device), torch.device(device)
        self.vocab_size = int(module.vocab_size)
        self.bos_id, self.eos_id = int(module.bos_id), int(module.eos_id)
        self.max_source_length = int(module.max_source_length)
        self.max_target_length = int(module.max_target_length)
        self.source_vocab_size = int(module.source_vocab_size)
        self.source_axes = self._run(_memory_source_axes, module, self.device)

    def run_encoder(
        self, ids: np.ndarray, mask: np.ndarray
    ) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
        """The module's memory, the mask and its initial past, as tensors on the device."""
        src = torch.from_numpy(ids).to(self.device)
        src_mask = torch.from_numpy(mask).to(self.device)
        memory, past = self._run(_encode, self.module, src, src_mask)
        return memory, src_mask, past

    def run_step(
        self,
        tokens: np.ndarray,
        memory: tuple[Any, ...],
        src_mask: Any,
        past: tuple[Any, ...],
        positions: np.ndarray,
    ) -> tuple[np.ndarray, tuple[Any, ...]]:
        """One `step` of the module; the logits as float32 numpy."""
        fed = torch.from_numpy(tokens).to(self.device)
        where = torch.from_numpy(positions).to(self.device)
        logits, present = self._run(self.module.step, fed, memory, src_mask, past, where)
        return logits.float().cpu().numpy(), tuple(present)

    def concat(self, parts: list[Any]) -> Any:
        """The tensors joined on the batch axis (one alone is not copied)."""
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def pad(self, array: Any, axis: int, length: int) -> Any:
        """The tensor padded with zeros (False) at the end of `axis` up to `length`."""
        shape = list(array.shape)
        shape[axis] = length - shape[axis]
        return torch.cat((array, array.new_zeros(shape)), dim=axis)

    def _run(self, function: Any, *args: Any) -> Any:
        """`function(*args)` with the module in eval mode (restored after) and no gradients."""
        training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                return function(*args)
        finally:
            self.module.train(training)


def _encode(module: Any, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[Any, Any]:
    memory = tuple(module.encode(src, src_mask))
    return memory, tuple(module.initial_past(memory, src_mask))


def _memory_source_axes(module: Any, device: torch.device) -> tuple[int | None, ...]:
    """The axis of each memory tensor that runs over the source: the one whose size follows
    the source's length (None where none does), from sources of 1 and 2 tokens."""
    shapes = []
    for length in (1, min(2, int(module.max_source_length))):
        src = torch.zeros((1, length), dtype=torch.long, device=device)
        memory = module.encode(src, torch.ones_like(src, dtype=torch.bool))
        shapes.append([tuple(t.shape) for t in memory])
    return changed_axes(shapes[0], shapes[1])


__all__ = ["TorchSeq2SeqDecoder"]
