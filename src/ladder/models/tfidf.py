"""TF-IDF text baselines: word and character n-grams into a linear model.

The strong classical rung for text: a scikit-learn `Pipeline` of TF-IDF features (word n-grams,
plus `char_wb` n-grams unless switched off) and logistic regression (`tfidf_logreg`) or a linear
SVM with calibrated probabilities (`tfidf_svm`), or for a numeric score ridge regression
(`tfidf_ridge`). The models take a 1-D array (or list) of raw
strings; an empty string is a valid input (it has no features, so the intercept decides).

Defaults were chosen by 5-fold cross-validation on the training part of rt-polarity:
word (1, 2) + char_wb (2, 5) n-grams, C=5 (logreg) and C=0.3 (svm).

ONNX: `ladder.export.onnx.export_tfidf` exports the classifier as a graph over TF-IDF vectors,
with the fitted vocabularies and idf in its metadata; `ladder.export.tfidf_runtime` vectorises
texts in numpy exactly as these pipelines do, so the ONNX Runtime backend needs no scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt

from ladder.errors import ArtifactError
from ladder.models.spec import ModelSpec


def _check_range(value: list[int]) -> list[int]:
    if len(value) != 2 or not 1 <= value[0] <= value[1]:
        raise ValueError(f"must be [min_n, max_n] with 1 <= min_n <= max_n, got {value}")
    return value


# An n-gram range as YAML writes it: [min_n, max_n].
NgramRange = Annotated[list[int], AfterValidator(_check_range)]


class TfidfConfig(BaseModel):
    """Features shared by the TF-IDF models.

    `char_ngrams: null` keeps word n-grams only. `max_features` caps each vectorizer (word and
    char) separately, keeping its most frequent n-grams.
    """

    model_config = ConfigDict(extra="forbid")
    type_name: ClassVar[str]

    word_ngrams: NgramRange = Field(default_factory=lambda: [1, 2])
    char_ngrams: NgramRange | None = Field(default_factory=lambda: [2, 5])
    min_df: PositiveInt = 1  # drop n-grams seen in fewer training texts
    max_features: PositiveInt | None = None
    sublinear_tf: bool = True  # 1 + log(tf): a word repeated ten times is not ten times the cue
    lowercase: bool = True


class TfidfLogRegConfig(TfidfConfig):
    """TF-IDF features into logistic regression."""

    type_name: ClassVar[str] = "tfidf_logreg"
    C: float = Field(5.0, gt=0)  # inverse regularisation strength
    max_iter: PositiveInt = 1000


class TfidfSVMConfig(TfidfConfig):
    """TF-IDF features into a linear SVM, probabilities by Platt scaling."""

    type_name: ClassVar[str] = "tfidf_svm"
    C: float = Field(0.3, gt=0)  # inverse regularisation strength


class TfidfRidgeConfig(TfidfConfig):
    """TF-IDF features into ridge regression (a text with a numeric score)."""

    type_name: ClassVar[str] = "tfidf_ridge"
    alpha: float = Field(1.0, gt=0)  # L2 regularisation strength


TYPES = ("tfidf_logreg", "tfidf_svm", "tfidf_ridge")
_NAMES = ("word", "char")  # FeatureUnion part names: ngrams of words, of characters


def default_params(model_type: str) -> dict[str, Any]:
    """The hyperparameters of a TF-IDF type with their defaults."""
    return _CONFIGS[model_type]().model_dump()


# ----------------------------------------------------------------------------- building


def build_features(config: TfidfConfig) -> Any:
    """The unfitted feature step: one TfidfVectorizer, or a FeatureUnion of words and chars."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    shared = {
        "min_df": config.min_df,
        "max_features": config.max_features,
        "sublinear_tf": config.sublinear_tf,
        "lowercase": config.lowercase,
    }
    word = TfidfVectorizer(analyzer="word", ngram_range=tuple(config.word_ngrams), **shared)
    if config.char_ngrams is None:
        return word
    # char_wb: character n-grams inside word boundaries, robust to typos and word forms
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(config.char_ngrams), **shared)
    return FeatureUnion(list(zip(_NAMES, [word, char], strict=True)))


