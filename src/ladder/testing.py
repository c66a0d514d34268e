"""`check_model`: the conformance suite every registered model type passes.

It trains the model on tiny data through the real pipeline, then checks the artifact: prediction
shapes, probabilities that sum to one, single-record prediction, ONNX export parity (ONNX
Runtime vs the original model, or a recorded reason why the type is not exported), and that the
loaded artifact scores the test data exactly as the freshly trained model did. A language model
(task generation) is trained on a tiny corpus instead and checked as a generator: greedy
decoding is deterministic and streams what it generates, a seed reproduces sampling, a prompt
longer than the context is cut, ONNX Runtime gives PyTorch's logits, and the loaded artifact
scores the test text as training did. A seq2seq model (task seq2seq) is trained on tiny
text pairs and checked as a translator: its manifest says seq2seq, it translates a source to a
string, greedy search is deterministic and is what streaming gives, a long source keeps its
first tokens, ONNX Runtime translates as PyTorch does, and the loaded artifact scores the test
pairs as training did.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import validate_config
from ladder.export.artifact import load
from ladder.export.lm_artifact import load_generator
from ladder.export.s2s_artifact import load_translator
from ladder.registry import get_spec
from ladder.runner.ladder import train_model
from ladder.runner.lm_rung import evaluate_generator
from ladder.runner.prepare import prepare
from ladder.runner.s2s_rung import evaluate_translator
from ladder.runner.score import evaluate_artifact

LABELS = ("ant", "bee", "cat")


def _write_table(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(LABELS)
    frame = pd.DataFrame(
        {
            "length": y + rng.normal(0, 0.3, n),
            "noise": rng.normal(0, 1, n),
            "colour": np.array(["red", "green", "blue"])[y],
            "label": np.array(LABELS)[y],
        }
    )
    frame.to_csv(path, index=False)
    return path


def _write_images(root: Path, n: int, seed: int, size: int = 16) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        pixels = rng.integers(0, 60, (size, size), dtype=np.uint8)
        band = slice(5 * (i % len(LABELS)), 5 * (i % len(LABELS)) + 5)
        pixels[band, :] = 220  # each class lights a different band of rows
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


_WORDS = {
    "ant": ["tiny", "colony", "soil", "queen"],
    "bee": ["honey", "flower", "buzz", "hive"],
    "cat": ["purr", "whiskers", "milk", "paws"],
}


def _write_texts(path: Path, n: int, seed: int) -> Path:
    """A CSV of short texts whose words give away their class (one text left empty)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        words = list(rng.choice(_WORDS[label], size=3)) + list(rng.choice(["the", "a"], size=2))
        rows.append({"text": " ".join(rng.permutation(words)), "label": label})
    rows[-1]["text"] = ""  # an empty text is valid input
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def check_model(
    model_type: str, workdir: str | Path, task: str | None = None, **params: Any
) -> dict[str, Any]:
    """Train `model_type` on tiny data in `workdir` and check its artifact; returns the metrics.

    `task`: classification, regression, generation or seq2seq (default: the first of these
    the type learns). Raises AssertionError naming the first check that fails.
    """
    spec = get_spec(model_type)
    tasks = ("classification", "regression", "generation", "seq2seq")
    task = task or next(t for t in tasks if t in spec.tasks)
    if task == "regression":
        return _check_regression(model_type, Path(workdir), params)
    if task == "generation":
        return _check_generation(model_type, Path(workdir), params)
    if task == "seq2seq":
        return _check_seq2seq(model_type, Path(workdir), params)

    workdir = Path(workdir)
    inputs = get_spec(model_type).inputs
    data: dict[str, Any] = {}
    if inputs == ("image",):
        train_src = _write_images(workdir / "train", 48, seed=0)
        test_src = _write_images(workdir / "test", 12, seed=1)
        one_record: Any = [str(next((test_src / LABELS[0]).iterdir()))]
    elif inputs == ("text",):
        train_src = _write_texts(workdir / "train.csv", 60, seed=0)
        test_src = _write_texts(workdir / "test.csv", 15, seed=1)
        one_record = ["honey buzz hive"]
        data["text"] = "text"
    else:
        train_src = _write_table(workdir / "train.csv", 60, seed=0)
        test_src = _write_table(workdir / "test.csv", 15, seed=1)
        one_record = pd.read_csv(test_src).drop(columns="label").iloc[0].to_dict()
    raw = {
        "name": "conformance",
        "data": {
            "source": str(train_src),
            "test_source": str(test_src),
            "split": {"val": 0.2},
            **data,
        },
        "models": [{"name": "m", "type": model_type, **params}],
        "train": {"epochs": 2, "batch_size": 16},
    }
    result = train_model(validate_config(raw), "m", workdir / "run")

    model = load(result.artifact)
    proba = model.predict_proba(test_src)
    _check(proba.shape == (12 if inputs == ("image",) else 15, 3), "proba shape")
    _check(bool(np.all(np.isfinite(proba))), "probabilities are finite")
    _check(np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), "probabilities sum to 1")
    _check(model.labels == list(LABELS), f"labels {model.labels} == {list(LABELS)}")
    _check(set(model.predict(test_src)) <= set(LABELS), "predictions are known labels")
    _check(model.predict_proba(one_record).shape == (1, 3), "a single record predicts")

    onnx = model.manifest["onnx"]
    _check(bool(onnx["exported"] or onnx["reason"]), "ONNX export is done or explained")
    if onnx["exported"]:
        native = load(result.artifact, backend="sklearn" if _classical(model_type) else "torch")
        _check(model.backend == "onnxruntime", "the ONNX Runtime backend is the default")
        same = np.allclose(native.predict_proba(test_src), proba, atol=1e-4, rtol=0)
        _check(same, "ONNX Runtime and the original model give the same probabilities")

    reloaded = evaluate_artifact(result.artifact, str(test_src))
    for key in ("accuracy", "log_loss"):
        same = math.isclose(reloaded[key], result.metrics[key], rel_tol=1e-5, abs_tol=1e-6)
        _check(same, f"loaded artifact {key} {reloaded[key]} == trained {result.metrics[key]}")
    return result.metrics


