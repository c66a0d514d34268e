"""Hugging Face encoder-decoders (T5, BART) from a local folder, fully fine-tuned or with LoRA.

The models are tiny and randomly initialised, written with save_pretrained (safetensors) and a
tokenizer.json to a temporary folder, and loaded from there like a user's own model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tiny_seq2seq import make_tiny_bart, make_tiny_t5

from ladder.data.pair_tokenizers import PairTokenizer
from ladder.errors import ArtifactError, ConfigError
from ladder.models.pretrained_seq2seq import (
    PretrainedSeq2Seq,
    PretrainedSeq2SeqConfig,
    folder_problem,
    load_pretrained_seq2seq,
    load_saved,
)
from ladder.train.objective import LanguageModeling

SOURCES = ["twenty one", "forty two", "three hundred and five", "seven", "ninety nine"]
TARGETS = ["21", "42", "305", "7", "99"]
TEXTS = SOURCES + TARGETS


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seq2seq")
    return {"t5": make_tiny_t5(root / "t5", TEXTS), "bart": make_tiny_bart(root / "bart", TEXTS)}


def load(folder: Path, **settings) -> PretrainedSeq2Seq:
    torch.manual_seed(0)  # LoRA's A matrices are random
    return load_pretrained_seq2seq(PretrainedSeq2SeqConfig(path=str(folder), **settings))


def batch(folder: Path, rows: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The contract's teacher-forcing batch of some pairs: x (batch, 2, L), y (batch, L)."""
    tokens = PairTokenizer.from_pretrained_folder(folder)
    rows = list(range(len(SOURCES))) if rows is None else rows
    sources = [tokens.source.encode(SOURCES[i]).tolist() for i in rows]
    targets = [tokens.target.encode(TARGETS[i]).tolist() for i in rows]
    side = tokens.target
    length = max(max(map(len, sources)), max(map(len, targets)) + 1)
    x = np.full((len(rows), 2, length), side.pad_id, dtype=np.int64)
    y = np.full((len(rows), length), -100, dtype=np.int64)
    for i, (source, target) in enumerate(zip(sources, targets, strict=True)):
        x[i, 0, : len(source)] = source
        x[i, 1, : len(target) + 1] = [side.bos_id, *target]
        y[i, : len(target) + 1] = [*target, side.eos_id]
    return torch.from_numpy(x), torch.from_numpy(y)


def train_steps(model: PretrainedSeq2Seq, folder: Path, steps: int = 3) -> None:
    """A few AdamW steps of the seq2seq loss on the toy pairs."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = batch(folder)
    model.train()
    for _ in range(steps):
        loss = LanguageModeling().loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def is_lora(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


def step_logits(model: PretrainedSeq2Seq, x: torch.Tensor) -> torch.Tensor:
    """Every decoder position's logits from one `step` at a time: (batch, L, vocab)."""
    source, decoder_input = x[:, 0], x[:, 1]
    mask = source != model.pad_id
    memory = model.encode(source, mask)
    past = model.initial_past(memory, mask)
    steps = []
    for t in range(decoder_input.size(1)):
        logits, present = model.step(decoder_input[:, t : t + 1], memory, mask, past, t)
        assert len(present) == len(past)
        assert all(p.size(2) == q.size(2) + 1 for p, q in zip(present, past, strict=True))
        steps.append(logits)
        past = present
    return torch.stack(steps, dim=1)


# ----------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    cfg = PretrainedSeq2SeqConfig(path="m")
    assert (cfg.max_source_length, cfg.max_target_length) == (128, 128)
    assert cfg.lora is None and cfg.gradient_checkpointing is False


@pytest.mark.parametrize(
    "bad",
    [{}, {"path": ""}, {"path": "m", "lr": 1}, {"path": "m", "lora": {"rank": 4}},
     {"path": "m", "max_source_length": 0}, {"path": "m", "max_target_length": -1}],
)  # fmt: skip
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ValidationError):
        PretrainedSeq2SeqConfig(**bad)


# ----------------------------------------------------------------------------- forward / step


