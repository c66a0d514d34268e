"""Claim: distilling the fine-tuned MiniLM of a finished rt_polarity run into a small TextCNN
keeps at least 97% of the teacher's test accuracy with at least 10x fewer parameters, and beats
the same student trained on the labels alone.

Needs a finished run (`ladder run examples/rt_polarity.yaml`) with the teacher trained. The run
folder is copied (without checkpoints) into a temporary folder and never written to. There,
`ladder compress` makes two variants of the teacher with the same student config and seed:
`alpha=1` (the label-only baseline: plain cross-entropy on the training split, the teacher's
logits unused; with `--embeddings-from-teacher` it starts from the teacher's token vectors too)
and the distilled student (`--alpha`, `--temperature`, and `--augment` perturbed
copies of each training text that only the teacher labels). Both are evaluated on the run's own
test split; the script prints teacher, label-only and distilled accuracy and parameters, and
the ratios. The teacher predicts every training text once per copy (minutes on a CPU).

Run: .venv/bin/python benchmarks/distill.py [--run runs/rt_polarity] [--teacher minilm]
     [--alpha 0.0] [--temperature 2.0] [--augment 16] [--epochs 15]
     [--student '{"type": "textcnn", "text": {"vocab_size": 10000}}'] [--embeddings-from-teacher]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ladder.compress.run import compress_run

STUDENT = {"type": "textcnn", "text": {"vocab_size": 10000}}
GOAL_RETAINED, GOAL_FEWER = 0.97, 10.0


def copy_run(run: Path, into: Path) -> Path:
    """The run folder without its checkpoints (not needed to compress), copied into `into`;
    a copy already there is reused (with the teacher's cached logits)."""
    target = into / run.name
    if not (target / "config.yaml").is_file():
        shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def methods(args: argparse.Namespace, student: dict[str, Any]) -> list[dict[str, Any]]:
    """The label-only baseline and the distilled student: same student, same seed."""
    base = {
        "method": "distill",
        "teacher": args.teacher,
        "epochs": args.epochs,
        "embeddings_from_teacher": args.embeddings_from_teacher,
    }
    distilled = {
        **base,
        "student": {**student, "name": "distilled"},
        "alpha": args.alpha,
        "temperature": args.temperature,
    }
    if args.augment:
        distilled["augment"] = args.augment
    return [{**base, "student": {**student, "name": "labels_only"}, "alpha": 1.0}, distilled]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/rt_polarity"))
    parser.add_argument("--teacher", default="minilm")
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--augment", type=int, default=16, help="perturbed copies of each text")
    parser.add_argument("--epochs", type=int, default=15, help="the students' epochs at most")
    parser.add_argument("--student", type=json.loads, default=STUDENT, help="a model entry (JSON)")
    parser.add_argument(
        "--embeddings-from-teacher",
        action="store_true",
        help="both students tokenize like the teacher and start from its token vectors",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the copy here (default: a temporary folder); "
        "a later call reuses it and the teacher's cached logits",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = copy_run(args.run, args.workdir or Path(tmp))
        started = time.perf_counter()
        override = "compress=" + json.dumps(methods(args, args.student))
        board = compress_run(run, overrides=[override]).leaderboard.set_index("model")
        seconds = time.perf_counter() - started
    print(
        f"student {json.dumps(args.student)}; alpha {args.alpha}, T {args.temperature}, "
        f"augment {args.augment}, epochs {args.epochs}, embeddings from the teacher "
        f"{args.embeddings_from_teacher}; {seconds:.0f}s"
    )
    report(board, args.teacher)


def report(board: Any, teacher_name: str) -> None:
    """Accuracy and parameters of teacher, label-only and distilled student; the goals."""
    teacher = board.loc[teacher_name]
    rows = {
        "teacher": teacher,
        "label-only": board.loc[f"{teacher_name}→labels_only"],
        "distilled": board.loc[f"{teacher_name}→distilled"],
    }
    print(f"{'model':12s} {'accuracy':>9s} {'params':>12s} {'of teacher acc':>15s} {'fewer':>7s}")
    for label, row in rows.items():
        retained = row["accuracy"] / teacher["accuracy"]
        fewer = teacher["params"] / row["params"]
        print(
            f"{label:12s} {row['accuracy']:9.4f} {int(row['params']):12,d} "
            f"{retained:14.1%} {fewer:6.1f}x"
        )
    distilled = rows["distilled"]
    retained = distilled["accuracy"] / teacher["accuracy"]
    fewer = teacher["params"] / distilled["params"]
    gain = distilled["accuracy"] - rows["label-only"]["accuracy"]
    print(f"distilled - label-only: {gain:+.4f} accuracy")
    print(
        f"goals: >= {GOAL_RETAINED:.0%} of the teacher's accuracy: {retained >= GOAL_RETAINED} "
        f"({retained:.1%}); >= {GOAL_FEWER:g}x fewer parameters: {fewer >= GOAL_FEWER} "
        f"({fewer:.1f}x); beats label-only: {gain > 0}"
    )


if __name__ == "__main__":
    main()
