"""ONNX export of a fitted model (torch.onnx for neural models, skl2onnx for classical ones, a
hand-built graph for the TF-IDF text models), verified against the original, and an ONNX Runtime
predictor that needs neither torch nor scikit-learn.

Neural graphs map model input (a dynamic batch axis, and a dynamic sequence axis for token
ids) to logits; classical graphs map float features to (labels, class probabilities), or to
the predictions (batch, 1) of a regressor.

Boosted trees: LightGBM and XGBoost convert with onnxmltools. scikit-learn's
HistGradientBoosting* and the `mean` baseline (DummyRegressor) are built here (skl2onnx 1.20's
converter for the former fails under protobuf 5+, see `_hist_gradient_boosting_graph`; it has
none for the latter).

TF-IDF text models (`tfidf_logreg`, `tfidf_svm`): skl2onnx cannot reproduce scikit-learn's
tokenizer or its `char_wb` n-grams, so the graph holds the rest of the pipeline in float64 (the
linear classifier over the TF-IDF vector, then the sigmoid, softmax or Platt-calibrated link) and
takes the vector as padded sparse rows; the vectorisation (n-grams, vocabulary, sublinear tf,
idf, l2 norm) is `tfidf_runtime`, in numpy, from the fitted state kept in the graph's metadata.
`OnnxPredictor` applies it to raw texts before running the graph.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.errors import ArtifactError, LadderError, first_line
from ladder.export.tfidf_runtime import (
    ANALYZERS,
    INPUTS,
    METADATA_KEY,
    TfidfPart,
    TfidfRuntime,
    padded_batches,
)
from ladder.models import tfidf
from ladder.models.tfidf import TYPES as TFIDF_TYPES

ONNX_MODEL = "model.onnx"
OPSET = 17
ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier/Regressor with float attributes
BOOSTING_OPSET = 15  # the highest opset onnxmltools 1.16's XGBoost converter targets
# Max abs difference, ONNX Runtime vs the original model: of probabilities, and of predictions
# relative to the largest original prediction (at least 1): a float32 graph carries about 7
# significant digits, so targets in the thousands cannot match to 1e-4 absolutely.
TOLERANCE = 1e-4
INPUT, OUTPUT = "input", "output"


class ExportError(LadderError):
    """A model that cannot be exported to ONNX (names the type or op, and what to do)."""


def export_neural(module: Any, sample: np.ndarray) -> bytes:
    """The ONNX bytes of a torch module (eval mode) traced on `sample` (batch, ...)."""
    import torch

    tokens = np.issubdtype(sample.dtype, np.integer)
    axes = {0: "batch", 1: "sequence"} if tokens else {0: "batch"}
    buffer = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), _quiet_c_stderr():
        # the TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; it still exports every ladder model exactly (checked by `verify`)
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                (torch.from_numpy(np.ascontiguousarray(sample)),),
                buffer,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: axes, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        except Exception as exc:  # the exporter raises many types for an unsupported op
            first = first_line(exc)
            raise ExportError(
                f"cannot export {type(module).__name__} to ONNX ({first}); the artifact still "
                "predicts with the torch backend"
            ) from exc
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
    """Discard what C++ code writes to stderr meanwhile (the exporter's shape-inference notes
    about packed sequences); Python exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def export_classical(
    estimator: Any, n_features: int, model_type: str, task: str = "classification"
) -> bytes:
    """The ONNX bytes of a fitted classical model over `n_features` float features: a
    classifier's (labels, probabilities), a regressor's predictions (batch, 1)."""
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    library = type(estimator).__module__.split(".")[0]
    if library in ("lightgbm", "xgboost"):
        return _export_boosting(estimator, n_features, model_type, library)
    if isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return _hist_gradient_boosting_graph(estimator, n_features, model_type, task)
    if type(estimator) is DummyRegressor:
        return _constant_graph(np.asarray(estimator.constant_, dtype=np.float32), n_features)
    return _export_sklearn(estimator, n_features, model_type, task)


