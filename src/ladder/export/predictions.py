"""Predictions of a loaded artifact as a table: label and one probability column per class."""

from __future__ import annotations

from typing import Any

import pandas as pd  # noqa: TID253

from ladder.export.artifact import LoadedModel


def predictions_frame(model: LoadedModel, records: Any) -> pd.DataFrame:
    """One row per record: `input` (for files), `prediction`, then `prob_<label>` per class;
    for a regression model `prediction` is the value, with `lower` and `upper` when it was
    trained with prediction intervals."""
    raw, ids = model.read(records)
    if model.task == "regression":
        values = model.predict_outputs_raw(raw)
        frame = pd.DataFrame({"input": ids}) if ids is not None else pd.DataFrame()
        frame["prediction"] = values
        interval = model.manifest.get("interval")
        if interval:
            frame["lower"] = values - float(interval["radius"])
            frame["upper"] = values + float(interval["radius"])
        return frame
    proba = model.predict_proba_raw(raw)
    frame = (
        pd.DataFrame({"input": ids}) if ids is not None else pd.DataFrame(index=range(len(proba)))
    )
    frame["prediction"] = [model.labels[i] for i in proba.argmax(axis=1)]
    for i, label in enumerate(model.labels):
        frame[f"prob_{label}"] = proba[:, i]
    return frame
