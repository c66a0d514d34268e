"""Training of neural models: the Trainer loop, its callbacks, optimizers and checkpoints."""

from ladder.train import distributed
from ladder.train.callbacks import Callback, Checkpoint, EarlyStopping, History, ProgressBar
from ladder.train.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from ladder.train.optim import build_optimizer, build_scheduler, init_weights, l1_penalty
from ladder.train.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "ProgressBar",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "distributed",
    "init_weights",
    "l1_penalty",
    "load_checkpoint",
    "restore_checkpoint",
    "save_checkpoint",
]