def build(config: TfidfConfig, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """An unfitted Pipeline([features, clf]) (shape and classes are unused)."""
    from sklearn.pipeline import Pipeline

    if isinstance(config, TfidfRidgeConfig):
        from sklearn.linear_model import Ridge

        clf: Any = Ridge(alpha=config.alpha)
    elif isinstance(config, TfidfLogRegConfig):
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=config.C, max_iter=config.max_iter)
    else:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        # LinearSVC has no predict_proba; calibrate its margins (as the `svm` type does)
        clf = CalibratedClassifierCV(LinearSVC(C=config.C), ensemble=False)
    return Pipeline([("features", build_features(config)), ("clf", clf)])


# ----------------------------------------------------------------------------- persistence


@contextmanager
def packed_vocabularies(estimator: Any) -> Iterator[None]:
    """While open: each fitted vectorizer's `vocabulary_` is one JSON string of its terms in
    column order (restored on exit); does nothing to other estimators.

    skops writes a dict entry by entry (~800 bytes each: 160 MB and 10 s to load for the 200k
    n-grams of 10k sentences); one string takes ~10 bytes a term (7 MB, loaded in under 1 s).
    """
    vectorizers = [v for v in fitted_vectorizers(estimator) if isinstance(v.vocabulary_, dict)]
    vocabularies = [v.vocabulary_ for v in vectorizers]
    try:
        for vectorizer, vocabulary in zip(vectorizers, vocabularies, strict=True):
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            vectorizer.vocabulary_ = json.dumps(terms, ensure_ascii=False, separators=(",", ":"))
        yield
    finally:
        for vectorizer, vocabulary in zip(vectorizers, vocabularies, strict=True):
            vectorizer.vocabulary_ = vocabulary


def fitted_vectorizers(estimator: Any) -> list[Any]:
    """The fitted TfidfVectorizers of a TF-IDF pipeline in feature-column order (words, then
    characters); [] for any other estimator."""
    if not any(is_pipeline(estimator, t) for t in TYPES):
        return []
    vectorizers = _vectorizers(estimator.steps[0][1]) or []
    return [v for v in vectorizers if hasattr(v, "vocabulary_")]


def _unpack(vectorizer: Any) -> None:
    """Turn a vocabulary packed by `packed_vocabularies` back into scikit-learn's dict."""
    packed = getattr(vectorizer, "vocabulary_", None)
    if not isinstance(packed, str):
        return  # a dict (saved without packing) is checked like any other
    try:
        terms = json.loads(packed)
    except (ValueError, RecursionError):
        return  # left as a string, which the check refuses
    if isinstance(terms, list) and all(isinstance(t, str) for t in terms):
        vectorizer.vocabulary_ = {term: i for i, term in enumerate(terms)}
        if len(vectorizer.vocabulary_) != len(terms):  # a repeated term
            vectorizer.vocabulary_ = None


def is_pipeline(estimator: Any, model_type: str) -> bool:
    """Whether `estimator` has exactly the structure `build` gives `model_type`."""
    from sklearn.pipeline import Pipeline

    if type(estimator) is not Pipeline:
        return False
    try:  # a loaded file may hold anything where build puts lists, names and strings
        (features_name, features), (clf_name, clf) = estimator.steps
        return (
            (features_name, clf_name) == ("features", "clf")
            and _vectorizers(features) is not None
            and _is_classifier(clf, model_type)
        )
    except (TypeError, ValueError, AttributeError):
        return False