def _export_sklearn(estimator: Any, n_features: int, model_type: str, task: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if task == "classification" else None
    try:
        graph = convert_sklearn(
            estimator,
            initial_types=[(INPUT, FloatTensorType([None, n_features]))],
            options=options,
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        first = first_line(exc)
        raise ExportError(
            f"{model_type}: skl2onnx cannot convert {type(estimator).__name__} ({first[:200]}); "
            "the artifact predicts with scikit-learn"
        ) from exc
    return _named(graph, estimator)


def _export_boosting(estimator: Any, n_features: int, model_type: str, library: str) -> bytes:
    """LightGBM and XGBoost models through onnxmltools (the `boost` extra)."""
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise ExportError(
            f"{model_type}: onnxmltools is not installed (pip install 'ladder-ml[boost]'); "
            f"the artifact predicts with {library}"
        ) from exc
    initial_types = [(INPUT, FloatTensorType([None, n_features]))]
    try:
        if library == "lightgbm":
            graph = onnxmltools.convert_lightgbm(
                estimator, initial_types=initial_types, target_opset=BOOSTING_OPSET, zipmap=False
            )
        else:
            graph = onnxmltools.convert_xgboost(
                estimator, initial_types=initial_types, target_opset=BOOSTING_OPSET
            )
    except Exception as exc:  # the converters raise many types for unsupported models
        first = first_line(exc)
        raise ExportError(
            f"{model_type}: onnxmltools cannot convert {type(estimator).__name__} "
            f"({first[:200]}); the artifact predicts with {library}"
        ) from exc
    for output in graph.graph.output:  # LightGBM's labels are declared (1,): any batch fits
        dims = output.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"
    return _named(graph, estimator)


def _named(graph: Any, estimator: Any) -> bytes:
    """The bytes of a converter's graph, named after the estimator instead of a random uuid
    (the same model then exports to the same bytes)."""
    graph.graph.name = f"ladder_{type(estimator).__name__}"
    return graph.SerializeToString()


# TreeEnsembleRegressor's attributes, one list entry per node or per leaf
_TREE_ATTRIBUTES = (
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_modes",
    "nodes_values",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "nodes_missing_value_tracks_true",
    "target_treeids",
    "target_nodeids",
    "target_ids",
    "target_weights",
)


def _hist_gradient_boosting_graph(
    estimator: Any, n_features: int, model_type: str, task: str
) -> bytes:
    """A fitted HistGradientBoosting{Classifier,Regressor} as one TreeEnsembleRegressor summing
    every tree's raw score per output, then the loss's link (sigmoid, softmax, exp or none).

    skl2onnx 1.20 has a converter for these models, but it gives each leaf's missing-value flag
    as a Python bool (and inner nodes' as numpy uint8); protobuf 5+ refuses a bool in the
    attribute's int list ("Expected an int, got a boolean"), whatever the options. Built here
    instead, with float32 thresholds rounded down, so that a float32 feature x goes left
    exactly when scikit-learn's float64 comparison x <= threshold does.
    """
    from onnx import TensorProto, helper

    if getattr(estimator, "_preprocessor", None) is not None:
        raise ExportError(f"{model_type}: categorical features are not exported")
    link = type(estimator._loss.link).__name__
    if link not in ("IdentityLink", "LogLink", "LogitLink", "MultinomialLogit"):
        raise ExportError(f"{model_type}: the {link} of its loss is not exported")
    n_outputs = estimator.n_trees_per_iteration_
    attrs: dict[str, list[Any]] = {key: [] for key in _TREE_ATTRIBUTES}
    trees = [(k, p) for iteration in estimator._predictors for k, p in enumerate(iteration)]
    for tree, (output, predictor) in enumerate(trees):
        _add_tree(attrs, predictor.nodes, tree, output, model_type)
    node = helper.make_node
    nodes = [
        node(
            "TreeEnsembleRegressor",
            [INPUT],
            ["raw"],  # (batch, n_outputs): the raw scores, before the link
            domain="ai.onnx.ml",
            n_targets=n_outputs,
            aggregate_function="SUM",
            base_values=np.ravel(estimator._baseline_prediction).astype(np.float32).tolist(),
            **attrs,
        )
    ]
    constants: dict[str, np.ndarray] = {}
    if task == "regression":
        nodes.append(node("Exp" if link == "LogLink" else "Identity", ["raw"], [OUTPUT]))
        outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1])]
    else:
        constants["one"] = np.array(1.0, dtype=np.float32)
        if n_outputs == 1:  # binary: the positive class's logit
            nodes += [node("Sigmoid", ["raw"], ["positive"]), *_binary_pair("positive")]
        else:
            nodes.append(node("Softmax", ["raw"], [OUTPUT], axis=1))
        classes = np.asarray(estimator.classes_)
        labels = classes if np.issubdtype(classes.dtype, np.integer) else np.arange(len(classes))
        constants["classes"] = labels.astype(np.int64)
        nodes += [
            node("ArgMax", [OUTPUT], ["index"], axis=1, keepdims=0),
            node("Gather", ["classes", "index"], ["label"]),
        ]
        outputs = [  # as skl2onnx's classifiers: (labels, probabilities)
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", len(classes)]),
        ]
    return _float_graph(nodes, constants, n_features, outputs, "ladder_hist_gradient_boosting")


