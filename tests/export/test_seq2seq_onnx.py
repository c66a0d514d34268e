"""The seq2seq models on ONNX Runtime: the encoder and decoder-step graphs of the Transformer
(self-attention keys and values as the past) and the recurrent model (GRU, LSTM), their names
and dynamic axes, logits within 1e-4 of PyTorch's, greedy / beam / sampled targets equal to
TorchSeq2SeqDecoder's, the torch-free OnnxSeq2SeqDecoder, and the errors."""

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

from ladder.export.onnx import ExportError
from ladder.export.seq2seq_onnx import (
    METADATA_KEY,
    TOLERANCE,
    OnnxSeq2SeqDecoder,
    export_seq2seq,
    verify_seq2seq_onnx,
)
from ladder.generate.seq2seq_search import SearchParams, search
from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder
from ladder.models.seq2seq_rnn import Seq2SeqRNNConfig, build_seq2seq_rnn
from ladder.models.seq2seq_transformer import Seq2SeqTransformerConfig, build_seq2seq_transformer

SOURCE_VOCAB, TARGET_VOCAB = 17, 19
LIMITS = {"max_source_length": 12, "max_target_length": 10}
SOURCES = [[5, 9, 3, 12], [7], [16, 4, 4, 8, 10, 3, 11, 6, 13], [9, 9, 5], [3, 3]]
KINDS = ["transformer", "gru-bahdanau", "lstm-luong"]


def build(kind: str, seed: int = 0) -> nn.Module:
    """A tiny model in eval mode with large random weight matrices (std 0.5), for varied,
    source-dependent targets. (With std 1 the GRU turns chaotic: float32 rounding alone moves
    its logits by 1e-4 within a few steps.)"""
    torch.manual_seed(seed)
    if kind == "transformer":
        config = Seq2SeqTransformerConfig(
            d_model=16, n_head=2, n_encoder_layers=1, n_decoder_layers=2, **LIMITS
        )
        model = build_seq2seq_transformer(config, SOURCE_VOCAB, SOURCE_VOCAB)
    else:
        cell, attention = kind.split("-")
        config = Seq2SeqRNNConfig(
            cell=cell, attention=attention, embedding_dim=8, hidden_size=12, num_layers=2, **LIMITS
        )
        model = build_seq2seq_rnn(config, SOURCE_VOCAB, TARGET_VOCAB)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape) * 0.5)
    return model.eval()


@pytest.fixture(scope="module", params=KINDS)
def exported(request):
    model = build(request.param)
    return request.param, model, *export_seq2seq(model)


def ort_decoder(model, encoder, decoder, **changes):
    args = {
        "vocab_size": model.vocab_size,
        "bos_id": model.bos_id,
        "eos_id": model.eos_id,
        "max_source_length": model.max_source_length,
        "max_target_length": model.max_target_length,
        **changes,
    }
    return OnnxSeq2SeqDecoder(encoder, decoder, **args)


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_graph_names_axes_and_metadata(exported):
    kind, model, encoder, decoder = exported
    enc, dec = onnx.load_from_string(encoder), onnx.load_from_string(decoder)
    for proto in (enc, dec):
        onnx.checker.check_model(proto)
        meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
        assert meta == {
            "pad_id": 0,
            "bos_id": 1,
            "eos_id": 2,
            "source_vocab_size": SOURCE_VOCAB,
            "vocab_size": model.vocab_size,
            **LIMITS,
        }
    enc_in = {v.name: dims(v) for v in enc.graph.input}
    enc_out = {v.name: dims(v) for v in enc.graph.output}
    dec_in = {v.name: dims(v) for v in dec.graph.input}
    dec_out = {v.name: dims(v) for v in dec.graph.output}
    assert enc_in == {"source_ids": ["batch", "source"], "source_mask": ["batch", "source"]}
    assert dec_out["logits"] == ["batch", model.vocab_size]
    if kind == "transformer":  # memory: cross-attention K/V; past: self-attention K/V
        memory = [f"memory_{i}" for i in range(4)]
        past = [f"past_{i}" for i in range(4)]
        assert list(enc_out) == [*memory, *(f"initial_past_{i}" for i in range(4))]
        assert list(dec_in) == ["tokens", *memory, "source_mask", *past, "position"]
        assert list(dec_out) == ["logits", *(f"present_{i}" for i in range(4))]
        assert dec_in["memory_3"] == ["batch", 2, "source", 8]
        assert enc_out["initial_past_0"][0:3:2] == ["batch", "past"]  # empty: time 0
        assert dec_in["past_0"] == ["batch", 2, "past", 8]
        assert dec_out["present_3"] == ["batch", 2, "total", 8]
        assert dec_in["position"] == ["batch"]
    else:  # memory: outputs, attention keys, final states; past: GRU (h,), LSTM (h, c)
        n_past = 2 if kind.startswith("lstm") else 1
        past = [f"past_{j}" for j in range(n_past)]
        assert list(enc_out) == [
            "memory_0",
            "memory_1",
            "memory_2",
            *(f"initial_{p}" for p in past),
        ]
        # the step reads neither the final states nor the position: their inputs are left out
        assert list(dec_in) == ["tokens", "memory_0", "memory_1", "source_mask", *past]
        assert dec_in["memory_0"] == ["batch", "source", 24]
        assert dec_in["past_0"] == dec_out["present_0"] == ["batch", 2, 12]