def _write_scores(path: Path, n: int, seed: int, text: bool) -> Path:
    """A table with a numeric target `label`: two numeric features and a colour, or texts
    whose words add to the score."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    a, b = rng.normal(size=n), rng.normal(size=n)
    score = 3 * a - b + (colour == "red") * 2 + rng.normal(0, 0.1, n)
    frame = pd.DataFrame({"a": a, "b": b, "colour": colour, "label": score})
    if text:
        words = {"red": "honey", "green": "leaf", "blue": "wave"}
        frame = pd.DataFrame(
            {"text": [f"{words[c]} the a" for c in colour], "label": (colour == "red") * 2.0}
        )
        frame["label"] += rng.normal(0, 0.1, n)
    frame.to_csv(path, index=False)
    return path


def _check_regression(model_type: str, workdir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """check_model for regression: values in the target's units, ONNX Runtime agreeing with
    the native model, and the loaded artifact scoring as training did."""
    spec = get_spec(model_type)
    text = spec.inputs == ("text",)
    _check(spec.inputs != ("image",), "regression conformance data is tabular or text")
    train_src = _write_scores(workdir / "train.csv", 80, 0, text)
    test_src = _write_scores(workdir / "test.csv", 20, 1, text)
    raw = {
        "name": "conformance",
        "data": {
            "source": str(train_src),
            "test_source": str(test_src),
            "task": "regression",
            "split": {"val": 0.2},
            **({"text": "text"} if text else {}),
        },
        "evaluate": {"intervals": 0.9},
        "models": [{"name": "m", "type": model_type, **params}],
        "train": {"epochs": 2, "batch_size": 16},
    }
    result = train_model(validate_config(raw), "m", workdir / "run")
    model = load(result.artifact)
    values = model.predict(test_src)
    _check(values.shape == (20,), "one value per row")
    _check(bool(np.all(np.isfinite(values))), "predictions are finite")
    _check(model.labels == [] and model.task == "regression", "a regression artifact")
    value, lower, upper = model.predict_interval(test_src)
    _check(bool(np.all(lower <= value) and np.all(value <= upper)), "intervals hold the value")
    onnx = model.manifest["onnx"]
    _check(bool(onnx["exported"] or onnx["reason"]), "ONNX export is done or explained")
    if onnx["exported"]:
        native = load(result.artifact, backend="sklearn" if _classical(model_type) else "torch")
        _check(model.backend == "onnxruntime", "the ONNX Runtime backend is the default")
        scale = max(1.0, float(np.max(np.abs(values))))
        same = np.allclose(native.predict(test_src), values, atol=1e-4 * scale, rtol=0)
        _check(same, "ONNX Runtime and the original model give the same values")
    reloaded = evaluate_artifact(result.artifact, str(test_src))
    for key in ("rmse", "mae"):
        same = math.isclose(reloaded[key], result.metrics[key], rel_tol=1e-5, abs_tol=1e-6)
        _check(same, f"loaded artifact {key} {reloaded[key]} == trained {result.metrics[key]}")
    return result.metrics


_SENTENCES = (
    "the cat sat on the mat and looked at the dog.",
    "a dog ran in the park after the red ball.",
    "the bird sang a song in the old tree.",
)


def _check_generation(model_type: str, workdir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """check_model for a language model: a tiny corpus, a few training steps, then the
    artifact as a generator."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [_SENTENCES[(i * 5 + i // 4) % len(_SENTENCES)] for i in range(240)]
    (workdir / "corpus.txt").write_text("\n".join(lines) + "\n")
    raw = {
        "name": "conformance",
        "seed": 0,
        "data": {
            "source": str(workdir / "corpus.txt"),
            "task": "generation",
            "split": {"val": 0.1, "test": 0.2},
        },
        "models": [{"name": "m", "type": model_type, **params}],
        "train": {"batch_size": 8, "max_steps": 10, "eval_interval": 5, "eval_batches": 2},
        "evaluate": {"bootstrap": 50, "sample_tokens": 10},
    }
    config = validate_config(raw)
    result = train_model(config, "m", workdir / "run")
    bpb = result.metrics["bits_per_byte"]
    _check(math.isfinite(bpb) and bpb > 0, f"bits per byte {bpb} is a positive number")

    generator = load_generator(result.artifact)
    _check(generator.task == "generation", "the artifact loads as a generator")
    greedy = generator.generate("the cat", max_new_tokens=12, temperature=0)
    _check(isinstance(greedy, str), "generate returns text")
    again = "".join(generator.stream("the cat", max_new_tokens=12, temperature=0))
    _check(again == greedy, "greedy decoding is deterministic and streams what it generates")
    sampled = [generator.generate("the", max_new_tokens=12, seed=3) for _ in range(2)]
    _check(sampled[0] == sampled[1], "a seed reproduces sampling")
    if generator.context_length < 100_000:  # an n-gram model reads any prompt
        ids, cut = generator.prompt_ids("the dog ran. " * generator.context_length)
        fits = cut > 0 and len(ids) < generator.context_length
        _check(fits, "a long prompt keeps its last tokens")

    onnx = generator.manifest["onnx"]
    _check(bool(onnx["exported"] or onnx["reason"]), "ONNX export is done or explained")
    if onnx["exported"]:
        graph = load_generator(result.artifact, backend="onnxruntime")
        prompt = generator.encode("the bird sang")
        native, _ = generator.decoder.prefill(prompt)
        exported, _ = graph.decoder.prefill(prompt)
        same = np.allclose(native, exported, atol=1e-4, rtol=0)
        _check(same, "ONNX Runtime and PyTorch give the same next-token logits")

    _, data = prepare(config)
    (workdir / "rescored").mkdir(exist_ok=True)
    reloaded = evaluate_generator(result.artifact, data.splits, workdir / "rescored")
    same = math.isclose(reloaded["bits_per_byte"], bpb, rel_tol=1e-5, abs_tol=1e-6)
    _check(same, f"loaded artifact bits_per_byte {reloaded['bits_per_byte']} == trained {bpb}")
    return result.metrics


