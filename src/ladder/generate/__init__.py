"""Text generation: continuing prompts with a language model.

`decoder` is the contract every model fills (prefill + batched decode steps, numpy logits),
`stream` the numpy sampler and text streaming, `generator` a model with its tokenizer,
`decoders` ladder's own models as decoders; `sampling` is the torch reference loop. The
package itself imports nothing, so the ONNX Runtime path stays free of torch.
"""