@pytest.mark.parametrize(("family", "ids"), [("t5", (0, 0, 1)), ("bart", (1, 2, 2))])
def test_attributes_and_forward(folders: dict[str, Path], family: str, ids: tuple) -> None:
    model = load(folders[family], max_source_length=32, max_target_length=16).eval()
    rows = json.loads((folders[family] / "config.json").read_text())["vocab_size"]
    assert (model.pad_id, model.bos_id, model.eos_id) == ids
    assert model.vocab_size == model.source_vocab_size == rows
    assert (model.max_source_length, model.max_target_length) == (32, 16)
    x, _ = batch(folders[family])
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (len(SOURCES), x.size(2), rows)


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_source_padding_is_masked(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family]).eval()
    x, _ = batch(folders[family])
    longer = torch.nn.functional.pad(x, (0, 5), value=model.pad_id)  # 5 more pads everywhere
    with torch.no_grad():
        assert (model(longer)[:, : x.size(2)] - model(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_steps_match_teacher_forcing(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family], lora={}).eval()
    x, _ = batch(folders[family])
    with torch.no_grad():
        full = model(x)
        stepped = step_logits(model, x)
    assert (stepped - full).abs().max().item() < 1e-4


def test_memory_and_past_layout(folders: dict[str, Path]) -> None:
    model = load(folders["t5"]).eval()  # 2 decoder layers, 4 heads of 16
    x, _ = batch(folders["t5"])
    source = x[:, 0]
    mask = source != model.pad_id
    with torch.no_grad():
        memory = model.encode(source, mask)
        past = model.initial_past(memory, mask)
        bos = torch.full((len(SOURCES), 1), model.bos_id)
        first, present = model.step(bos, memory, mask, past, 0)
        again, _ = model.step(bos, memory, mask, past, torch.zeros(len(SOURCES), dtype=torch.long))
    n, s = source.shape
    assert memory[0].shape == (n, s, 64)
    assert [t.shape for t in memory[1:]] == [(n, 4, s, 16)] * 4  # cross K, V per layer
    assert [t.shape for t in past] == [(n, 4, 0, 16)] * 4  # self K, V per layer, empty
    assert [t.shape for t in present] == [(n, 4, 1, 16)] * 4
    assert first.shape == (n, model.vocab_size)
    assert torch.equal(first, again)  # the old past was left as it was: continue it twice


def test_one_row_decodes_as_in_its_batch(folders: dict[str, Path]) -> None:
    model = load(folders["bart"]).eval()
    x, _ = batch(folders["bart"])
    with torch.no_grad():
        together = step_logits(model, x)
        alone = step_logits(model, x[3:4])
    assert (together[3:4] - alone).abs().max().item() < 1e-4


# ----------------------------------------------------------------------------- LoRA


@pytest.mark.parametrize(
    ("family", "targets"), [("t5", {"q", "v"}), ("bart", {"q_proj", "v_proj"})]
)
def test_lora_defaults_to_query_and_value(
    folders: dict[str, Path], family: str, targets: set[str]
) -> None:
    model = load(folders[family], lora={"dropout": 0.0})
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(is_lora(n) for n in trained)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trained} == targets
    assert any("encoder" in n for n in trained) and any("decoder" in n for n in trained)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model, folders[family])
    for name, param in model.named_parameters():
        assert (not torch.equal(before[name], param)) == is_lora(name), name


def test_lora_trainable_fraction(tmp_path: Path) -> None:
    # Per layer the rank-8 adapters on q and v add 8 * 2 * d_model * 2 against ~12 d_model^2
    # (encoder) or ~20 d_model^2 (decoder): about 2.7 / d_model of the model, ~1% at 256.
    folder = make_tiny_t5(tmp_path / "t5", TEXTS, d_model=256, d_kv=32, num_heads=8, d_ff=1024)
    model = load(folder, lora={})
    # q and v of 2 encoder self-attentions, 2 decoder self- and 2 cross-attentions
    assert model.trainable_params() == (2 + 2 + 2) * 2 * 8 * (256 + 256)
    fraction = model.trainable_params() / model.total_params()
    assert fraction <= 0.02, fraction


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_merged_adapters_give_the_same_outputs(folders: dict[str, Path], family: str) -> None:
    plain = load(folders[family]).eval()
    model = load(folders[family], lora={"dropout": 0.0})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_B." in name:  # zero at first: the adapters would change nothing
                param.normal_(0, 0.5)
    model.eval()
    x, _ = batch(folders[family])
    with torch.no_grad():
        unmerged = model(x)
        assert (unmerged - plain(x)).abs().max().item() > 1e-2  # the adapters do something
        assert model.merge_and_unload() is model
        merged = model(x)
    assert not model.lora and type(model.model).__name__.endswith("ForConditionalGeneration")
    assert not any(is_lora(n) for n, _ in model.named_parameters())
    assert (merged - unmerged).abs().max().item() <= 1e-5


