"""Claims of the generation ladder:

1. KV cache: generating 256 new tokens with `ladder.models.gpt` and the cache is >= 5x faster
   than recomputing the full context at every step (greedy, same tokens both ways), after a
   256-token prompt (the context then fills its 512 positions); the figure after a 32-token
   prompt is printed too: there the network is so small that per-step overhead dominates;
2. LoRA: <= 1% of a tiny Llama's parameters trainable; merged and unmerged adapters give the
   same logits (<= 1e-5);
3. the ladder is a ladder: `ladder run` on a corpus (contiguous 80/10/10 split; `--corpus`:
   builtin:pydoc, the English help topics that ship with Python, about 0.5 MB; `stdlib`, the
   docstrings of Python's standard library, about 1.5 MB; or a text file), Kneser-Ney n-grams
   of order 1-7 on characters, then an LSTM LM on characters and a GPT (nanoGPT's CPU "baby"
   size, rotary positions, a 128-token context) on byte-level BPE tokens, each network trained
   for the same time: bits per byte on the same test text, with bootstrap intervals and
   paired tests.

The Trainer against a plain loop is benchmarks/lm_trainer.py; continuous batching is
benchmarks/serve_generation.py.
Run: .venv/bin/python benchmarks/generation.py [--seconds 120] [--rounds 3] [--out DIR]
     [--corpus pydoc|stdlib|FILE]
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

import ladder
from ladder.generate.sampling import generate_ids
from ladder.models.gpt import GPTConfig, build_gpt

BLOCK = 64  # nanoGPT's CPU "baby" configuration: 4 layers, 4 heads, width 128, block 64
BPE_VOCAB = 1024
PROBE = 100  # steps of the run that times each network
BABY = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, dropout=0.0)


def kv_cache_speedup(rounds: int, prompt_tokens: int, new_tokens: int = 256) -> tuple[float, float]:
    """Median seconds for `new_tokens` greedy tokens after a `prompt_tokens` prompt, without
    and with the cache (a baby GPT whose 512-position context holds prompt and new tokens)."""
    torch.manual_seed(0)
    model = build_gpt(BABY.model_copy(update={"block_size": 512}), vocab_size=100)
    prompt = [1 + i % 99 for i in range(prompt_tokens)]

    def timed(use_cache: bool) -> tuple[float, list[int]]:
        start = time.perf_counter()
        tokens = list(generate_ids(model, prompt, new_tokens, temperature=0, use_cache=use_cache))
        return time.perf_counter() - start, tokens

    timed(True), timed(False)  # warm-up
    without, with_cache = [], []
    for _ in range(rounds):
        seconds, full = timed(False)
        without.append(seconds)
        seconds, cached = timed(True)
        with_cache.append(seconds)
        assert full == cached, "the cache changed the greedy tokens"
    return statistics.median(without), statistics.median(with_cache)


def stdlib_docstrings(path: Path) -> Path:
    """Write the docstrings (over 80 characters) of the modules, classes and functions of
    Python's standard library (tests and idlelib left out), about 1.5 MB of English with code
    examples, to `path`: a corpus three times pydoc's that every Python has offline."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3"}
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    parts = []
    for source in sorted(root.rglob("*.py")):
        if skip & set(source.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, kinds) else None
            if doc and len(doc) > 80:
                parts.append(doc.strip())
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def ladder_at_equal_time(seconds: float, folder: Path, source: str) -> pd.DataFrame:
    """`ladder run` on `source` (contiguous 80/10/10 split): n-grams of order 1-7, an LSTM LM
    and a GPT, each network trained for about `seconds`. A first run of PROBE steps measures
    each network's step time; the second gives each the steps that fill `seconds`. Returns
    the second run's leaderboard."""
    models = [{"name": f"ngram{k}", "type": "ngram", "order": k} for k in range(1, 8)]
    bpe = {"tokenizer": "bpe", "vocab_size": BPE_VOCAB}  # ~2.8 bytes a token: more context
    networks = {  # the LSTM on characters (char-rnn), the GPT on BPE: the best of each we tried
        "lstm": {"type": "rnn_lm", "block_size": BLOCK, "dropout": 0.2},  # 2 layers, 256 wide
        "gpt": {  # the baby's size with rotary positions, no biases, twice the context and rate
            "type": "gpt",
            **BABY.model_dump(),
            **{"block_size": 2 * BLOCK, "positions": "rotary", "bias": False, "dropout": 0.1},
            **{"optimizer": {"lr": 2.0e-3}, "text": bpe},
        },
    }
    config = {
        "name": "pydoc",
        "data": {
            "source": source,
            "task": "generation",
            "split": {"val": 0.1, "test": 0.1},
        },
        "train": {"batch_size": 12, "eval_batches": 8, "early_stopping": None},
        "evaluate": {"bootstrap": 1000, "sample_tokens": 60},
    }
    probe = {**config, "models": [{"name": n, **m, "max_steps": PROBE, "eval_interval": PROBE}
                                  for n, m in networks.items()]}  # fmt: skip
    ladder.run(_write(folder / "probe.yaml", probe), out=folder / "probe")
    steps = {}
    for name in networks:
        metrics = json.loads((folder / f"probe/models/{name}/metrics.json").read_text())
        steps[name] = max(PROBE, round(PROBE * seconds / metrics["train_seconds"]))
    config["models"] = models + [
        {"name": n, **m, "max_steps": steps[n], "eval_interval": max(1, steps[n] // 10)}
        for n, m in networks.items()
    ]
    result = ladder.run(_write(folder / "ladder.yaml", config), out=folder / "run")
    return result.leaderboard


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def lora_figures() -> tuple[float, float, int]:
    """(trainable share of parameters with LoRA r=8 on the attention query/value projections,
    max |logit difference| between merged and unmerged adapters, total parameters) on a tiny
    random Llama (hidden 256, 4 layers, vocabulary 32,000) saved to and loaded from a folder."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from ladder.models.causal_lm import CausalLMConfig, LoraConfig, load_causal_lm

    with tempfile.TemporaryDirectory() as tmp:
        hf = LlamaConfig(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, vocab_size=32000,
                         max_position_embeddings=256)  # fmt: skip
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(hf).save_pretrained(tmp)
        model = load_causal_lm(CausalLMConfig(path=tmp, lora=LoraConfig(r=8, alpha=16)))
        with torch.no_grad():  # adapters that change something (B starts at zero)
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
        share = model.trainable_params() / model.total_params()
        idx = torch.randint(0, 32000, (2, 48), generator=torch.Generator().manual_seed(1))
        model.eval()
        with torch.no_grad():
            unmerged, _ = model(idx)
            merged, _ = model.merge_and_unload()(idx)
        return share, float((merged - unmerged).abs().max()), model.total_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="each network's training time")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the KV-cache timing")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    parser.add_argument(
        "--corpus",
        default="pydoc",
        help="pydoc (builtin:pydoc), stdlib (the standard library's docstrings) or a text file",
    )
    args = parser.parse_args()
    for prompt_tokens in (256, 32):
        without, with_cache = kv_cache_speedup(max(1, args.rounds), prompt_tokens)
        print(
            f"256 new tokens after a {prompt_tokens}-token prompt: recomputing {without:.2f} s, "
            f"KV cache {with_cache:.2f} s: {without / with_cache:.1f}x faster (goal >= 5x)"
        )
    share, diff, total = lora_figures()
    print(
        f"LoRA r=8 on a {total / 1e6:.1f}M-parameter Llama (hidden 256): {100 * share:.2f}% "
        f"trainable (goal <= 1%); merged vs unmerged logits differ by {diff:.1e} (goal <= 1e-5)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source = {"pydoc": "builtin:pydoc"}.get(args.corpus, args.corpus)
        if args.corpus == "stdlib":
            source = str(stdlib_docstrings(folder / "stdlib_docstrings.txt").resolve())
        board = ladder_at_equal_time(args.seconds, folder, source)
        columns = [
            "model",
            "bits_per_byte",
            "bpb_ci_low",
            "bpb_ci_high",
            "train_seconds",
            "ttest_p",
        ]
        print(board[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
