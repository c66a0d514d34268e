"""Claim: ladder's step-based Trainer trains a GPT at >= 0.95x the tokens/s of a plain PyTorch
loop over the same model and batches, and reaches the same validation loss (within 0.02) after
the same steps.

Both train nanoGPT's CPU "baby" GPT (4 layers, 4 heads, width 128, block 64, no dropout; the
same seeded initialisation) on the characters of Python's `pydoc_data` topics (a token memmap on
disk, the first 90% for training), batch 12, AdamW (lr 1e-3, weight decay 0.1 on matrices only:
the GPT's `param_groups`), linear warm-up over 10% of the steps then cosine decay to 1e-4,
gradient clipping at 1, validation on 20 fixed batches of the last 10% every `--eval-interval`
steps. The batches are the same in both: drawn from the same `TokenWindows` with the same seed.
- plain:  a hand-written loop (nanoGPT's `train.py` shape) with the learning rate set by hand;
- ladder: `Trainer.fit_steps`, built through `TrainerSetup` with the `LanguageModeling`
          objective, as the run layer builds it.
After a warm-up the two run in turn, the order alternating every round; each run is timed from
building the optimizer to the last validation, by the wall clock and by the process's CPU time
(on a machine shared with other work the CPU-time figure is the steadier one, above all with
`--threads 1`). The script prints the median and the best tokens/s of each, their ratios (and
the median of the rounds' own ratios), and each one's final validation loss. Other work only
slows a run down, so the best of many short rounds is the fairest figure on a busy machine; the
verdict uses it.

Run: .venv/bin/python benchmarks/lm_trainer.py [--steps 100] [--rounds 10] [--quick]
     [--device cpu|cuda] [--precision fp32|bf16] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import torch
import torch.nn.functional as F

from ladder.config import TrainConfig
from ladder.data.lm_tokenizers import train_tokenizer
from ladder.data.token_windows import read_tokens, write_tokens
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.train.lm_batches import VALIDATION_DRAW, TokenWindows
from ladder.train.objective import LanguageModeling
from ladder.train.setup import TrainerSetup

BLOCK, BATCH, EVAL_BATCHES, SEED = 64, 12, 20, 0
LR, MIN_LR, WEIGHT_DECAY, WARMUP, CLIP = 1e-3, 1e-4, 0.1, 0.1, 1.0
BABY = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, dropout=0.0)
GOAL_SPEED, GOAL_LOSS = 0.95, 0.02
Timed = tuple[float, float, float]  # wall seconds, CPU seconds, final validation loss


def make_data(folder: Path) -> tuple[TokenWindows, TokenWindows, int]:
    """Training and validation windows of the character-level topics, read from a memmap."""
    text = "\n".join(topics.values())
    tokenizer = train_tokenizer("char", [text])
    path = write_tokens(tokenizer.encode(text), folder / "topics.bin", tokenizer.vocab_size)
    tokens = read_tokens(path, tokenizer.vocab_size)
    cut = int(len(tokens) * 0.9)
    train = TokenWindows(tokens[:cut], BLOCK)
    val = TokenWindows(tokens[cut:], BLOCK, split="validation")
    return train, val, tokenizer.vocab_size


def new_gpt(vocab_size: int) -> torch.nn.Module:
    torch.manual_seed(SEED)
    return build_gpt(BABY, vocab_size)


def lr_at(step: int, steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based): warm-up, then cosine to MIN_LR."""
    warmup = round(WARMUP * steps)
    if step < warmup:
        return LR * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return MIN_LR + (LR - MIN_LR) * 0.5 * (1 + math.cos(math.pi * progress))


def plain_loop(
    data: tuple[TokenWindows, TokenWindows, int], steps: int, interval: int, device: torch.device,
    dtype: torch.dtype | None,
) -> Timed:  # fmt: skip
    """(wall seconds, CPU seconds, final validation loss) of a hand-written loop."""
    train, val, vocab_size = data
    model = new_gpt(vocab_size).to(device)
    start, cpu = time.perf_counter(), time.process_time()
    optimizer = torch.optim.AdamW(model.param_groups(LR, WEIGHT_DECAY), lr=LR)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    val_starts = val.starts(SEED, VALIDATION_DRAW, EVAL_BATCHES, BATCH)
    step, val_loss = 0, float("nan")
    for interval_index in range(1, math.ceil(steps / interval) + 1):
        model.train()
        n = min(steps, step + interval) - step
        for rows in train.starts(SEED, interval_index, n, BATCH):
            x, y = (torch.from_numpy(a).to(device) for a in train.batch(rows))
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, steps)
            with autocast:
                logits, _ = model(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            step += 1
        val_loss = evaluate(model, val, val_starts, device, autocast)
    return time.perf_counter() - start, time.process_time() - cpu, val_loss


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, val: TokenWindows, starts: np.ndarray, device: torch.device,
    autocast: torch.autocast,
) -> float:  # fmt: skip
    """Mean next-token loss over the fixed validation windows."""
    model.eval()
    total, count = torch.zeros((), device=device), 0
    for rows in starts:
        x, y = (torch.from_numpy(a).to(device) for a in val.batch(rows))
        with autocast:
            logits, _ = model(x)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        count += y.numel()
    return total.item() / count


