"""The formulas under every neural rung, in NumPy: one concept per module, the formula in its
docstring and the code right under it, forward and backward by hand (no autograd), each checked
against PyTorch by the tests (`tests/scratch/`). `docs/scratch.md` is the guided tour.

- dense network: `dense` (and `Flatten`), `activations`, `losses`, `dropout`, `penalties`,
  `init`, `network` (`Sequential`), `mlp`;
- convolutional network: `conv` (im2col), `pooling`, `lenet`;
- recurrent network: `embedding`, `rnn`, `lstm`, `gru` (sharing `recurrence`), `text_rnn`;
- learning: `optim` (SGD, momentum, AdaGrad, RMSProp, Adam, AdamW), `gradcheck`.

The scratch rungs (`scratch_mlp`, `scratch_cnn`, `scratch_lstm`) train `mlp`, `lenet` and
`text_rnn` through ladder's Trainer (`ladder.models.scratch_models`).
"""
