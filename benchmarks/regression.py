"""Claims of the regression ladder, side by side on one split of one synthetic table:

1. ladder's `gradient_boosting` reaches an R² within 0.01 of scikit-learn's
   `HistGradientBoostingRegressor()` with its defaults;
2. ladder's `mlp` reaches an R² within 0.02 of `MLPRegressor()` on a standardised target;
3. split-conformal intervals at 0.9 cover 0.88-0.92 of the test rows, for every rung;
4. the Trainer with a regression objective runs at >= 0.97x a plain PyTorch MSE loop (the same
   overhead bar `train_overhead.py` sets for classification), rounds alternating.

The table (default 12,000 rows) has known structure: five numeric features with non-linear and
interaction effects, two categoricals that shift the target, about 5 % missing values in two
numeric columns and one categorical, and Gaussian noise. ladder reads `train.csv` with
`data.split.val: 0.1` (its validation rows calibrate the intervals and stop the MLP early) and
`test.csv` as `data.test_source`; the scikit-learn models fit all of `train.csv` (their own
early stopping holds out 10 % internally) and are scored on the same `test.csv`.
Run: .venv/bin/python benchmarks/regression.py [--rows 12000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ladder.config import TrainConfig
from ladder.models.mlp import MLPConfig, build_mlp
from ladder.runner.ladder import run
from ladder.train import Trainer
from ladder.train.objective import Regression

NUMERIC = ["a", "b", "c", "d", "e"]
CATEGORICAL = ["city", "kind"]
RUNGS = ["mean", "linear", "ridge", "tree", "knn", "forest", "gbdt", "mlp"]


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """A regression table with known structure, categoricals and missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NUMERIC)))
    city = rng.choice(["north", "south", "east", "west", "centre"], size=n)
    kind = rng.choice(["flat", "house", "loft"], size=n, p=[0.5, 0.3, 0.2])
    shift = pd.Series(city).map(
        {"north": 2.0, "south": -1.0, "east": 0.5, "west": 0.0, "centre": 3.0}
    )
    bonus = pd.Series(kind).map({"flat": 0.0, "house": 1.5, "loft": -0.7})
    y = (
        3 * np.sin(x[:, 0])
        + x[:, 1] ** 2
        + 2 * x[:, 2] * x[:, 3]
        + 0.5 * x[:, 4]
        + shift.to_numpy()
        + bonus.to_numpy()
        + rng.normal(0, 0.5, n)
    )
    frame = pd.DataFrame(x, columns=NUMERIC).assign(city=city, kind=kind, price=y)
    for column in ("b", "e", "kind"):
        frame.loc[rng.random(n) < 0.05, column] = np.nan
    return frame


def sklearn_gbdt(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """HistGradientBoostingRegressor() defaults; categoricals ordinal-encoded as categories."""
    encode = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
    )
    model = make_pipeline(
        encode, HistGradientBoostingRegressor(categorical_features=[0, 1], random_state=0)
    )
    model.fit(train.drop(columns="price"), train["price"])
    return r2_score(test["price"], model.predict(test.drop(columns="price")))


