"""Claims of the regression ladder, side by side on one split of one synthetic table:

1. ladder's `gradient_boosting` reaches an R² within 0.01 of scikit-learn's
   `HistGradientBoostingRegressor()` with its defaults;
2. ladder's `mlp` reaches an R² within 0.02 of `MLPRegressor()` on a standardised target;
3. split-conformal intervals at 0.9 cover 0.88-0.92 of the test rows, for every rung;
4. the Trainer with a regression objective runs at >= 0.97x a plain PyTorch MSE loop, on
   `train_overhead.py`'s workload (LeNet-5, 4096 images of 1x32x32, batch 64, AdamW) with a
   numeric target: the same overhead bar it sets for classification, rounds alternating.

The table (default 12,000 rows) has known structure: five numeric features with non-linear and
interaction effects, two categoricals that shift the target, about 5 % missing values in two
numeric columns and one categorical, and Gaussian noise. ladder reads `train.csv` with
`data.split.val: 0.2` (its validation rows calibrate the intervals and stop the MLP early) and
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
from ladder.models.cnn import CNNConfig, build_cnn
from ladder.runner.ladder import run
from ladder.train import History, Trainer
from ladder.train.objective import Regression

NUMERIC = ["a", "b", "c", "d", "e"]
CATEGORICAL = ["city", "kind"]
SHAPE = (1, 32, 32)  # the overhead check's images, as in train_overhead.py
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
            "split": {"val": 0.2},
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


def _data(n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """train_overhead.py's workload with a numeric target: 4096 random 1x32x32 images, the
    target a random linear function of the pixels (float32)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, *SHAPE)).astype(np.float32)
    y = (X.reshape(n, -1) @ rng.normal(size=int(np.prod(SHAPE))) / 32).astype(np.float32)
    return X, y


def _lenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_cnn(CNNConfig(arch="lenet5"), SHAPE, 1)


def plain_loop(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """A hand-written MSE loop over shuffled index batches; samples per second."""
    module = _lenet()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4)
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
    config = TrainConfig(
        epochs=epochs,
        batch_size=64,
        early_stopping=None,
        optimizer={"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
    )
    trainer = Trainer(_lenet(), config, callbacks=[History()], objective=Regression("mse"))
    start = time.perf_counter()
    trainer.fit(X, y)
    return epochs * len(X) / (time.perf_counter() - start)


def overhead(rounds: int, epochs: int = 1) -> tuple[float, float]:
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


def one_table(rows: int, seed: int) -> tuple[pd.DataFrame, float, float, int, int]:
    """ladder's leaderboard and scikit-learn's GBDT and MLP R² on the table of `seed`, its
    last 20 % the test rows; and the train and test row counts."""
    table = make_table(rows, seed)
    cut = int(0.8 * len(table))
    train, test = table.iloc[:cut], table.iloc[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        board = ladder_ladder(folder)
    return board, sklearn_gbdt(train, test), sklearn_mlp(train, test), len(train), len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000, help="rows of the table (>= 2000)")
    parser.add_argument("--tables", type=int, default=3, help="tables (seeds) for the averages")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the overhead check")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = [one_table(max(2000, args.rows), seed) for seed in range(max(1, args.tables))]
    board, _, _, n_train, n_test = results[0]
    print(
        f"table: {n_train + n_test:,} rows ({n_train:,} train incl. 20% validation, "
        f"{n_test:,} test), 2 categoricals, ~5% missing in 3 columns; seed 0:"
    )
    coverage = pd.concat([r[0]["coverage"] for r in results], axis=1).loc[RUNGS]
    header = f"{'rung':<8} {'rmse':>8} {'r2':>7} {'coverage@0.9':>13} {'width':>7}"
    print(f"{header} {'coverage, mean of ' + str(len(results)) + ' tables':>28}")
    for name in RUNGS:
        row = board.loc[name]
        print(
            f"{name:<8} {row['rmse']:>8.3f} {row['r2']:>7.4f} {row['coverage']:>13.3f} "
            f"{row['interval_width']:>7.2f} {coverage.loc[name].mean():>28.3f}"
        )
    for name, ours, theirs, goal, what in (
        ("GBDT", "gbdt", 1, 0.01, "HistGradientBoostingRegressor()"),
        ("MLP ", "mlp", 2, 0.02, "MLPRegressor(), standardised target"),
    ):
        diffs = [r[0].loc[ours, "r2"] - r[theirs] for r in results]
        print(
            f"{name} R²: ladder {board.loc[ours, 'r2']:.4f}, {what} {results[0][theirs]:.4f}; "
            f"diff per table {', '.join(f'{d:+.4f}' for d in diffs)} (goal: within {goal})"
        )
    low, high = coverage.iloc[:, 0].min(), coverage.iloc[:, 0].max()
    means = coverage.mean(axis=1)
    print(
        f"coverage at 0.9, seed 0: {low:.3f}-{high:.3f}; mean over tables: "
        f"{means.min():.3f}-{means.max():.3f} (goal: 0.88-0.92)"
    )
    ratio, paired = overhead(max(3, args.rounds))
    print(f"Trainer (mse) / plain PyTorch loop: {ratio:.3f} (paired {paired:.3f}; goal >= 0.97)")


if __name__ == "__main__":
    main()
