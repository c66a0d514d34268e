"""The default search space of every registered model type (`ladder list --tune`): what a
`tune:` block of only settings searches.

Each space names the few hyperparameters that matter most for the type, over ranges that hold
the good values on small and medium data; every neural type also searches its learning rate
(and weight decay where it fits). A model type registered without a default space fails the
test that checks this table.
"""

from __future__ import annotations

from typing import Any

_LR = {"lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}}
_WD = {"weight_decay": {"low": 1.0e-6, "high": 1.0e-2, "log": True}}
_BATCH = {"batch_size": {"choices": [32, 64, 128]}}
_TFIDF = {
    "word_ngrams": {"choices": [[1, 1], [1, 2]]},
    "min_df": {"low": 1, "high": 3},
}

DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    # classical
    "logistic_regression": {"C": {"low": 1.0e-3, "high": 1.0e2, "log": True}},
    "decision_tree": {
        "max_depth": {"low": 2, "high": 32, "log": True},
        "min_samples_leaf": {"low": 1, "high": 20, "log": True},
        "criterion": {"choices": ["gini", "entropy"]},
    },
    "random_forest": {
        "n_estimators": {"low": 50, "high": 400, "log": True},
        "max_depth": {"choices": [None, 8, 16, 32]},
        "min_samples_leaf": {"low": 1, "high": 10, "log": True},
        "max_features": {"choices": ["sqrt", "log2", 0.5, 1.0]},
    },
    "svm": {
        "C": {"low": 1.0e-2, "high": 1.0e2, "log": True},
        "gamma": {"choices": ["scale", "auto"]},
        "kernel": {"choices": ["rbf", "linear", "poly"]},
    },
    "gradient_boosting": {
        "learning_rate": {"low": 1.0e-2, "high": 0.3, "log": True},
        "max_iter": {"low": 50, "high": 300, "log": True},
        "max_leaf_nodes": {"low": 8, "high": 64, "log": True},
        "min_samples_leaf": {"low": 5, "high": 50, "log": True},
        "l2_regularization": {"low": 1.0e-6, "high": 1.0, "log": True},
    },
    "knn": {
        "n_neighbors": {"low": 1, "high": 50, "log": True},
        "weights": {"choices": ["uniform", "distance"]},
        "p": {"choices": [1, 2]},
    },
    "mean": {},
    "linear_regression": {"fit_intercept": {"choices": [True, False]}},
    "ridge": {"alpha": {"low": 1.0e-4, "high": 1.0e3, "log": True}},
    "lasso": {"alpha": {"low": 1.0e-5, "high": 10.0, "log": True}},
    "elastic_net": {
        "alpha": {"low": 1.0e-5, "high": 10.0, "log": True},
        "l1_ratio": {"low": 0.05, "high": 0.95},
    },
    "lightgbm": {
        "learning_rate": {"low": 1.0e-2, "high": 0.3, "log": True},
        "n_estimators": {"low": 50, "high": 500, "log": True},
        "num_leaves": {"low": 8, "high": 128, "log": True},
        "min_child_samples": {"low": 5, "high": 50, "log": True},
    },
    "xgboost": {
        "learning_rate": {"low": 1.0e-2, "high": 0.3, "log": True},
        "n_estimators": {"low": 50, "high": 500, "log": True},
        "max_depth": {"low": 2, "high": 10},
        "subsample": {"low": 0.5, "high": 1.0},
    },
    "tfidf_logreg": {"C": {"low": 1.0e-2, "high": 1.0e2, "log": True}, **_TFIDF},
    "tfidf_svm": {"C": {"low": 1.0e-2, "high": 1.0e2, "log": True}, **_TFIDF},
    "tfidf_ridge": {"alpha": {"low": 1.0e-3, "high": 1.0e2, "log": True}, **_TFIDF},
    "ngram": {"order": {"low": 2, "high": 6}, "discount": {"low": 0.1, "high": 0.95}},
    "memory": {
        "analyzer": {"choices": ["char_wb", "word"]},
        "ngram_max": {"low": 2, "high": 5},
    },
    # neural
    "mlp": {
        **_LR,
        **_WD,
        "hidden": {"choices": [[64], [128], [256, 128], [512, 256]]},
        "dropout": {"low": 0.0, "high": 0.5},
        **_BATCH,
    },
    "cnn": {**_LR, **_WD, "dropout": {"low": 0.0, "high": 0.5}, **_BATCH},
    "textcnn": {
        **_LR,
        "embedding_dim": {"choices": [64, 128, 256]},
        "filters": {"choices": [64, 100, 200]},
        "dropout": {"low": 0.0, "high": 0.5},
    },
    "rnn": {
        **_LR,
        "cell": {"choices": ["lstm", "gru"]},
        "hidden": {"choices": [64, 128, 256]},
        "dropout": {"low": 0.0, "high": 0.5},
    },
    # the NumPy rungs: the spaces of their PyTorch twins, less what NumPy lacks
    "scratch_mlp": {
        **_LR,
        **_WD,
        "hidden": {"choices": [[64], [128], [256, 128]]},
        "dropout": {"low": 0.0, "high": 0.5},
        **_BATCH,
    },
    "scratch_cnn": {**_LR, **_WD, "dropout": {"low": 0.0, "high": 0.5}, **_BATCH},
    "scratch_lstm": {
        **_LR,
        "hidden": {"choices": [64, 128]},
        "dropout": {"low": 0.0, "high": 0.5},
    },
    "transformer": {
        **_LR,
        **_WD,
        "d_model": {"choices": [64, 128, 256]},
        "layers": {"low": 1, "high": 4},
        "dropout": {"low": 0.0, "high": 0.3},
    },
    "pretrained": {
        "lr": {"low": 1.0e-5, "high": 1.0e-4, "log": True},
        "batch_size": {"choices": [16, 32]},
        "layer_decay": {"low": 0.7, "high": 1.0},
    },
    "rnn_lm": {
        "lr": {"low": 3.0e-4, "high": 1.0e-2, "log": True},
        "hidden": {"choices": [128, 256, 512]},
        "dropout": {"low": 0.0, "high": 0.3},
    },
    "gpt": {
        "lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True},
        "n_layer": {"low": 2, "high": 6},
        "dropout": {"low": 0.0, "high": 0.2},
        **_WD,
    },
    "causal_lm": {
        "lr": {"low": 1.0e-5, "high": 1.0e-3, "log": True},
        "batch_size": {"choices": [4, 8, 16]},
    },
    "seq2seq_rnn": {
        "lr": {"low": 3.0e-4, "high": 1.0e-2, "log": True},
        "hidden_size": {"choices": [128, 256, 512]},
        "attention": {"choices": ["bahdanau", "luong"]},
        "dropout": {"low": 0.0, "high": 0.3},
    },
    "seq2seq_transformer": {
        "lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True},
        "d_model": {"choices": [64, 128, 256]},
        "dropout": {"low": 0.0, "high": 0.3},
    },
    "pretrained_seq2seq": {
        "lr": {"low": 1.0e-5, "high": 1.0e-3, "log": True},
        "batch_size": {"choices": [8, 16, 32]},
    },
}


def default_space(model_type: str) -> dict[str, Any]:
    """The default search space of `model_type` (empty for a type without a default)."""
    return DEFAULT_SPACES.get(model_type, {})