def sklearn_mlp(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """MLPRegressor() defaults on imputed, scaled, one-hot features and a standardised target."""
    features = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    model = TransformedTargetRegressor(
        make_pipeline(features, MLPRegressor(random_state=0)), transformer=StandardScaler()
    )
    model.fit(train.drop(columns="price"), train["price"])
    return r2_score(test["price"], model.predict(test.drop(columns="price")))


def ladder_ladder(folder: Path) -> pd.DataFrame:
    """The regression ladder with default hyperparameters; its leaderboard."""
    config = {
        "name": "regression-bench",
        "seed": 0,
        "data": {
            "source": "train.csv",
            "test_source": "test.csv",
            "target": "price",
            "split": {"val": 0.1},
        },
        "evaluate": {"intervals": 0.9},
        "models": [
            {"name": "mean", "type": "mean"},
            {"name": "linear", "type": "linear_regression"},
            {"name": "ridge", "type": "ridge"},
            {"name": "tree", "type": "decision_tree"},
            {"name": "knn", "type": "knn"},
            {"name": "forest", "type": "random_forest", "n_estimators": 100},
            {"name": "gbdt", "type": "gradient_boosting"},
            {"name": "mlp", "type": "mlp"},
        ],
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return run(folder / "config.yaml", out=folder / "run").leaderboard.set_index("model")


# ----------------------------------------------------------------------------- overhead


def _data(n: int = 8192, features: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = (X @ rng.normal(size=features) + np.sin(X[:, 0])).astype(np.float32)
    return X, y


def _mlp(features: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_mlp(MLPConfig(hidden=[128, 64]), (features,), 1)


def plain_loop(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """A hand-written MSE loop over shuffled index batches; samples per second."""
    module = _mlp(X.shape[1])
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=0.0)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        module.train()
        for rows in torch.randperm(len(X_t), generator=generator).split(64):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(module(X_t[rows])[:, 0], y_t[rows])
            loss.backward()
            optimizer.step()
    return epochs * len(X) / (time.perf_counter() - start)


def ladder_loop(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """ladder's Trainer with the regression objective; samples per second."""
    config = TrainConfig(epochs=epochs, batch_size=64, early_stopping=None)
    trainer = Trainer(_mlp(X.shape[1]), config, objective=Regression("mse"))
    start = time.perf_counter()
    trainer.fit(X, y)
    return epochs * len(X) / (time.perf_counter() - start)


def overhead(rounds: int, epochs: int = 2) -> tuple[float, float]:
    """Median samples/s ratio ladder / plain, and the median of the rounds' own ratios."""
    X, y = _data()
    plain_loop(X, y, 1), ladder_loop(X, y, 1)  # warm-up
    plain, ours = [], []
    for r in range(rounds):
        pair = [("plain", plain_loop), ("ladder", ladder_loop)]
        for name, loop in pair if r % 2 == 0 else pair[::-1]:
            (plain if name == "plain" else ours).append(loop(X, y, epochs))
    ratio = statistics.median(ours) / statistics.median(plain)
    paired = statistics.median(a / b for a, b in zip(ours, plain, strict=True))
    return ratio, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000, help="rows of the table (>= 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the overhead check")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    table = make_table(max(2000, args.rows))
    cut = int(0.8 * len(table))
    train, test = table.iloc[:cut], table.iloc[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        board = ladder_ladder(folder)
    sk_gbdt, sk_mlp = sklearn_gbdt(train, test), sklearn_mlp(train, test)
    print(
        f"table: {len(table):,} rows ({len(train):,} train incl. 10% validation, "
        f"{len(test):,} test), 2 categoricals, ~5% missing in 3 columns"
    )
    print(f"{'rung':<8} {'rmse':>8} {'r2':>7} {'coverage@0.9':>13} {'width':>7}")
    for name in RUNGS:
        row = board.loc[name]
        print(
            f"{name:<8} {row['rmse']:>8.3f} {row['r2']:>7.4f} {row['coverage']:>13.3f} "
            f"{row['interval_width']:>7.2f}"
        )
    gbdt, mlp = board.loc["gbdt", "r2"], board.loc["mlp", "r2"]
    print(
        f"GBDT R²: ladder {gbdt:.4f}, HistGradientBoostingRegressor() {sk_gbdt:.4f}, "
        f"diff {gbdt - sk_gbdt:+.4f} (goal: within 0.01)"
    )
    print(
        f"MLP  R²: ladder {mlp:.4f}, MLPRegressor() standardised target {sk_mlp:.4f}, "
        f"diff {mlp - sk_mlp:+.4f} (goal: within 0.02)"
    )
    covered = board.loc[RUNGS, "coverage"]
    print(f"coverage at 0.9: {covered.min():.3f}-{covered.max():.3f} (goal: 0.88-0.92)")
    ratio, paired = overhead(max(3, args.rounds))
    print(f"Trainer (mse) / plain PyTorch loop: {ratio:.3f} (paired {paired:.3f}; goal >= 0.97)")


if __name__ == "__main__":
    main()