def test_lora_on_chosen_layers_with_checkpointing(folders: dict[str, Path]) -> None:
    model = load(folders["t5"], lora={"target_modules": ["wi"]}, gradient_checkpointing=True)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all(".wi.lora_" in n for n in trained)
    x, y = batch(folders["t5"])
    model.train()
    LanguageModeling().loss(model(x), y).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_full_fine_tuning_trains_everything(folders: dict[str, Path]) -> None:
    model = load(folders["bart"])
    assert model.trainable_params() == model.total_params() > 0
    assert model.merge_and_unload() is model and not model.lora


# ----------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(("family", "lora"), [("t5", {}), ("bart", {}), ("t5", None)])
def test_save_then_load_saved(
    folders: dict[str, Path], tmp_path: Path, family: str, lora: dict | None
) -> None:
    from transformers import AutoModelForSeq2SeqLM

    model = load(folders[family], lora=lora, max_source_length=48, max_target_length=24)
    train_steps(model, folders[family])
    x, _ = batch(folders[family])
    with torch.no_grad():
        expected = model(x)
        model.save(tmp_path / "out")
        assert model.lora == (lora is not None)  # saving merges a copy, not the model
        loaded = load_saved(tmp_path / "out", max_source_length=48, max_target_length=24).eval()
        assert not loaded.lora and loaded.max_source_length == 48
        assert (loaded(x) - expected).abs().max().item() <= 1e-5
        # a plain transformers folder: it loads without ladder or peft
        plain = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "out").eval()
        source = x[:, 0]
        logits = plain(input_ids=source, attention_mask=source != loaded.pad_id,
                       decoder_input_ids=x[:, 1]).logits  # fmt: skip
        assert torch.equal(logits, loaded(x))
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert "adapter_config.json" not in files
    tokens = PairTokenizer.from_pretrained_folder(tmp_path / "out")
    assert tokens.source.encode("forty two").tolist() == (
        PairTokenizer.from_pretrained_folder(folders[family]).source.encode("forty two").tolist()
    )


# ----------------------------------------------------------------------------- bad input


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_folder_and_file(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path / "nowhere")
    assert "nowhere does not exist; give the folder of an encoder-decoder" in one_line(exc)
    with pytest.raises(ConfigError, match="is not a folder") as exc:
        load(folders["t5"] / "config.json")
    one_line(exc)
    assert folder_problem(str(folders["t5"])) is None


def test_folder_without_config(folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(folders["t5"] / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    assert "has no config.json" in one_line(exc)


def test_folder_without_safetensors(folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(folders["t5"] / "config.json", tmp_path / "config.json")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    assert "has no weights: none of model.safetensors, model.safetensors.index.json" in (
        one_line(exc)
    )
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")  # never unpickled
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    message = one_line(exc)
    assert "has pickled weights only (pytorch_model.bin)" in message
    assert "safe_serialization=True" in message
    with pytest.raises(ArtifactError, match="pickled weights only"):
        load_saved(tmp_path)


def test_decoder_only_model_is_refused(tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16,
                        bos_token_id=0, eos_token_id=0)  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    assert one_line(exc) == (
        f"config: path: {tmp_path} holds a GPT2LMHeadModel (gpt2), a decoder-only model: "
        "use type causal_lm"
    )


def test_encoder_only_model_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    bert = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, vocab_size=50)  # fmt: skip
    BertModel(bert).save_pretrained(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    message = one_line(exc)
    assert "holds a BertModel (bert), an encoder without a decoder" in message
    assert "T5, BART or Marian" in message


def test_lengths_past_the_positions(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as exc:
        load(folders["bart"], max_source_length=200, max_target_length=128)
    assert one_line(exc) == (
        f"config: max_source_length: 200 is more than the 128 positions {folders['bart']} can "
        "take (its max_position_embeddings); set it to 128 or less"
    )
    assert load(folders["t5"], max_source_length=1000).max_source_length == 1000  # relative


def test_missing_decoder_start(folders: dict[str, Path], tmp_path: Path) -> None:
    for name in ("model.safetensors", "config.json"):
        shutil.copy(folders["bart"] / name, tmp_path / name)
    config = json.loads((tmp_path / "config.json").read_text())
    config["decoder_start_token_id"] = None
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    assert "no decoder_start_token_id in config.json or generation_config.json" in one_line(exc)


def test_unknown_lora_target(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as exc:
        load(folders["t5"], lora={"target_modules": ["q", "q_proj"]})
    message = one_line(exc)
    assert message.startswith("config: lora.target_modules: q_proj: no linear layer")
    assert message.endswith("its linear layers are: q, k, v, o, wi, wo, lm_head")
