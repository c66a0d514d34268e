"""Hugging Face causal LMs (GPT-2, Llama) from a local folder, fully fine-tuned or with LoRA.

The models are tiny and randomly initialised, saved with save_pretrained to a temporary folder
and loaded from there like a user's own model: nothing comes from the hub.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ladder.errors import ArtifactError, ConfigError
from ladder.models.causal_lm import CausalLM, CausalLMConfig, LoraConfig, load_causal_lm, load_saved

VOCAB, BLOCK = 100, 64


def tiny_gpt2():
    from transformers import GPT2Config

    # bos/eos inside the tiny vocabulary (GPT-2's own 50256 is not), so transformers stays quiet
    return GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=BLOCK,
                      bos_token_id=0, eos_token_id=0)  # fmt: skip


def tiny_llama(**sizes: int):
    from transformers import LlamaConfig

    shape = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2} | sizes
    return LlamaConfig(num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB,
                       max_position_embeddings=BLOCK, bos_token_id=0, eos_token_id=0,
                       **shape)  # fmt: skip


def save_model(hf_config, folder: Path) -> Path:
    """A random model of `hf_config` written as save_pretrained does, with a tokenizer.json."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(hf_config).save_pretrained(folder)
    vocab = {f"t{i}": i for i in range(VOCAB)}
    Tokenizer(WordLevel(vocab, unk_token="t0")).save(str(folder / "tokenizer.json"))
    (folder / "README.md").write_text("not part of the model\n")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("causal_lm")
    return {
        "gpt2": save_model(tiny_gpt2(), root / "gpt2"),
        "llama": save_model(tiny_llama(), root / "llama"),
    }


def load(folder: Path, **settings) -> CausalLM:
    torch.manual_seed(0)  # LoRA's A matrices are random
    return load_causal_lm(CausalLMConfig(path=str(folder), **settings))


