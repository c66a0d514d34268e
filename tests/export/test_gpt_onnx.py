"""The GPT on ONNX Runtime: export with the KV cache as inputs and outputs, logits within 1e-4
of PyTorch's (prompt, cached chunks, decode steps; learned and rotary positions; batches),
the torch-free `OnnxDecoder` (no torch import, greedy tokens equal to TorchDecoder's, batched
decode of sequences of different lengths), int8 dynamic quantization, and the errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from ladder.compress.quantize import quantize_gpt_onnx
from ladder.errors import LadderError
from ladder.export.gpt_onnx import TOLERANCE, export_gpt, verify_gpt_onnx
from ladder.export.onnx import ExportError
from ladder.export.onnx_decoder import OnnxDecoder, past_names, present_names
from ladder.generate.decoders import TorchDecoder
from ladder.generate.stream import SamplingParams, stream_ids
from ladder.models.gpt import GPTConfig, build_gpt

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 12}
VOCAB = 13
POSITIONS = ["learned", "rotary"]
GREEDY = SamplingParams(max_new_tokens=30, temperature=0)  # 30 > block_size: re-prefills


def _model(positions: str, seed: int = 0, **changes) -> nn.Module:
    torch.manual_seed(seed)
    return build_gpt(GPTConfig(**{**TINY, **changes}, positions=positions), VOCAB).eval()


@pytest.fixture(scope="module", params=POSITIONS)
def exported(request) -> tuple[nn.Module, bytes]:
    model = _model(request.param)
    return model, export_gpt(model)


def _ids(batch: int, seq: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, seq), dtype=np.int64)


def test_graph_names_and_dynamic_axes(exported):
    _, graph = exported
    proto = onnx.load_from_string(graph)
    onnx.checker.check_model(proto)
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    assert inputs == ["input_ids", "past_key_0", "past_value_0", "past_key_1", "past_value_1"]
    assert inputs == ["input_ids", *past_names(2)]
    assert outputs == ["logits", *present_names(2)]

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    by_name = {v.name: v for v in [*proto.graph.input, *proto.graph.output]}
    assert dims(by_name["input_ids"]) == ["batch", "new"]
    assert dims(by_name["past_key_1"]) == ["batch", 2, "past", 8]
    assert dims(by_name["logits"]) == ["batch", "new", VOCAB]
    assert dims(by_name["present_value_0"]) == ["batch", 2, "total", 8]


def test_the_tied_embedding_is_stored_once(exported):
    _, graph = exported
    tables = [
        tuple(t.dims) for t in onnx.load_from_string(graph).graph.initializer if VOCAB in t.dims
    ]
    assert tables == [(16, VOCAB)]


def test_an_untied_head_exports_too():
    model = _model("rotary")
    model.lm_head.weight = nn.Parameter(model.wte.weight.detach() * 2)
    assert verify_gpt_onnx(model, export_gpt(model)) <= TOLERANCE


def test_logits_and_cache_match_pytorch_for_prompt_chunks_and_steps(exported):
    model, graph = exported
    runtime = OnnxDecoder(graph, VOCAB, TINY["block_size"])
    past, cache, worst = None, None, 0.0
    # batch 3: a 4-token prompt, a 3-token chunk after the cache, then one token at a time
    for seq, seed in [(4, 0), (3, 1), (1, 2), (1, 3), (1, 4)]:
        ids = _ids(3, seq, seed)
        with torch.inference_mode():
            want, past = model(torch.from_numpy(ids), past)
        got, cache = runtime.forward(ids, cache)
        assert got.shape == (3, seq, VOCAB)
        worst = max(worst, float(np.abs(got - want.numpy()).max()))
        torch_cache = [tensor.numpy() for kv in past for tensor in kv]  # key_0, value_0, ...
        for array, tensor in zip(cache, torch_cache, strict=True):
            assert array.shape == tensor.shape
            np.testing.assert_allclose(array, tensor, atol=TOLERANCE)
    assert worst <= TOLERANCE
    assert cache[0].shape == (3, 2, 10, 8)


def test_verify_returns_the_max_difference(exported):
    model, graph = exported
    diff = verify_gpt_onnx(model, graph, prompt_length=6, steps=5, batch=3)
    assert 0 <= diff <= TOLERANCE
    assert model.training is False


def test_export_keeps_the_training_mode_and_refuses_other_models():
    model = _model("learned").train()
    export_gpt(model)
    assert model.training
    with pytest.raises(ExportError, match="exports ladder's GPT; got Linear"):
        export_gpt(nn.Linear(2, 2))


def test_verify_fails_on_the_graph_of_another_model(exported):
    model, graph = exported
    other = _model(model.config.positions, seed=1)  # same shapes, other weights
    with pytest.raises(
        ExportError, match=r"logits differ from PyTorch's by .* \(tolerance 1e-04\)"
    ):
        verify_gpt_onnx(other, graph)
    deeper = _model(model.config.positions, n_layer=3)
    with pytest.raises(
        ExportError, match="graph has 2 layers of 2 heads of size 8; the model has 3"
    ):
        verify_gpt_onnx(deeper, graph)
    wider = build_gpt(GPTConfig(**TINY, positions=model.config.positions), VOCAB + 1)
    with pytest.raises(ExportError, match="vocab_size=14, but the graph's logits have 13"):
        verify_gpt_onnx(wider, graph)
    with pytest.raises(ExportError, match="invalid"):
        verify_gpt_onnx(model, b"not a graph")


def test_greedy_tokens_equal_the_torch_decoders(exported):
    model, graph = exported
    prompt = [1, 2, 3, 4, 5]
    want = list(stream_ids(TorchDecoder(model), prompt, GREEDY))
    got = list(stream_ids(OnnxDecoder(graph, VOCAB, TINY["block_size"]), prompt, GREEDY))
    assert got == want
    assert len(got) == GREEDY.max_new_tokens


def test_decode_batches_sequences_of_different_lengths(exported):
    model, graph = exported
    runtime, reference = OnnxDecoder(graph, VOCAB, TINY["block_size"]), TorchDecoder(model)
    prompts = [[1, 2], [3, 4, 5, 6, 7], [8, 9], [10]]
    states = [runtime.prefill(p)[1] for p in prompts]
    torch_states = [reference.prefill(p)[1] for p in prompts]
    for step in range(3):
        tokens = [(step + i) % VOCAB for i in range(len(prompts))]
        logits, states = runtime.decode(tokens, states)
        want, torch_states = reference.decode(tokens, torch_states)
        assert logits.shape == (4, VOCAB) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, want, atol=TOLERANCE)
    assert [s[0].shape[2] for s in states] == [len(p) + 3 for p in prompts]
    assert all(s[0].shape[0] == 1 for s in states)


def test_the_decoder_runs_without_torch(exported, tmp_path):
    model, graph = exported
    path = tmp_path / "gpt.onnx"
    path.write_bytes(graph)
    script = textwrap.dedent(
        f"""
        import json, sys
        from ladder.export.onnx_decoder import OnnxDecoder
        from ladder.generate.stream import SamplingParams, stream_ids

        decoder = OnnxDecoder({str(path)!r}, {VOCAB}, {TINY["block_size"]})
        params = SamplingParams(max_new_tokens=20, temperature=0)
        tokens = list(stream_ids(decoder, [1, 2, 3], params))
        print(json.dumps({{"tokens": tokens, "torch": "torch" in sys.modules}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    params = SamplingParams(max_new_tokens=20, temperature=0)
    assert result["tokens"] == list(stream_ids(TorchDecoder(model), [1, 2, 3], params))


@pytest.mark.parametrize("positions", POSITIONS)
def test_int8_graph_decodes_close_to_float(positions):
    graph = export_gpt(_model(positions, n_embd=64))  # big enough for int8 to pay
    quantized = quantize_gpt_onnx(graph)
    ops = {n.op_type for n in onnx.load_from_string(quantized).graph.node}
    assert "MatMulInteger" in ops
    assert len(quantized) < 0.5 * len(graph)
    full = OnnxDecoder(graph, VOCAB, TINY["block_size"])
    int8 = OnnxDecoder(quantized, VOCAB, TINY["block_size"])
    ids = _ids(2, 6)
    want, want_cache = full.forward(ids)
    got, got_cache = int8.forward(ids)
    assert got.shape == want.shape
    assert [a.shape for a in got_cache] == [a.shape for a in want_cache]
    assert np.abs(got - want).max() < 0.1  # tiny random weights: logits near zero
    tokens = list(stream_ids(int8, [1, 2, 3], GREEDY))  # greedy tokens may differ from fp32
    assert len(tokens) == GREEDY.max_new_tokens and all(0 <= t < VOCAB for t in tokens)


def test_quantize_refuses_a_graph_without_matmul():
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    graph = onnx.helper.make_model(
        onnx.helper.make_graph([node], "g", [x], [y]),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    with pytest.raises(LadderError, match="nothing to quantize"):
        quantize_gpt_onnx(graph.SerializeToString())


def test_decoder_errors(exported):
    _, graph = exported
    runtime = OnnxDecoder(graph, VOCAB, TINY["block_size"])
    with pytest.raises(ValueError, match="prefill takes 1 to 12 tokens"):
        runtime.prefill([])
    with pytest.raises(ValueError, match="got 13"):
        runtime.prefill(list(range(13)))
    _, full = runtime.prefill([1] * TINY["block_size"])
    with pytest.raises(ValueError, match="12 cached \\+ 1 new tokens exceed the context length"):
        runtime.decode([1], [full])
    with pytest.raises(ValueError, match="2 tokens for 1 states"):
        runtime.decode([1, 2], [full])
    with pytest.raises(ValueError, match="vocab_size=12, but the graph's logits have 13"):
        OnnxDecoder(graph, VOCAB - 1, TINY["block_size"])
    with pytest.raises(ValueError, match=r"context_length must be in \[1, 12\]"):
        OnnxDecoder(graph, VOCAB, TINY["block_size"] + 1)
    x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, 2])
    y = onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [None, 2])
    classifier = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y]
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    with pytest.raises(ValueError, match="not a GPT graph with a KV cache"):
        OnnxDecoder(classifier.SerializeToString(), VOCAB, TINY["block_size"])
