"""Claims of the seq2seq ladder (`data.task: seq2seq`) on builtin:numbers-en-fr, English number
words -> French number words (0..4999 by default, split 80/10/10; every number occurs once, so
no test number is seen in training: the networks must learn the numbering, not recall it):

1. the ladder at equal time: `ladder run` with the translation memory, a GRU encoder-decoder
   (`seq2seq_rnn`, Luong attention) and an encoder-decoder Transformer (`seq2seq_transformer`),
   both networks on the same small byte-level BPE (`--tokenizer char`: on characters), each
   trained for about `--seconds` (a first, short run times each network's steps; each ladder
   gives each network the steps that fill its time; one ladder per budget, 30 s and 180 s by
   default): the Transformer's test BLEU >= the GRU's, both far above the memory's (their
   intervals' lower bounds above the memory's upper bound). The leaderboards show BLEU with
   its bootstrap interval, chrF, exact match, the paired bootstrap p-value against the best
   and the training seconds. By 60 s both networks are at the ceiling (99.9-100 BLEU; which
   one is ahead by a test number or two changes from run to run), so the short budget is the
   one that shows which learns faster;
2. beam search with 4 beams scores >= greedy search in BLEU on every network of the ladders:
   the same saved artifacts (`ladder.load(artifact).translate(sources, beam_size=...)`), the
   same test sources, scored with `ladder.evaluate.seq2seq.corpus_scores`;
3. ladder's `Trainer.fit_steps` (built through `TrainerSetup(objective=LanguageModeling())`,
   as the rung builds it) trains that Transformer at >= 0.95x the target tokens/s of a plain
   PyTorch loop: the same network and initialisation, the same `PairBatches` batches (the
   rung's tokenizer and encoding), AdamW with weight decay on matrices only, warm-up then
   cosine decay, gradient clipping, the same validation; side by side in one process, the
   order alternating every round; medians, best-of and their ratios, and both final
   validation losses (which should agree: same batches, same dropout draws);
4. LoRA on a tiny random T5 (`tests/tiny_seq2seq.make_tiny_t5`, saved and loaded as a user's
   folder): <= 2% of the parameters trainable at width 256 (the default width 64 is printed
   too); after a few training steps (so the adapters are not zero) the adapters merged into
   the weights give the same translations and logits (max |difference| printed).

One core per process by default (`--threads 1`): on a shared 2-core machine, torch's two
OpenMP threads made a training step 15-30x slower whenever other work held a core.

Run: .venv/bin/python benchmarks/seq2seq.py [--seconds 30 180] [--pairs 5000] [--rounds 10]
     [--steps 300] [--tokenizer bpe|char] [--threads 1] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

import ladder
from ladder.config import TrainConfig, load_config
from ladder.data.pair_tokenizers import PairTokenizer
from ladder.data.pairs import PairSet
from ladder.evaluate.seq2seq import corpus_scores
from ladder.generate.seq2seq_generator import Seq2SeqGenerator
from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder
from ladder.models.causal_lm import LoraConfig
from ladder.models.pretrained_seq2seq import PretrainedSeq2SeqConfig, load_pretrained_seq2seq
from ladder.registry import get_spec
from ladder.runner.prepare import prepare
from ladder.runner.ranking import RunResult
from ladder.runner.s2s_rung import encode_pairs, pair_tokenizer
from ladder.train.lm_batches import VALIDATION_DRAW
from ladder.train.objective import IGNORE_INDEX, LanguageModeling
from ladder.train.pair_batches import PairBatches
from ladder.train.setup import TrainerSetup

ROOT = Path(__file__).resolve().parents[1]
SEED, PROBE, BEAMS = 0, 100, 4  # PROBE: steps of each timed probe interval
GOAL_SPEED, GOAL_LORA, GOAL_MERGED = 0.95, 0.02, 1e-4
TINY_T5 = {  # width: make_tiny_t5's sizes; 64 is its default, 256 the tests' LoRA-share model
    64: {},
    256: {"d_model": 256, "d_kv": 32, "num_heads": 8, "d_ff": 1024},
}
SHORT = {"max_source_length": 32, "max_target_length": 32}  # BPE: the longest pair is ~13 tokens
BPE = {"tokenizer": "bpe", "vocab_size": 400}  # 256 bytes + ~140 merges: about a word a token
CHAR = {"text": {"tokenizer": "char"}, "max_source_length": 64, "max_target_length": 64}
NETWORKS = {  # the best of each kind we tried at equal time on BPE (see the README)
    "gru": {
        "type": "seq2seq_rnn",
        "cell": "gru",
        "embedding_dim": 128,
        "hidden_size": 256,
        "attention": "luong",
        "dropout": 0.1,
        **SHORT,
        "optimizer": {"lr": 3.0e-3},
        "text": BPE,
    },
    "transformer": {
        "type": "seq2seq_transformer",
        "d_model": 128,
        "n_head": 4,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "dropout": 0.1,
        **SHORT,
        "text": BPE,
    },
}


def networks(tokenizer: str) -> dict[str, dict]:
    """NETWORKS on BPE, or on characters (with room for the ~50-character pairs)."""
    return NETWORKS if tokenizer == "bpe" else {k: {**v, **CHAR} for k, v in NETWORKS.items()}


def base_config(pairs: int, beam_size: int = BEAMS, bootstrap: int = 1000) -> dict:
    """The run's settings without models: the pairs, the split, training and evaluation."""
    return {
        "name": "numbers_en_fr",
        "seed": SEED,
        "data": {
            "source": f"builtin:numbers-en-fr:{pairs}",
            "task": "seq2seq",
            "split": {"val": 0.1, "test": 0.1},
        },
        "train": {"batch_size": 32, "eval_batches": 4, "early_stopping": None},
        "evaluate": {"bootstrap": bootstrap, "beam_size": beam_size, "examples": 4},
    }


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- 1. the ladder


