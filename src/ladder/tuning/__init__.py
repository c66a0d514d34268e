"""Hyperparameter search: search spaces, Optuna studies and their outputs (`ladder tune`)."""

TUNED_SUFFIX = " (tuned)"


def tuned_name(model: str) -> str:
    """The name of the tested best configuration of `model` (`mlp` -> `mlp (tuned)`)."""
    return model + TUNED_SUFFIX
