"""Leaderboard rows of a run folder: test metrics, bootstrap CIs, paired tests, costs.

Every figure comes from files the models left in the run folder (metrics.json,
test_predictions.csv, the artifact), so cached and freshly trained models are treated alike.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.evaluate.compare import build_leaderboard, pareto_front, time_predictions
from ladder.export.artifact import load
from ladder.export.lm_artifact import load_generator
from ladder.export.s2s_artifact import load_translator
from ladder.generate.stream import SamplingParams, stream_ids
from ladder.tasks import Task
from ladder.tasks.classification import CLASSIFICATION


def leaderboard_rows(
    run_dir: Path,
    models: list[tuple[str, str]],
    status: dict[str, str],
    test_inputs: Any,
    bootstrap: int,
    seed: int,
    primary: str = "accuracy",
    task: Task = CLASSIFICATION,
) -> pd.DataFrame:
    """The leaderboard of `models` ((name, type) pairs) whose results are in `run_dir`.

    `status` maps a model to "ok", "cached" or "failed: <why>"; `test_inputs` are the raw test
    rows (a DataFrame or an image array) used to time the saved artifacts.
    """
    rows: list[dict[str, Any]] = []
    predictions: dict[str, pd.DataFrame] = {}
    for name, model_type in models:
        model_dir = run_dir / "models" / name
        row: dict[str, Any] = {"model": name, "type": model_type, "status": status.get(name)}
        metrics_file = model_dir / "metrics.json"
        if row["status"] is None or row["status"].startswith("failed") or not metrics_file.exists():
            rows.append({**row, "status": row["status"] or "not run"})
            continue
        metrics = json.loads(metrics_file.read_text())
        pred = pd.read_csv(model_dir / "test_predictions.csv")
        predictions[name] = pred
        artifact = model_dir / "artifact"
        if task.name == "generation":
            latency_ms, throughput = time_generation(artifact, test_inputs)
        elif task.name == "seq2seq":
            latency_ms, throughput = time_translation(artifact, test_inputs)
        else:
            model = load(artifact)
            one, batch = _timing_inputs(test_inputs)
            latency_ms, throughput = time_predictions(model.predict_outputs_raw, one, batch)
        rows.append(
            {
                **row,
                **task.leaderboard_figures(metrics, pred, bootstrap, seed),
                "variant_of": metrics.get("variant_of"),
                task.delta_column: metrics.get(task.delta_column),
                "params": metrics.get("params"),
                "size_bytes": sum(p.stat().st_size for p in artifact.iterdir() if p.is_file()),
                "train_seconds": metrics.get("train_seconds"),
                "latency_ms": latency_ms,
                "throughput_per_s": throughput,
            }
        )
    _add_comparisons(rows, predictions, primary, task)
    return build_leaderboard(rows, primary, task.leaderboard_columns, task.lower_is_better)


def _add_comparisons(
    rows: list[dict[str, Any]], predictions: dict[str, pd.DataFrame], primary: str, task: Task
) -> None:
    """The task's paired test against the best model (McNemar; regression: a t-test on
    squared errors), and the Pareto front of the headline metric vs latency."""
    done = [r for r in rows if r["model"] in predictions]
    if not done:
        return
    sign = -1 if primary in task.lower_is_better else 1
    best = max(done, key=lambda r: sign * _number(r.get(primary)))
    truth_column, pred_column = task.prediction_columns
    truth = predictions[best["model"]][truth_column].to_numpy()
    best_pred = predictions[best["model"]][pred_column].to_numpy()
    headline = task.delta_metric
    better = -1 if headline in task.lower_is_better else 1
    front = pareto_front(
        [better * _number(r[headline]) for r in done], [_number(r["latency_ms"]) for r in done]
    )
    for row, on_front in zip(done, front, strict=True):
        pred = predictions[row["model"]][pred_column].to_numpy()
        row[task.paired_column] = task.paired_p(truth, best_pred, pred)
        row["pareto"] = on_front


def time_generation(artifact: Path, prompts: list[str], tokens: int = 32) -> tuple[float, float]:
    """(milliseconds per generated token, tokens per second) of one greedy stream of
    `tokens` new tokens from the artifact, after a warm-up, over the first prompts."""
    generator = load_generator(artifact)
    params = SamplingParams(max_new_tokens=tokens, temperature=0)
    prompts = [p for p in prompts if p][:3] or ["\n"]
    generator.generate(prompts[0], SamplingParams(max_new_tokens=2, temperature=0))  # warm-up
    made, started = 0, time.perf_counter()
    for prompt in prompts:
        ids, _ = generator.prompt_ids(prompt)
        made += sum(1 for _ in stream_ids(generator.decoder, ids, params))
    seconds = time.perf_counter() - started
    return 1000 * seconds / made, made / seconds


def time_translation(artifact: Path, sources: list[str], batch: int = 32) -> tuple[float, float]:
    """(milliseconds per source translated alone, sources per second in a batch of `batch`)
    of the artifact with its own decoding, after a warm-up, over the first test sources."""
    generator = load_translator(artifact)
    sources = [s for s in sources if s][:3] or ["a"]
    generator.translate(sources[:1])  # warm-up
    started = time.perf_counter()
    for source in sources:
        generator.translate([source])
    latency_ms = 1000 * (time.perf_counter() - started) / len(sources)
    rows = [sources[i % len(sources)] for i in range(batch)]
    started = time.perf_counter()
    generator.translate(rows)
    return latency_ms, batch / (time.perf_counter() - started)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _timing_inputs(test_inputs: Any, batch: int = 256) -> tuple[Any, Any]:
    """One test record and a batch of `batch` (test rows repeated when there are fewer)."""
    rows = np.resize(np.arange(len(test_inputs)), batch)
    if isinstance(test_inputs, pd.DataFrame):
        return test_inputs.iloc[:1], test_inputs.iloc[rows].reset_index(drop=True)
    return test_inputs[:1], test_inputs[rows]