def _add_tree(
    attrs: dict[str, list[Any]], nodes: np.ndarray, tree: int, output: int, model_type: str
) -> None:
    """Append one HistGradientBoosting TreePredictor's nodes (a structured array) to `attrs`."""
    leaf = nodes["is_leaf"].astype(bool)
    inner = ~leaf
    if np.any(nodes["is_categorical"][inner]):
        raise ExportError(f"{model_type}: categorical splits are not exported")

    def on_inner(values: np.ndarray) -> list[int]:
        return np.where(inner, values, 0).astype(np.int64).tolist()  # python ints for protobuf

    threshold = nodes["num_threshold"].astype(np.float64)
    rounded = threshold.astype(np.float32)
    too_high = rounded > threshold  # round down: x <= t32 exactly when x <= t, for float32 x
    rounded[too_high] = np.nextafter(rounded[too_high], np.float32(-np.inf))
    n = len(nodes)
    attrs["nodes_treeids"] += [tree] * n
    attrs["nodes_nodeids"] += list(range(n))
    attrs["nodes_featureids"] += on_inner(nodes["feature_idx"])
    attrs["nodes_modes"] += ["LEAF" if is_leaf else "BRANCH_LEQ" for is_leaf in leaf]
    attrs["nodes_values"] += np.where(inner, rounded, 0).astype(np.float32).tolist()
    attrs["nodes_truenodeids"] += on_inner(nodes["left"])
    attrs["nodes_falsenodeids"] += on_inner(nodes["right"])
    attrs["nodes_missing_value_tracks_true"] += on_inner(nodes["missing_go_to_left"])
    leaves = np.flatnonzero(leaf)
    attrs["target_treeids"] += [tree] * len(leaves)
    attrs["target_nodeids"] += leaves.tolist()
    attrs["target_ids"] += [output] * len(leaves)
    attrs["target_weights"] += nodes["value"][leaves].astype(np.float32).tolist()


def _constant_graph(constant: np.ndarray, n_features: int) -> bytes:
    """A graph predicting `constant` (1, n_outputs) for every row: the DummyRegressor."""
    from onnx import TensorProto, helper

    node = helper.make_node
    nodes = [  # the batch size from the input's shape, never its values (a NaN stays harmless)
        node("Shape", [INPUT], ["batch"], start=0, end=1),
        node("Concat", ["batch", "width"], ["shape"], axis=0),
        node("Expand", ["constant", "shape"], [OUTPUT]),
    ]
    constants = {
        "constant": constant.reshape(1, -1),
        "width": np.array([constant.size], dtype=np.int64),
    }
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", constant.size])]
    return _float_graph(nodes, constants, n_features, outputs, "ladder_constant")


