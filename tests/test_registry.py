"""The registry: every type resolves to a spec, and `describe_models` shows parameters."""

from __future__ import annotations

from ladder.registry import MODEL_TYPES, describe_models, get_spec


def test_registry_holds_the_classical_neural_and_language_ladders():
    assert set(MODEL_TYPES) == {
        "logistic_regression",
        "decision_tree",
        "random_forest",
        "svm",
        "gradient_boosting",
        "knn",
        "mean",
        "linear_regression",
        "ridge",
        "lasso",
        "elastic_net",
        "lightgbm",
        "xgboost",
        "tfidf_logreg",
        "tfidf_svm",
        "tfidf_ridge",
        "mlp",
        "cnn",
        "textcnn",
        "rnn",
        "scratch_mlp",
        "scratch_cnn",
        "scratch_lstm",
        "transformer",
        "pretrained",
        "ngram",
        "rnn_lm",
        "gpt",
        "causal_lm",
        "memory",
        "seq2seq_rnn",
        "seq2seq_transformer",
        "pretrained_seq2seq",
    }
    assert {t for t in MODEL_TYPES if "generation" in get_spec(t).tasks} == {
        "ngram",
        "rnn_lm",
        "gpt",
        "causal_lm",
    }
    assert {t for t in MODEL_TYPES if "seq2seq" in get_spec(t).tasks} == {
        "memory",
        "seq2seq_rnn",
        "seq2seq_transformer",
        "pretrained_seq2seq",
    }
    assert get_spec("cnn").inputs == ("image",)
    assert get_spec("mlp").inputs == ("tabular", "image")
    assert {get_spec(t).family for t in ("svm", "knn")} == {"classical"}


def test_describe_models_lists_parameters_with_defaults():
    rows = {row["type"]: row for row in describe_models()}
    assert rows["random_forest"]["params"]["n_estimators"] == 100  # scikit-learn's default
    assert rows["logistic_regression"]["params"]["max_iter"] == 1000  # ladder's default
    assert "probability" not in rows["svm"]["params"]  # ladder always calibrates the SVM
    assert rows["mlp"]["params"]["hidden"] == [128]
    assert rows["cnn"]["params"]["arch"] == "simple"