def ladder_loop(
    data: tuple[TokenWindows, TokenWindows, int], steps: int, interval: int, device: torch.device,
    dtype: torch.dtype | None,
) -> Timed:  # fmt: skip
    """(wall seconds, CPU seconds, final validation loss) of `Trainer.fit_steps`, the same
    everything."""
    train, val, vocab_size = data
    config = TrainConfig.model_validate(
        {
            "batch_size": BATCH,
            "max_steps": steps,
            "eval_interval": interval,
            "eval_batches": EVAL_BATCHES,
            "optimizer": {"name": "adamw", "lr": LR, "weight_decay": WEIGHT_DECAY},
            "scheduler": {"name": "cosine", "warmup_fraction": WARMUP, "min_lr": MIN_LR},
            "grad_clip": CLIP,
            "precision": "bf16" if dtype is not None else "fp32",
            "early_stopping": None,
        }
    )
    model = new_gpt(vocab_size)
    trainer = TrainerSetup(objective=LanguageModeling(), seed=SEED).trainer(model, config, device)
    start, cpu = time.perf_counter(), time.process_time()
    history = trainer.fit_steps(train, val)
    return time.perf_counter() - start, time.process_time() - cpu, history[-1]["val_loss"]


RUNNERS = {"plain": plain_loop, "ladder": ladder_loop}
CLOCKS = {"wall": "wall clock", "cpu": "CPU time"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per timed run")
    parser.add_argument("--eval-interval", type=int, default=50, help="steps between validations")
    parser.add_argument("--rounds", type=int, default=10, help="rounds (at least 2)")
    parser.add_argument("--quick", action="store_true", help="40 steps, 3 rounds: a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.eval_interval, args.rounds = 40, 20, 3
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        data = make_data(Path(folder))
        for runner in RUNNERS.values():  # warm-up: allocator, kernels, page cache
            runner(data, 5, 5, device, dtype)
        speeds: dict[str, dict[str, list[float]]] = {
            clock: {name: [] for name in RUNNERS} for clock in CLOCKS
        }
        losses: dict[str, float] = {}
        tokens = args.steps * BATCH * BLOCK
        for r in range(max(2, args.rounds)):
            order = list(RUNNERS) if r % 2 == 0 else list(RUNNERS)[::-1]
            for name in order:
                wall, cpu, losses[name] = RUNNERS[name](
                    data, args.steps, args.eval_interval, device, dtype
                )
                speeds["wall"][name].append(tokens / wall)
                speeds["cpu"][name].append(tokens / cpu)
            shown = (f"{k} {v[-1]:,.0f}" for k, v in speeds["wall"].items())
            print(f"round {r + 1}: tokens/s (wall clock) " + ", ".join(shown), flush=True)
    print(
        f"torch {torch.__version__} on {device} ({args.precision}), {threads} threads; GPT "
        f"4x4x128, block {BLOCK}, batch {BATCH}, {args.steps} steps per run, "
        f"{max(2, args.rounds)} rounds"
    )
    for clock, by_name in speeds.items():
        median = {name: statistics.median(values) for name, values in by_name.items()}
        best = {name: max(values) for name, values in by_name.items()}
        pairs = zip(by_name["ladder"], by_name["plain"], strict=True)
        paired = statistics.median(a / b for a, b in pairs)
        ratio, best_ratio = median["ladder"] / median["plain"], best["ladder"] / best["plain"]
        verdict = "OK" if best_ratio >= GOAL_SPEED else "BELOW"
        print(
            f"{CLOCKS[clock]}: tokens/s median plain {median['plain']:,.0f}, ladder "
            f"{median['ladder']:,.0f} (ratio {ratio:.3f}, per round {paired:.3f}); best plain "
            f"{best['plain']:,.0f}, ladder {best['ladder']:,.0f}: ratio ladder/plain "
            f"{best_ratio:.3f} (goal >= {GOAL_SPEED}) {verdict}"
        )
    gap = abs(losses["ladder"] - losses["plain"])
    verdict = "OK" if gap <= GOAL_LOSS else "ABOVE"
    print(
        f"val_loss after {args.steps} steps: plain {losses['plain']:.4f}, ladder "
        f"{losses['ladder']:.4f}, difference {gap:.2e} (goal <= {GOAL_LOSS}) {verdict}"
    )


if __name__ == "__main__":
    main()