def _float_graph(
    nodes: list[Any],
    constants: dict[str, np.ndarray],
    n_features: int,
    outputs: list[Any],
    name: str,
) -> bytes:
    """The checked ONNX bytes of a graph over the float INPUT (batch, n_features)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_features])],
        outputs,
        [numpy_helper.from_array(value, key) for key, value in constants.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="ladder",
        ir_version=8,  # opset 17's IR version: readable by older ONNX Runtimes too
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ----------------------------------------------------------------------------- TF-IDF text models


def export_tfidf(pipeline: Any, model_type: str) -> bytes:
    """The ONNX bytes of a fitted `tfidf_*` pipeline: its classifier over padded TF-IDF rows
    (inputs `ids`, `values`; output the probabilities), the vectorizers' fitted state in the
    metadata under `tfidf_runtime.METADATA_KEY`."""
    import onnx
    from onnx import helper

    if not tfidf.is_pipeline(pipeline, model_type):
        raise ExportError(f"{model_type}: not a pipeline built by ladder; it predicts with sklearn")
    runtime = TfidfRuntime([_tfidf_part(v, model_type) for v in tfidf.fitted_vectorizers(pipeline)])
    head = _linear_head(pipeline.steps[1][1], model_type)
    if head.weights.shape[0] != runtime.pad_id:
        raise ExportError(f"{model_type}: the classifier and the TF-IDF features differ in width")
    model = helper.make_model(
        _tfidf_graph(head),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ladder",
        ir_version=8,  # opset 17's IR version: readable by older ONNX Runtimes too
    )
    helper.set_model_props(model, {METADATA_KEY: runtime.to_metadata()})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _tfidf_part(vectorizer: Any, model_type: str) -> TfidfPart:
    """The runtime's copy of a fitted TfidfVectorizer; ExportError for settings it lacks."""
    unsupported = {
        "analyzer": vectorizer.analyzer not in ANALYZERS,
        "strip_accents": vectorizer.strip_accents is not None,
        "binary": bool(vectorizer.binary),
        "norm": vectorizer.norm != "l2",
        "use_idf": not vectorizer.use_idf,
    }
    if any(unsupported.values()):
        names = ", ".join(k for k, bad in unsupported.items() if bad)
        raise ExportError(
            f"{model_type}: the numpy TF-IDF runtime does not support this vectorizer's {names}; "
            "the artifact predicts with scikit-learn"
        )
    vocabulary = vectorizer.vocabulary_
    low, high = vectorizer.ngram_range
    return TfidfPart(
        analyzer=vectorizer.analyzer,
        ngram_range=(int(low), int(high)),
        lowercase=bool(vectorizer.lowercase),
        sublinear_tf=bool(vectorizer.sublinear_tf),
        terms=sorted(vocabulary, key=vocabulary.__getitem__),  # column order
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
    )


@dataclass
class _LinearHead:
    """Scores = x @ weights + bias over k models side by side, then a link to probabilities.

    link: "identity" (regression: the one score), "logistic" (binary logistic regression: one
    score), "softmax" (multinomial), or
    "platt" (k calibrated LinearSVCs: per score sigmoid(-(a * score + b)), normalised per
    model, averaged over models).
    """

    weights: np.ndarray  # (n_features, k * n_scores)
    bias: np.ndarray  # (k * n_scores,)
    link: str
    n_classes: int
    platt: tuple[np.ndarray, np.ndarray] | None = None  # (a, b), each (k * n_scores,)
    n_models: int = 1


def _linear_head(clf: Any, model_type: str) -> _LinearHead:
    """The classifier (or regressor) of a `tfidf_*` pipeline as a `_LinearHead`."""
    if model_type == "tfidf_ridge":  # one score, no link
        weights = np.asarray(clf.coef_, dtype=np.float64).reshape(-1, 1)
        bias = np.atleast_1d(np.asarray(clf.intercept_, dtype=np.float64))
        return _LinearHead(weights, bias, "identity", 1)
    n_classes = len(clf.classes_)
    if model_type == "tfidf_logreg":
        link = "logistic" if n_classes == 2 else "softmax"
        return _LinearHead(clf.coef_.T, clf.intercept_, link, n_classes)
    calibrated = clf.calibrated_classifiers_
    for part in calibrated:
        if part.method != "sigmoid" or not np.array_equal(part.estimator.classes_, clf.classes_):
            raise ExportError(
                f"{model_type}: only sigmoid calibration over every class is exported; "
                "the artifact predicts with scikit-learn"
            )
    return _LinearHead(
        weights=np.hstack([part.estimator.coef_.T for part in calibrated]),
        bias=np.concatenate([part.estimator.intercept_ for part in calibrated]),
        link="platt",
        n_classes=n_classes,
        platt=(
            np.array([c.a_ for part in calibrated for c in part.calibrators], dtype=np.float64),
            np.array([c.b_ for part in calibrated for c in part.calibrators], dtype=np.float64),
        ),
        n_models=len(calibrated),
    )