def tokens(batch: int = 2, seq: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def train_steps(model: CausalLM, steps: int = 3) -> None:
    """A few AdamW steps of next-token prediction on random tokens."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for step in range(steps):
        idx = tokens(seed=10 + step)
        logits, _ = model(idx[:, :-1])  # (batch, seq-1, vocab)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), idx[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def is_lora(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


# ----------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    cfg = CausalLMConfig(path="m", lora=LoraConfig())
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (8, 16, 0.05)
    assert cfg.lora.target_modules is None and cfg.gradient_checkpointing is False
    assert CausalLMConfig(path="m").lora is None


@pytest.mark.parametrize(
    "bad",
    [{}, {"path": ""}, {"path": "m", "lr": 1}, {"path": "m", "lora": {"rank": 4}},
     {"path": "m", "lora": {"r": 0}}, {"path": "m", "lora": {"target_modules": []}}],
)  # fmt: skip
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ValidationError):
        CausalLMConfig(**bad)


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_loads_and_gives_logits(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family]).eval()
    assert (model.block_size, model.vocab_size) == (BLOCK, VOCAB)
    logits, present = model(tokens(3, 7))
    assert logits.shape == (3, 7, VOCAB)
    assert present.get_seq_length() == 7


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_kv_cache_matches_full_forward(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family]).eval()
    idx = tokens(2, 12)
    with torch.no_grad():
        full, _ = model(idx)
        parts, past = [], None
        for chunk in (idx[:, :5], idx[:, 5:6], idx[:, 6:7], idx[:, 7:]):  # a prompt, then steps
            logits, past = model(chunk, past)
            parts.append(logits)
    assert past.get_seq_length() == 12
    assert (torch.cat(parts, dim=1) - full).abs().max().item() <= 1e-4


def test_longer_than_block_size_is_refused(folders: dict[str, Path]) -> None:
    model = load(folders["gpt2"]).eval()
    _, past = model(tokens(1, BLOCK))
    with pytest.raises(ValueError, match="block_size of 64"):
        model(tokens(1, 1), past)


# ----------------------------------------------------------------------------- LoRA


@pytest.mark.parametrize(
    ("family", "targets"), [("gpt2", {"c_attn"}), ("llama", {"q_proj", "v_proj"})]
)
def test_lora_defaults_to_attention_input_projections(
    folders: dict[str, Path], family: str, targets: set[str]
) -> None:
    model = load(folders[family], lora={})
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(is_lora(n) for n in trained)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trained} == targets


def test_lora_trainable_fraction(tmp_path: Path) -> None:
    # At hidden 64 the rank-8 adapters are ~4% of the model (r * (64 + 64) against 64 * 64 per
    # projection); from hidden 256, 4 layers (the MLP dominates) they are under 1%.
    folder = save_model(tiny_llama(hidden_size=256, intermediate_size=688, num_hidden_layers=4),
                        tmp_path / "llama")  # fmt: skip
    model = load(folder, lora={})
    fraction = model.trainable_params() / model.total_params()
    assert model.trainable_params() == 4 * 8 * ((256 + 256) + (256 + 128))  # layers * r * (q + v)
    assert fraction <= 0.01, fraction


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_lora_training_changes_only_adapters(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family], lora={"dropout": 0.0})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_steps(model)
    for name, param in model.named_parameters():
        changed = not torch.equal(before[name], param)
        assert changed == is_lora(name), name


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_merged_adapters_give_the_same_logits(folders: dict[str, Path], family: str) -> None:
    model = load(folders[family], lora={"target_modules": None})
    train_steps(model)
    idx = tokens()
    with torch.no_grad():
        unmerged, _ = model(idx)
        assert model.merge_and_unload() is model
        merged, _ = model(idx)
    assert not model.lora and type(model.model).__name__.endswith(("LMHeadModel", "CausalLM"))
    assert not any(is_lora(n) for n, _ in model.named_parameters())
    assert (merged - unmerged).abs().max().item() <= 1e-5


def test_lora_on_chosen_layers_and_checkpointing(folders: dict[str, Path]) -> None:
    model = load(folders["llama"], lora={"target_modules": ["down_proj"]},
                 gradient_checkpointing=True)  # fmt: skip
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all(".down_proj.lora_" in n for n in trained)
    model.train()
    logits, present = model(tokens())
    assert present is None  # no cache while checkpointing recomputes the forward
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    assert model(tokens())[1] is not None


def test_full_fine_tuning_trains_everything(folders: dict[str, Path]) -> None:
    model = load(folders["gpt2"])
    assert model.trainable_params() == model.total_params() > 0
    assert model.merge_and_unload() is model and not model.lora  # no adapters: nothing to merge


# ----------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(("family", "lora"), [("gpt2", {}), ("llama", {}), ("llama", None)])
def test_save_then_load_saved_gives_identical_logits(
    folders: dict[str, Path], tmp_path: Path, family: str, lora: dict | None
) -> None:
    from transformers import AutoModelForCausalLM

    model = load(folders[family], lora=lora)
    train_steps(model)
    idx = tokens()
    with torch.no_grad():
        expected, _ = model(idx)
        model.save(tmp_path / "out")
        assert model.lora == (lora is not None)  # saving merges a copy, not the model
        assert torch.equal(model(idx)[0], expected)
        loaded = load_saved(tmp_path / "out").eval()
        assert not loaded.lora and loaded.block_size == BLOCK
        assert (loaded(idx)[0] - expected).abs().max().item() <= 1e-5
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert "README.md" not in files and "adapter_config.json" not in files
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (
        folders[family] / "tokenizer.json"
    ).read_bytes()
    # a plain transformers folder: the LoRA-free export loads without ladder or peft
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        assert torch.equal(plain(idx).logits, loaded(idx)[0])


def test_save_without_a_tokenizer(folders: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "bare"
    source.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(folders["gpt2"] / name, source / name)
    load(source).save(tmp_path / "out")
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / "out").iterdir()}
    assert not (tmp_path / "out" / "tokenizer.json").exists()


# ----------------------------------------------------------------------------- bad input


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path / "nowhere")
    assert "nowhere does not exist" in one_line(exc) and "save_pretrained" in one_line(exc)


def test_file_instead_of_folder(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="is not a folder") as exc:
        load(folders["gpt2"] / "config.json")
    one_line(exc)


def test_folder_without_config(folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(folders["gpt2"] / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    assert "has no config.json" in one_line(exc) and "save_pretrained" in one_line(exc)


def test_folder_without_weights(folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(folders["gpt2"] / "config.json", tmp_path / "config.json")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    message = one_line(exc)
    assert "has no weights" in message
    for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"):
        assert name in message


def test_shards_missing(folders: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(folders["gpt2"] / "config.json", tmp_path / "config.json")
    shard = "model-00001-of-00002.safetensors"
    index = {"metadata": {}, "weight_map": {"transformer.wte.weight": shard}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    message = one_line(exc)
    assert "cannot load the weights" in message and shard in message


def test_not_a_causal_lm(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    bert = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, vocab_size=VOCAB)  # fmt: skip
    BertModel(bert).save_pretrained(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load(tmp_path)
    message = one_line(exc)
    assert "a bert model (BertConfig): an encoder" in message and "not a causal LM" in message
    assert "GPT-2, Llama or Qwen" in message


def test_unknown_lora_target(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as exc:
        load(folders["gpt2"], lora={"target_modules": ["c_attn", "q_proj", "ln_1"]})
    message = one_line(exc)
    assert message.startswith("config: lora.target_modules: q_proj, ln_1: no linear layer")
    assert message.endswith("its linear layers are: c_attn, c_proj, c_fc, lm_head")


def test_load_saved_wants_safetensors(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist") as exc:
        load_saved(tmp_path / "nowhere")
    one_line(exc)
    shutil.copy(folders["gpt2"] / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")  # never unpickled
    with pytest.raises(ArtifactError) as exc:
        load_saved(tmp_path)
    assert "has no weights: none of model.safetensors, model.safetensors.index.json" in one_line(
        exc
    )