def probe_step_seconds(
    folder: Path, pairs: int, probe: int, nets: dict[str, dict]
) -> dict[str, float]:
    """Seconds per training step of each network, validation included: a `ladder run` (greedy
    decoding, no bootstrap) trains each for two intervals of `probe` steps and the second,
    warm interval is timed (the first network of a process pays for its warm-up)."""
    probing = base_config(pairs, beam_size=1, bootstrap=0)
    probing["models"] = [
        {"name": name, **model, "max_steps": 2 * probe, "eval_interval": probe}
        for name, model in nets.items()
    ]
    ladder.run(_write(folder / "probe.yaml", probing), out=folder / "probe")
    step_seconds = {}
    for name in nets:
        history = pd.read_csv(folder / f"probe/models/{name}/history.csv")
        step_seconds[name] = float(history["seconds"].iloc[-1]) / probe
    return step_seconds


def ladder_at_equal_time(
    seconds: float, step_seconds: dict[str, float], folder: Path, pairs: int, nets: dict
) -> tuple[RunResult, dict[str, int]]:
    """`ladder run` of the translation memory and the networks `nets`, each network given the
    steps that fill `seconds` at its `step_seconds`; the result and the steps."""
    steps = {name: max(10, round(seconds / step_seconds[name])) for name in nets}
    config = base_config(pairs)
    config["models"] = [{"name": "memory", "type": "memory"}] + [
        {"name": name, **model, "max_steps": n, "eval_interval": max(1, n // 10)}
        for (name, model), n in zip(nets.items(), steps.values(), strict=True)
    ]
    path = _write(folder / f"ladder_{seconds:g}s.yaml", config)
    return ladder.run(path, out=folder / f"run_{seconds:g}s"), steps


# ----------------------------------------------------------------------------- 2. beam search


SEARCHES = {  # label: translate's options; the artifacts decode with beam 4, length_penalty 1
    "greedy": {"beam_size": 1},
    f"beam {BEAMS}": {"beam_size": BEAMS},
    f"beam {BEAMS}, length_penalty 0": {"beam_size": BEAMS, "length_penalty": 0.0},
}


def beam_against_greedy(run_dir: Path, names: list[str]) -> dict[str, dict[str, dict]]:
    """Per network and search of SEARCHES, the test scores (bleu, chrf, exact_match) and the
    decoding seconds, translating the test sources with the network's saved artifact."""
    scores: dict[str, dict[str, dict]] = {}
    for name in names:
        model_dir = run_dir / "models" / name
        test = pd.read_csv(model_dir / "test_predictions.csv", keep_default_na=False)
        sources, references = list(test["source"]), list(test["reference"])
        model = ladder.load(model_dir / "artifact")
        scores[name] = {}
        for label, options in SEARCHES.items():
            start = time.perf_counter()
            outputs = model.translate(sources, **options)
            seconds = time.perf_counter() - start
            figures = corpus_scores(outputs, references, ("bleu", "chrf", "exact_match"))
            scores[name][label] = {**figures, "seconds": seconds}
    return scores


# ----------------------------------------------------------------------------- 3. the Trainer


class Setting:
    """The Transformer rung as the run builds it: its validated entry (training config with
    the registry's defaults), its network builder and its training and validation batches."""

    def __init__(self, pairs: int, network: dict, steps: int, interval: int, folder: Path) -> None:
        config = base_config(pairs)
        config["models"] = [
            {"name": "transformer", **network, "max_steps": steps,
             "eval_interval": interval}
        ]  # fmt: skip
        config, data = prepare(load_config(_write(folder / "trainer.yaml", config)))
        self.entry = config.model("transformer")
        self.seed = config.seed
        splits = data.splits
        self.tokenizer = pair_tokenizer(self.entry, splits.train)
        module = self.network()
        self.train = encode_pairs(self.tokenizer, splits.train, module, "training", "transformer")
        self.val = encode_pairs(self.tokenizer, splits.val, module, "validation", "transformer")

    def network(self) -> torch.nn.Module:
        """A fresh Transformer, the same initial weights every time."""
        torch.manual_seed(self.seed)
        build = get_spec(self.entry.type).builder("seq2seq")
        vocab = self.tokenizer
        return build(self.entry.params, (vocab.source.vocab_size,), vocab.target.vocab_size)

    def target_tokens(self) -> int:
        """The counted targets (tokens + eos) of every training batch of a run."""
        cfg = self.entry.train
        total = 0
        for index in range(1, math.ceil(cfg.max_steps / cfg.eval_interval) + 1):
            n = min(cfg.max_steps, index * cfg.eval_interval) - (index - 1) * cfg.eval_interval
            total += int(
                self.train.n_targets(self.train.starts(self.seed, index, n, cfg.batch_size)).sum()
            )
        return total


Timed = tuple[float, float]  # wall seconds, final validation loss


def lr_factor(step: int, steps: int, warmup_fraction: float, min_ratio: float) -> float:
    """The learning rate of optimizer step `step` (0-based) over the peak: linear warm-up,
    then cosine decay to `min_ratio`."""
    warmup = min(round(warmup_fraction * steps), steps)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def plain_loop(setting: Setting) -> Timed:
    """(wall seconds, final validation loss) of a hand-written loop over the same batches."""
    cfg = setting.entry.train
    lr, steps, interval, batch = cfg.optimizer.lr, cfg.max_steps, cfg.eval_interval, cfg.batch_size
    model = setting.network()
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(model.param_groups(lr, cfg.optimizer.weight_decay), lr=lr)
    torch.manual_seed(setting.seed)  # dropout: the Trainer seeds here too
    val_rows = setting.val.starts(setting.seed, VALIDATION_DRAW, cfg.eval_batches, batch)
    step, val_loss = 0, float("nan")
    for index in range(1, math.ceil(steps / interval) + 1):
        model.train()
        n = min(steps, step + interval) - step
        for rows in setting.train.starts(setting.seed, index, n, batch):
            x, y = (torch.from_numpy(a) for a in setting.train.batch(rows))
            factor = lr_factor(
                step, steps, cfg.scheduler.warmup_fraction, cfg.scheduler.min_lr / lr
            )
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            logits = model(x)  # (batch, L, vocab)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
        val_loss = evaluate(model, setting.val, val_rows)
    return time.perf_counter() - start, val_loss


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: PairBatches, starts: np.ndarray) -> float:
    """Mean loss over the counted targets of the fixed validation batches."""
    model.eval()
    total, count = 0.0, 0
    for rows in starts:
        x, y = (torch.from_numpy(a) for a in val.batch(rows))
        logits = model(x)
        total += F.cross_entropy(
            logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
        ).item()
        count += int((y != IGNORE_INDEX).sum())
    return total / count


def ladder_loop(setting: Setting) -> Timed:
    """(wall seconds, final validation loss) of `Trainer.fit_steps`, the same everything."""
    model = setting.network()
    setup = TrainerSetup(objective=LanguageModeling(), seed=setting.seed)
    trainer = setup.trainer(model, setting.entry.train, "cpu")
    start = time.perf_counter()
    history = trainer.fit_steps(setting.train, setting.val)
    return time.perf_counter() - start, history[-1]["val_loss"]


RUNNERS = {"plain": plain_loop, "ladder": ladder_loop}


def trainer_against_plain(
    pairs: int, network: dict, steps: int, interval: int, rounds: int, folder: Path
) -> tuple[dict[str, list[float]], dict[str, float], int]:
    """Target tokens/s of each loop in every round (training `network`, a Transformer entry),
    each one's last validation loss, and the target tokens a run trains on."""
    setting = Setting(pairs, network, steps, interval, folder)
    warm = Setting(pairs, network, 5, 5, folder)
    for runner in RUNNERS.values():  # warm-up: allocator, kernels
        runner(warm)
    tokens = setting.target_tokens()
    speeds: dict[str, list[float]] = {name: [] for name in RUNNERS}
    losses: dict[str, float] = {}
    for r in range(rounds):
        order = list(RUNNERS) if r % 2 == 0 else list(RUNNERS)[::-1]
        for name in order:
            seconds, losses[name] = RUNNERS[name](setting)
            speeds[name].append(tokens / seconds)
        shown = ", ".join(f"{name} {values[-1]:,.0f}" for name, values in speeds.items())
        print(f"  round {r + 1}: target tokens/s {shown}", flush=True)
    return speeds, losses, tokens


# ----------------------------------------------------------------------------- 4. LoRA


def lora_figures(pairs: int, steps: int, folder: Path) -> dict[str, float]:
    """LoRA (r 8, alpha 16, on the query and value projections) on tiny random T5s made by the
    tests' `make_tiny_t5` in `folder`: the trainable share at width 64 and 256. At width 256,
    after `steps` Trainer steps on the number pairs (lr 1e-2, so that the adapters move): the
    largest |B| of an adapter, whether the merged model gives the same greedy and beam
    translations of 64 test sources, and the max |logit difference| on them, teacher-forced."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_seq2seq import make_tiny_t5  # the tests' helper, which is not in the package

    config = {**base_config(pairs), "models": [{"name": "memory", "type": "memory"}]}
    _, data = prepare(load_config(_write(folder / "lora.yaml", config)))
    train_pairs, test_pairs = data.splits.train, data.splits.test
    texts = [*train_pairs.sources, *train_pairs.targets]
    figures: dict[str, float] = {}
    for width in TINY_T5:
        module, t5 = _lora_t5(folder, texts, width, make_tiny_t5)
        figures[f"share_{width}"] = module.trainable_params() / module.total_params()
        figures[f"params_{width}"] = module.total_params()  # the widest is trained below
    tokenizer = PairTokenizer.from_pretrained_folder(t5)
    train = encode_pairs(tokenizer, train_pairs, module, "training", "t5")
    settings = {
        "batch_size": 16,
        "max_steps": steps,
        "eval_interval": steps,
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.0},
        "grad_clip": 1.0,
        "early_stopping": None,
    }
    setup = TrainerSetup(objective=LanguageModeling(), seed=SEED)
    history = setup.trainer(module, TrainConfig.model_validate(settings), "cpu").fit_steps(train)
    figures["train_loss"] = history[-1]["train_loss"]
    module.eval()
    adapters = [p for name, p in module.named_parameters() if ".lora_B." in name]
    figures["max_abs_B"] = max(float(p.detach().abs().max()) for p in adapters)
    sources = list(test_pairs.sources[:64])
    test = PairSet(sources, list(test_pairs.targets[:64]))
    x, _ = encode_pairs(tokenizer, test, module, "test", "t5").batch(np.arange(len(sources)))
    x = torch.from_numpy(x)

    def outputs() -> tuple[torch.Tensor, list[str], list[str]]:
        generator = Seq2SeqGenerator(TorchSeq2SeqDecoder(module, "cpu"), tokenizer)
        with torch.no_grad():
            logits = module(x)  # (64, L, vocab)
        return logits, generator.translate(sources), generator.translate(sources, beam_size=4)

    unmerged = outputs()
    module.merge_and_unload()
    merged = outputs()
    figures["merged_is_plain"] = float(not module.lora)
    figures["logit_diff"] = float((merged[0] - unmerged[0]).abs().max())
    figures["same_greedy"] = float(merged[1] == unmerged[1])
    figures["same_beam"] = float(merged[2] == unmerged[2])
    figures["distinct_outputs"] = len(set(unmerged[1]))
    return figures


def _lora_t5(folder: Path, texts: list[str], width: int, make_tiny_t5: Any) -> tuple[Any, Path]:
    """A tiny random T5 of `width` (TINY_T5) saved in `folder` with its tokenizer trained on
    `texts`, loaded with rank-8 LoRA adapters; and its folder."""
    t5 = make_tiny_t5(folder / f"t5_{width}", texts, **TINY_T5[width])
    torch.manual_seed(SEED)  # LoRA's A matrices are random
    lora = LoraConfig(r=8, alpha=16, dropout=0.0)
    return load_pretrained_seq2seq(PretrainedSeq2SeqConfig(path=str(t5), lora=lora, **SHORT)), t5


# ----------------------------------------------------------------------------- printing


def markdown(rows: list[list[object]], header: list[str]) -> str:
    """A small markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Ladder:
    """One equal-time ladder: its leaderboard, each network's steps, greedy and beam scores."""

    board: pd.DataFrame
    steps: dict[str, int]
    beams: dict[str, dict[str, dict]]


def report_ladder(seconds: float, result: Ladder) -> None:
    """The leaderboard and the searches' scores of the ladder at `seconds`, as markdown."""
    steps = ", ".join(f"{name} {n:,} steps" for name, n in result.steps.items())
    print(f"\n### Leaderboard at {seconds:g} s a network ({steps}; test BLEU, beam {BEAMS})\n")
    rows = [
        [r.model, f"{r.bleu:.2f}", f"[{r.ci_low:.2f}, {r.ci_high:.2f}]", f"{r.chrf:.2f}",
         f"{r.exact_match:.1f}", f"{r.bootstrap_p:.3g}", f"{r.train_seconds:.1f}", f"{r.params:,}"]
        for r in result.board.itertuples()
    ]  # fmt: skip
    header = ["model", "bleu", "95% CI", "chrf", "exact_match", "bootstrap_p", "train_s", "params"]
    print(markdown(rows, header))
    print(f"\n### Greedy vs beam {BEAMS} at {seconds:g} s (same artifacts, same test sources)\n")
    rows = [
        [name, label, f"{s['bleu']:.2f}", f"{s['chrf']:.2f}", f"{s['exact_match']:.1f}",
         f"{s['seconds']:.1f}"]
        for name, by_search in result.beams.items()
        for label, s in by_search.items()
    ]  # fmt: skip
    print(markdown(rows, ["model", "search", "bleu", "chrf", "exact_match", "decode_s"]))


def report_trainer(steps: int, speeds: dict, losses: dict, tokens: int) -> None:
    """The Trainer against the plain loop, as markdown."""
    print(f"\n### Trainer vs plain loop ({steps} steps, {tokens:,} target tokens a run)\n")
    rows = [
        [name, f"{statistics.median(speeds[name]):,.0f}", f"{max(speeds[name]):,.0f}",
         f"{losses[name]:.4f}"]
        for name in RUNNERS
    ]  # fmt: skip
    print(markdown(rows, ["loop", "median tokens/s", "best tokens/s", "final val_loss"]))


def claims_of_ladder(seconds: float, result: Ladder) -> None:
    """Claims 1 and 2 at one time budget, one line each with its verdict."""
    by_model = result.board.set_index("model")
    bleu = {name: float(by_model.loc[name, "bleu"]) for name in by_model.index}
    ok = bleu["transformer"] >= bleu["gru"]
    # the paired test of the network behind against the best (the best's own p is 1)
    p = min(float(by_model.loc[name, "bootstrap_p"]) for name in result.steps)
    print(
        f"1. {seconds:g} s: transformer BLEU {bleu['transformer']:.2f} vs gru {bleu['gru']:.2f}, "
        f"paired bootstrap p {p:.3g} (goal transformer >= gru) {'OK' if ok else 'FAILED'}"
    )
    memory_high = float(by_model.loc["memory", "ci_high"])
    lows = {name: float(by_model.loc[name, "ci_low"]) for name in result.steps}
    ok = min(lows.values()) > memory_high
    shown = ", ".join(f"{name} {low:.2f}" for name, low in lows.items())
    print(
        f"   memory BLEU {bleu['memory']:.2f} (interval up to {memory_high:.2f}); the networks' "
        f"lower bounds {shown} (goal: above the memory's interval) {'OK' if ok else 'FAILED'}"
    )
    for name, by_search in result.beams.items():
        greedy, beam = by_search["greedy"]["bleu"], by_search[f"beam {BEAMS}"]["bleu"]
        verdict = "OK" if beam >= greedy else "FAILED"
        print(
            f"2. {seconds:g} s, {name}: greedy BLEU {greedy:.2f}, beam {BEAMS} {beam:.2f} "
            f"(goal beam >= greedy) {verdict}"
        )


def claims_of_trainer_and_lora(speeds: dict, losses: dict, lora: dict, lora_steps: int) -> None:
    """Claims 3 and 4, with their verdicts."""
    median = {name: statistics.median(v) for name, v in speeds.items()}
    best = {name: max(v) for name, v in speeds.items()}
    pairs = zip(speeds["ladder"], speeds["plain"], strict=True)
    paired = statistics.median(a / b for a, b in pairs)
    ratio, best_ratio = median["ladder"] / median["plain"], best["ladder"] / best["plain"]
    verdict = "OK" if best_ratio >= GOAL_SPEED else "BELOW"
    print(
        f"3. target tokens/s median plain {median['plain']:,.0f}, ladder {median['ladder']:,.0f} "
        f"(ratio {ratio:.3f}, per round {paired:.3f}); best plain {best['plain']:,.0f}, ladder "
        f"{best['ladder']:,.0f}: ratio {best_ratio:.3f} (goal >= {GOAL_SPEED}) {verdict}; "
        f"val_loss plain {losses['plain']:.4f}, ladder {losses['ladder']:.4f}"
    )
    verdict = "OK" if lora["share_256"] <= GOAL_LORA else "ABOVE"
    print(
        f"4. LoRA r=8 on tiny T5: {100 * lora['share_256']:.2f}% trainable at width 256 "
        f"({lora['params_256'] / 1e6:.2f}M parameters; goal <= {100 * GOAL_LORA:g}%) {verdict}; "
        f"{100 * lora['share_64']:.2f}% at width 64"
    )
    same = lora["same_greedy"] and lora["same_beam"] and lora["logit_diff"] <= GOAL_MERGED
    print(
        f"   after {lora_steps} steps (train_loss {lora['train_loss']:.3f}, max |B| "
        f"{lora['max_abs_B']:.3g}): merged vs unmerged logits differ by {lora['logit_diff']:.1e}; "
        f"greedy translations identical: {bool(lora['same_greedy'])}, beam 4: "
        f"{bool(lora['same_beam'])} ({int(lora['distinct_outputs'])} distinct outputs of 64) "
        f"{'OK' if same else 'FAILED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        nargs="+",
        default=[30, 180],
        help="each network's training time; one ladder per value",
    )
    parser.add_argument("--pairs", type=int, default=5000, help="numbers 0..N-1 (80/10/10 split)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of Trainer vs plain loop")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per timed run")
    parser.add_argument("--lora-steps", type=int, default=100, help="LoRA training steps")
    parser.add_argument(
        "--tokenizer", default="bpe", choices=["bpe", "char"], help="the networks' tokens"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: its default)")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    probe = PROBE
    if args.quick:
        args.seconds, args.pairs, args.rounds, args.steps, args.lora_steps = [25], 1000, 2, 30, 5
        probe = 20
    started = time.perf_counter()
    ladders: dict[float, Ladder] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        nets = networks(args.tokenizer)
        print("== 1. the ladder at equal time: timing each network's steps", flush=True)
        step_seconds = probe_step_seconds(folder, args.pairs, probe, nets)
        for seconds in args.seconds:
            print(f"== 1. the ladder at equal time: {seconds:g} s a network", flush=True)
            result, steps = ladder_at_equal_time(seconds, step_seconds, folder, args.pairs, nets)
            print(f"== 2. beam search against greedy search ({seconds:g} s)", flush=True)
            beams = beam_against_greedy(result.run_dir, list(nets))
            ladders[seconds] = Ladder(result.leaderboard, steps, beams)
        print("== 3. Trainer.fit_steps against a plain PyTorch loop", flush=True)
        interval = max(1, args.steps // 2)
        speeds, losses, tokens = trainer_against_plain(
            args.pairs, nets["transformer"], args.steps, interval, max(2, args.rounds), folder
        )
        print("== 4. LoRA on a tiny T5", flush=True)
        lora = lora_figures(args.pairs, args.lora_steps, folder)
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"builtin:numbers-en-fr:{args.pairs}, {args.tokenizer} tokens"
    )
    for seconds, result in ladders.items():
        report_ladder(seconds, result)
    report_trainer(args.steps, speeds, losses, tokens)
    print("\n### Claims\n")
    for seconds, result in ladders.items():
        claims_of_ladder(seconds, result)
    claims_of_trainer_and_lora(speeds, losses, lora, args.lora_steps)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
