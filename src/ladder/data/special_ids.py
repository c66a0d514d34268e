"""The reserved token ids of ladder's own sequence-to-sequence tokenizers: every side's
vocabulary starts with padding, the decoder's start token and the end of a sequence, then the
inner tokenizer's ids shifted by N_SPECIAL (a pretrained model keeps its own ids)."""

from __future__ import annotations

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
N_SPECIAL = 3