_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _write_pairs(path: Path, n: int, seed: int) -> Path:
    """A CSV of `n` distinct pairs: digits spelled out (source) -> the digits (target)."""
    rng = np.random.default_rng(seed)
    pairs: dict[str, str] = {}
    while len(pairs) < n:
        digits = rng.integers(0, 10, size=int(rng.integers(1, 4)))
        pairs[" ".join(_DIGITS[d] for d in digits)] = " ".join(str(d) for d in digits)
    frame = pd.DataFrame({"source": list(pairs), "target": list(pairs.values())})
    frame.to_csv(path, index=False)
    return path


def _check_seq2seq(model_type: str, workdir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """check_model for a seq2seq model: tiny pairs, a few training steps, then the artifact
    as a translator."""
    workdir.mkdir(parents=True, exist_ok=True)
    # a network's own train_defaults (a thousand steps) would win over the top-level train:
    steps = {"max_steps": 10, "eval_interval": 5} if not _classical(model_type) else {}
    raw = {
        "name": "conformance",
        "seed": 0,
        "data": {
            "source": str(_write_pairs(workdir / "pairs.csv", 120, seed=0)),
            "task": "seq2seq",
            "split": {"val": 0.1, "test": 0.2},
        },
        "models": [{"name": "m", "type": model_type, **steps, **params}],
        "train": {"batch_size": 8, "eval_batches": 2},
        "evaluate": {"bootstrap": 50, "beam_size": 2, "examples": 2},
    }
    config = validate_config(raw)
    result = train_model(config, "m", workdir / "run")
    bleu = result.metrics["bleu"]
    _check(math.isfinite(bleu) and 0 <= bleu <= 100, f"BLEU {bleu} is in [0, 100]")

    translator = load_translator(result.artifact)
    _check(translator.manifest.get("task") == "seq2seq", "the manifest's task is seq2seq")
    _check(translator.task == "seq2seq", "the artifact loads as a translator")
    sources = ["three one four", "one", "nine two"]
    outputs = translator.translate(sources)
    _check(
        len(outputs) == len(sources) and all(isinstance(t, str) for t in outputs),
        "translate gives one string per source",
    )
    _check(translator.translate(sources) == outputs, "translating is deterministic")
    sampled = [translator.translate(sources, temperature=1.0, seed=3) for _ in range(2)]
    _check(sampled[0] == sampled[1], "a seed reproduces sampling")
    greedy = translator.translate(sources[:1], beam_size=1)[0]
    streamed = "".join(translator.stream(sources[0], temperature=0, max_new_tokens=1000))
    _check(streamed == greedy, "greedy streaming gives what greedy search gives")
    long = "one two " * 500
    full = translator.encode(long)
    ids, cut = translator.prompt_ids(long)
    start = ids[:-1] == full[: len(ids) - 1]  # the last may be the tokenizer's own end (T5)
    _check(start and len(ids) + cut == len(full), "a long source keeps its first tokens")

    onnx = translator.manifest["onnx"]
    _check(bool(onnx["exported"] or onnx["reason"]), "ONNX export is done or explained")
    if onnx["exported"]:
        graphs = load_translator(result.artifact, backend="onnxruntime")
        same = graphs.translate(sources) == outputs and graphs.translate(
            sources, beam_size=1
        ) == translator.translate(sources, beam_size=1)
        _check(same, "ONNX Runtime and PyTorch translate alike (beam and greedy search)")

    _, data = prepare(config)
    (workdir / "rescored").mkdir(exist_ok=True)
    reloaded = evaluate_translator(translator, data.splits, workdir / "rescored", "bleu")
    same = math.isclose(reloaded["bleu"], bleu, rel_tol=1e-9, abs_tol=1e-9)
    _check(same, f"loaded artifact BLEU {reloaded['bleu']} == trained {bleu}")
    return result.metrics


def _classical(model_type: str) -> bool:
    return not get_spec(model_type).trains_with_trainer


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(f"check_model: {what} failed")


__all__ = ["check_model"]