def _vectorizers(features: Any) -> list[Any] | None:
    """The TfidfVectorizers of a feature step built by `build_features`, else None."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    if type(features) is TfidfVectorizer:
        parts = [("word", features)]
    elif type(features) is FeatureUnion:
        parts = list(features.transformer_list)
        if [name for name, _ in parts] != list(_NAMES):
            return None
    else:
        return None
    analyzers = {"word": "word", "char": "char_wb"}
    pattern = TfidfVectorizer().token_pattern
    ok = all(
        type(v) is TfidfVectorizer
        and isinstance(v.analyzer, str)
        and v.analyzer == analyzers[name]
        # what build never sets could run other code paths (custom regexes, callables)
        and all(p is None for p in (v.tokenizer, v.preprocessor, v.vocabulary, v.stop_words))
        and isinstance(v.token_pattern, str)
        and v.token_pattern == pattern
        for name, v in parts
    )
    return [v for _, v in parts] if ok else None


def _is_classifier(clf: Any, model_type: str) -> bool:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    if model_type == "tfidf_ridge":
        return type(clf) is Ridge
    if model_type == "tfidf_logreg":
        return type(clf) is LogisticRegression
    fitted = [c.estimator for c in getattr(clf, "calibrated_classifiers_", [])]
    return type(clf) is CalibratedClassifierCV and all(
        type(m) is LinearSVC for m in [clf.estimator, *fitted]
    )


def check_fitted(estimator: Any, path: Path) -> None:
    """Unpack the vocabularies of a loaded pipeline; ArtifactError unless its features and
    classifier agree.

    scikit-learn turns vocabulary entries into sparse column indices without bounds checks, so
    a tampered index could read out-of-bounds memory at predict time.
    """
    n_features = 0
    for vectorizer in _vectorizers(estimator.steps[0][1]) or []:
        _unpack(vectorizer)
        n = _valid_vocabulary(vectorizer)
        if n is None:
            raise ArtifactError(
                f"{path}: inconsistent TF-IDF vocabulary (damaged or tampered file)"
            )
        n_features += n
    clf = estimator.steps[1][1]
    calibrated = getattr(clf, "calibrated_classifiers_", None)  # the svm's fitted LinearSVCs
    for model in [c.estimator for c in calibrated] if calibrated is not None else [clf]:
        width, coef = getattr(model, "n_features_in_", None), getattr(model, "coef_", None)
        if not (
            isinstance(width, int | np.integer)
            and isinstance(coef, np.ndarray)
            and coef.ndim in (1, 2)  # ridge on one target: (n_features,)
            and width == coef.shape[-1] == n_features
        ):
            raise ArtifactError(
                f"{path}: the classifier expects {width} features but the TF-IDF step gives "
                f"{n_features} (damaged or tampered file)"
            )


def _valid_vocabulary(vectorizer: Any) -> int | None:
    """The feature count of a fitted vectorizer whose vocabulary indexes its idf_ exactly once."""
    from sklearn.feature_extraction.text import TfidfTransformer

    vocabulary = getattr(vectorizer, "vocabulary_", None)
    transformer = getattr(vectorizer, "_tfidf", None)
    idf = getattr(transformer, "idf_", None)
    if type(transformer) is not TfidfTransformer or not isinstance(vocabulary, dict):
        return None
    if not isinstance(idf, np.ndarray) or idf.ndim != 1 or idf.dtype.kind != "f":
        return None
    indices = list(vocabulary.values())
    if not all(isinstance(i, int | np.integer) for i in indices):
        return None
    # every index in [0, len(idf_)) exactly once: a permutation of the columns
    if len(indices) != len(idf) or set(map(int, indices)) != set(range(len(idf))):
        return None
    return len(idf)


def sample_texts(estimator: Any, n: int, seed: int = 0) -> np.ndarray:
    """`n` texts to check a fitted TF-IDF pipeline on: random runs of its word vocabulary's
    unigrams, with an empty text and one of unseen, non-ASCII words among them."""
    rng = np.random.default_rng(seed)
    vectorizers = fitted_vectorizers(estimator)
    words = [t for t in (vectorizers[0].vocabulary_ if vectorizers else []) if " " not in t]
    pool = np.array(words or ["text"], dtype=object)  # one conversion, not one per draw
    texts = [" ".join(rng.choice(pool, size=rng.integers(1, 13))) for _ in range(n)]
    special = ["", "Café naïve 日本語 😀 Ünïcödé"]
    texts[: min(n, len(special))] = special[:n]
    return np.array(texts, dtype=object)


# ----------------------------------------------------------------------------- registry

_CONFIGS: dict[str, type[TfidfConfig]] = {
    "tfidf_logreg": TfidfLogRegConfig,
    "tfidf_svm": TfidfSVMConfig,
    "tfidf_ridge": TfidfRidgeConfig,
}

SPECS: list[ModelSpec] = [
    ModelSpec(
        "tfidf_logreg",
        "classical",
        TfidfLogRegConfig,
        build,
        "word + char n-gram TF-IDF into logistic regression",
        inputs=("text",),
    ),
    ModelSpec(
        "tfidf_svm",
        "classical",
        TfidfSVMConfig,
        build,
        "word + char n-gram TF-IDF into a linear SVM with calibrated probabilities",
        inputs=("text",),
    ),
    ModelSpec(
        "tfidf_ridge",
        "classical",
        TfidfRidgeConfig,
        None,
        "word + char n-gram TF-IDF into ridge regression (texts with a numeric score)",
        inputs=("text",),
        tasks=("regression",),
        build_regressor=build,
    ),
]