def _tfidf_graph(head: _LinearHead) -> Any:
    """The float64 graph (ids, values) -> probabilities of a linear head."""
    from onnx import TensorProto, helper, numpy_helper

    n_scores = head.weights.shape[1]
    pad_row = np.zeros((1, n_scores))  # the padding column weighs nothing
    constants = {
        "weights": np.vstack([head.weights, pad_row]),
        "bias": head.bias,
        "axis_1": np.array([1], dtype=np.int64),
        "axis_2": np.array([2], dtype=np.int64),
        "one": np.array(1.0),
    }
    node = helper.make_node
    nodes = [
        node("Gather", ["weights", INPUTS[0]], ["gathered"], axis=0),  # (batch, width, scores)
        node("Unsqueeze", [INPUTS[1], "axis_2"], ["values_3d"]),  # (batch, width, 1)
        node("Mul", ["gathered", "values_3d"], ["weighted"]),
        node("ReduceSum", ["weighted", "axis_1"], ["summed"], keepdims=0),  # (batch, scores)
        node("Add", ["summed", "bias"], ["scores"]),
    ]
    link_nodes, link_constants = _link(head)
    constants.update(link_constants)
    batch = ["batch", "width"]
    return helper.make_graph(
        nodes + link_nodes,
        "ladder_tfidf",
        [
            helper.make_tensor_value_info(INPUTS[0], TensorProto.INT64, batch),
            helper.make_tensor_value_info(INPUTS[1], TensorProto.DOUBLE, batch),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, ["batch", head.n_classes])],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in constants.items()],
    )


def _link(head: _LinearHead) -> tuple[list[Any], dict[str, np.ndarray]]:
    """The nodes from "scores" to the OUTPUT probabilities, and the constants they use."""
    from onnx import helper

    node = helper.make_node
    if head.link == "identity":  # regression: the score is the prediction
        return [node("Identity", ["scores"], [OUTPUT])], {}
    if head.link == "softmax":
        return [node("Softmax", ["scores"], [OUTPUT], axis=1)], {}
    if head.link == "logistic":
        return [node("Sigmoid", ["scores"], ["positive"]), *_binary_pair("positive")], {}
    assert head.platt is not None
    n_scores = head.weights.shape[1] // head.n_models
    constants = {
        "platt_a": head.platt[0],
        "platt_b": head.platt[1],
        "per_model": np.array([0, head.n_models, n_scores], dtype=np.int64),  # 0: keep batch
        "uniform": np.array(1.0 / head.n_classes),
        "zero": np.array(0.0),
    }
    nodes = [  # sigmoid(-(a * score + b)), per model: (batch, models, scores)
        node("Mul", ["scores", "platt_a"], ["scaled"]),
        node("Add", ["scaled", "platt_b"], ["shifted"]),
        node("Neg", ["shifted"], ["negated"]),
        node("Sigmoid", ["negated"], ["calibrated"]),
        node("Reshape", ["calibrated", "per_model"], ["per_model_probs"]),
    ]
    if n_scores == 1:  # binary: the positive class's probability, averaged over the models
        nodes.append(node("ReduceMean", ["per_model_probs"], ["positive"], axes=[1], keepdims=0))
        return nodes + _binary_pair("positive"), constants
    nodes += [  # normalise each model's scores to sum to 1 (uniform where all are 0), average
        node("ReduceSum", ["per_model_probs", "axis_2"], ["total"], keepdims=1),
        node("Equal", ["total", "zero"], ["all_zero"]),
        node("Where", ["all_zero", "one", "total"], ["divisor"]),
        node("Div", ["per_model_probs", "divisor"], ["normalised"]),
        node("Where", ["all_zero", "uniform", "normalised"], ["model_probs"]),
        node("ReduceMean", ["model_probs"], [OUTPUT], axes=[1], keepdims=0),
    ]
    return nodes, constants


def _binary_pair(positive: str) -> list[Any]:
    """Nodes turning the (batch, 1) probability `positive` into OUTPUT (batch, 2)."""
    from onnx import helper

    return [
        helper.make_node("Sub", ["one", positive], ["negative"]),
        helper.make_node("Concat", ["negative", positive], [OUTPUT], axis=1),
    ]