def test_onnx_runtime_logits_match_pytorch(exported):
    _, model, encoder, decoder = exported
    steps = model.max_target_length  # every position, far past the traced one
    assert verify_seq2seq_onnx(model, encoder, decoder, steps=steps) <= TOLERANCE
    assert verify_seq2seq_onnx(model, encoder, decoder, steps=3, seed=5) <= TOLERANCE


@pytest.mark.parametrize(
    "params",
    [
        SearchParams(),
        SearchParams(beam_size=3),
        SearchParams(beam_size=4, length_penalty=0.6, no_repeat_ngram_size=2),
        SearchParams(temperature=1.0, top_k=5, seed=0),
    ],
)
def test_onnx_runtime_decodes_the_targets_of_pytorch(exported, tmp_path, params):
    _, model, encoder, decoder = exported
    (tmp_path / "encoder.onnx").write_bytes(encoder)
    (tmp_path / "decoder.onnx").write_bytes(decoder)
    runtime = ort_decoder(model, tmp_path / "encoder.onnx", str(tmp_path / "decoder.onnx"))
    want = search(TorchSeq2SeqDecoder(model), SOURCES, params)
    assert search(runtime, SOURCES, params) == want
    assert [search(runtime, [s], params)[0] for s in SOURCES] == want


def test_onnx_runtime_steps_states_of_other_lengths_together(exported):
    _, model, encoder, decoder = exported
    runtime = ort_decoder(model, encoder, decoder)
    first, second = runtime.encode(SOURCES[:2]), runtime.encode(SOURCES[2:4])
    _, first = runtime.start(first)
    _, first = runtime.decode([5, 6], first)
    _, second = runtime.start(second)
    mixed, _ = runtime.decode([7, 8, 9, 10], first + second)
    apart = np.concatenate([runtime.decode([7, 8], first)[0], runtime.decode([9, 10], second)[0]])
    np.testing.assert_allclose(mixed, apart, atol=1e-5)
    assert mixed.dtype == np.float32


def test_the_onnx_decoder_runs_without_torch(tmp_path):
    model = build("transformer")
    encoder, decoder = export_seq2seq(model)
    (tmp_path / "encoder.onnx").write_bytes(encoder)
    (tmp_path / "decoder.onnx").write_bytes(decoder)
    script = textwrap.dedent(
        f"""
        import json, sys
        from ladder.export.seq2seq_onnx import OnnxSeq2SeqDecoder
        from ladder.generate.seq2seq_search import beam_search, greedy
        decoder = OnnxSeq2SeqDecoder(
            {str(tmp_path / "encoder.onnx")!r}, {str(tmp_path / "decoder.onnx")!r},
            vocab_size={model.vocab_size}, bos_id=1, eos_id=2, max_source_length=12,
            max_target_length=10, threads=1,
        )
        sources = {SOURCES!r}
        print(json.dumps([greedy(decoder, sources), beam_search(decoder, sources, 3)]))
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    torch_decoder = TorchSeq2SeqDecoder(model)
    want = [
        search(torch_decoder, SOURCES, SearchParams()),
        search(torch_decoder, SOURCES, SearchParams(beam_size=3)),
    ]
    assert json.loads(done.stdout) == want


def test_verify_catches_graphs_of_another_model():
    model = build("gru-luong")
    encoder, decoder = export_seq2seq(build("gru-luong", seed=1))
    with pytest.raises(ExportError, match="logits differ from PyTorch's by"):
        verify_seq2seq_onnx(model, encoder, decoder)
    with pytest.raises(ExportError, match="the decoder graph is invalid"):
        verify_seq2seq_onnx(model, encoder, b"not a graph")


def test_export_errors_name_the_problem():
    with pytest.raises(ExportError, match="Linear is not a seq2seq module: it lacks pad_id"):
        export_seq2seq(nn.Linear(2, 2))
    model = build("gru-none").train()
    model.encode = lambda src, src_mask: (_ for _ in ()).throw(RuntimeError("no encoder here"))
    with pytest.raises(ExportError, match="cannot run the module's encode and step"):
        export_seq2seq(model)
    assert model.training  # the mode is restored


def test_the_onnx_decoder_checks_its_graphs(exported):
    _, model, encoder, decoder = exported
    with pytest.raises(ValueError, match="not a seq2seq encoder graph"):
        ort_decoder(model, decoder, decoder)
    with pytest.raises(ValueError, match="vocab_size=7, but the graph's logits have"):
        ort_decoder(model, encoder, decoder, vocab_size=7)
    with pytest.raises(ValueError, match=r"max_target_length must be in \[1, 10\]"):
        ort_decoder(model, encoder, decoder, max_target_length=11)


@pytest.mark.slow  # a few seconds: Hugging Face's T5 runs slowly step by step
def test_a_pretrained_encoder_decoder_decodes_and_exports_alike(tmp_path):
    from tiny_seq2seq import make_tiny_t5

    from ladder.models.pretrained_seq2seq import PretrainedSeq2SeqConfig, load_pretrained_seq2seq

    folder = make_tiny_t5(tmp_path / "t5", ["twenty one", "forty two", "21", "42"])
    model = load_pretrained_seq2seq(PretrainedSeq2SeqConfig(path=str(folder))).eval()
    encoder, decoder = export_seq2seq(model)
    assert verify_seq2seq_onnx(model, encoder, decoder, steps=3) <= TOLERANCE
    params = SearchParams(beam_size=2, max_new_tokens=5)
    sources, torch_decoder = SOURCES[:3], TorchSeq2SeqDecoder(model)
    want = search(torch_decoder, sources, params)
    assert [search(torch_decoder, [s], params)[0] for s in sources] == want
    assert search(ort_decoder(model, encoder, decoder), sources, params) == want