def cpu_session(model: bytes | str | Path, threads: int | None = None, arena: bool = True) -> Any:
    """An ONNX Runtime CPU session of a graph (its bytes or a path), logging errors only.

    `threads`: intra-op threads, not spinning while idle; None: ONNX Runtime's defaults.
    `arena`: ONNX Runtime's CPU memory arena (see `OnnxPredictor`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.enable_cpu_mem_arena = arena
    if threads is not None:  # a fixed pool whose idle threads sleep instead of spinning
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxPredictor:
    """Class probabilities from a model.onnx with ONNX Runtime (no torch, no scikit-learn), or
    for `task="regression"` the predictions, a 1-D float64 array (the graph's (batch, 1) or
    (batch,) output).

    `threads`: ONNX Runtime's intra-op threads, not spinning while idle (a server sets it, so
    that idle workers do not burn the cores its HTTP handling needs); None: its defaults.
    `arena`: ONNX Runtime's CPU memory arena, which keeps the peak of the biggest batch ever
    run; a server turns it off so that memory goes back after a spike.

    A TF-IDF graph (one with `tfidf_runtime` metadata) takes raw texts: the predictor
    vectorises them with the numpy runtime first.
    """

    def __init__(
        self,
        model: bytes | str | Path,
        family: str,
        pad_id: int | None = None,
        threads: int | None = None,
        arena: bool = True,
        task: str = "classification",
    ) -> None:
        self.session = cpu_session(model, threads, arena)
        self.family, self.pad_id, self.task = family, pad_id, task
        self.tfidf = _tfidf_runtime(self.session)
        # classical classifiers output (labels, probabilities); the others probabilities,
        # logits or predictions
        classifier = family == "classical" and self.tfidf is None and task == "classification"
        self.output = 1 if classifier else 0

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_classes) of preprocessed features (raw texts for TF-IDF), or
        the predictions (N,) of a regression model."""
        if self.tfidf is not None:
            out = self._tfidf_probabilities(self.tfidf, features)
            return out[:, 0] if self.task == "regression" else out
        link = _predictions if self.task == "regression" else _softmax
        if self.family == "classical":
            x = np.ascontiguousarray(features.reshape(len(features), -1), dtype=np.float32)
            out = self._run(x)
            return _predictions(out) if self.task == "regression" else out.astype(np.float64)
        if self.pad_id is None:
            return link(self._run(np.ascontiguousarray(features, dtype=np.float32)))
        ids = np.asarray(features, dtype=np.int64)
        order = np.argsort((ids != self.pad_id).sum(axis=1), kind="stable")
        prob = None
        for start in range(0, len(ids), 256):  # shortest first, each chunk trimmed
            rows = order[start : start + 256]
            chunk = ids[rows]
            longest = int((chunk != self.pad_id).sum(axis=1).max(initial=1))
            part = link(self._run(np.ascontiguousarray(chunk[:, :longest])))
            if prob is None:
                prob = np.empty((len(ids), *part.shape[1:]))
            prob[rows] = part
        return prob if prob is not None else np.empty((0,) if link is _predictions else (0, 0))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {INPUT: x})[self.output]

    def _tfidf_probabilities(self, runtime: TfidfRuntime, texts: np.ndarray) -> np.ndarray:
        n_classes = self.session.get_outputs()[0].shape[1]
        prob = np.empty((len(texts), n_classes))
        for begin in range(0, len(texts), _TFIDF_TEXTS):
            rows = runtime.transform(texts[begin : begin + _TFIDF_TEXTS])
            for chosen, ids, values in padded_batches(rows, runtime.pad_id, _TFIDF_CELLS):
                inputs = dict(zip(INPUTS, (ids, values), strict=True))
                prob[begin + chosen] = self.session.run(None, inputs)[0]
        return prob


# bounded memory however many texts come: texts vectorised at a time, and padded
# (row, entry) cells per ONNX Runtime call
_TFIDF_TEXTS = 2048
_TFIDF_CELLS = 1 << 18


def _tfidf_runtime(session: Any) -> TfidfRuntime | None:
    """The TF-IDF vectoriser stored in a session's model, None for other models; ArtifactError
    when its metadata or graph do not fit together."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException

    metadata = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if metadata is None:
        return None
    runtime = TfidfRuntime.from_metadata(metadata)
    outputs = session.get_outputs()
    shape = outputs[0].shape if len(outputs) == 1 else []
    if [i.name for i in session.get_inputs()] != list(INPUTS) or not (
        len(shape) == 2 and isinstance(shape[1], int)
    ):
        raise ArtifactError("model.onnx: a TF-IDF graph takes ids and values to probabilities")
    probe = {INPUTS[0]: np.array([[runtime.pad_id]]), INPUTS[1]: np.zeros((1, 1))}
    try:  # the padding column is the last row of the weights: every feature id is in range
        session.run(None, probe)
    except (Fail, InvalidArgument, RuntimeException) as exc:
        raise ArtifactError(
            f"model.onnx: the TF-IDF vocabulary does not fit the graph ({first_line(exc)[:200]})"
        ) from exc
    return runtime


def verify(
    graph: bytes,
    family: str,
    pad_id: int | None,
    features: np.ndarray,
    expected: np.ndarray,
    task: str = "classification",
) -> float:
    """Check the graph (onnx.checker) and its output on `features` against `expected` (the
    original model's probabilities, or for regression its predictions); returns the max abs
    difference. ExportError above TOLERANCE, for regression above TOLERANCE * max(1, max
    |expected|): float32 graphs keep about 7 significant digits, not 4 decimals of a large
    target."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(graph))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX graph is invalid ({exc})") from exc
    got = OnnxPredictor(graph, family, pad_id, task=task)(features)
    expected = np.asarray(expected, dtype=np.float64)
    if task == "regression":
        expected = expected.reshape(len(expected))
    diff = float(np.abs(got - expected).max()) if len(expected) else 0.0
    tolerance = TOLERANCE
    if task == "regression" and len(expected):
        tolerance *= max(1.0, float(np.abs(expected).max()))
    if not diff <= tolerance:  # NaN fails too
        what = "predictions" if task == "regression" else "probabilities"
        raise ExportError(
            f"ONNX Runtime's {what} differ from the original model's by {diff:.2e} "
            f"(tolerance {tolerance:.2g}); the artifact keeps predicting with the original"
        )
    return diff


def _predictions(output: np.ndarray) -> np.ndarray:
    """A regression graph's (batch, 1) or (batch,) output as float64 (batch,)."""
    return np.asarray(output, dtype=np.float64).reshape(len(output))


def _target_opset(model: Any) -> int:
    """The opset a model's graph was exported for (converters may import lower ones)."""
    library = type(model).__module__.split(".")[0]
    return BOOSTING_OPSET if library in ("lightgbm", "xgboost") else OPSET


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def export_model(
    model: Any,
    family: str,
    model_type: str,
    features: np.ndarray,
    expected: np.ndarray,
    pad_id: int | None,
    task: str = "classification",
) -> tuple[bytes | None, dict[str, Any]]:
    """Export a fitted model (a scikit-learn-API estimator or a torch module) and verify it on
    up to 256 rows of preprocessed `features` (raw texts for TF-IDF models) whose original
    probabilities are `expected` (for `task="regression"`: its `predict` output, checked to
    TOLERANCE relative to the largest |prediction| when above 1, as float32 graphs allow).

    Returns (the graph, or None when the model cannot be exported; the manifest's "onnx"
    entry: opset, max_abs_diff and rows checked, or the reason it was not exported).
    """
    rows, want = features[:256], expected[:256]
    try:
        if model_type in TFIDF_TYPES:
            graph = export_tfidf(model, model_type)
        elif family == "classical":
            n_features = int(np.prod(features.shape[1:]))
            graph = export_classical(model, n_features, model_type, task)
        else:
            sample = rows[:2]
            if pad_id is not None:  # two real rows, trimmed like a batch
                longest = int((sample != pad_id).sum(axis=1).max(initial=1))
                sample = sample[:, :longest]
            graph = export_neural(model.to("cpu"), sample)
        diff = verify(graph, family, pad_id, rows, want, task)
    except ExportError as exc:
        return None, {"exported": False, "reason": str(exc)}
    return graph, {
        "exported": True,
        "opset": _target_opset(model),
        "max_abs_diff": diff,
        "rows_checked": len(rows),
    }
