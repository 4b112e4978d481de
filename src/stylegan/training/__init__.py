"""Training: the StyleGAN2 loss, G_ema, the loop (snapshots, exact resume), multi-process launch."""

from stylegan.training.ema import ema_beta, update_ema
from stylegan.training.launch import prepare
from stylegan.training.launch import train as train_run
from stylegan.training.loop import TrainingDiverged, TrainingInterrupted, training_loop
from stylegan.training.loss import LossConfig, StyleGAN2Loss
from stylegan.training.options import OptionsError, TrainingOptions
from stylegan.training.state import InfiniteSampler, ResumeError, find_resume_state, load_training_state

__all__ = [
    "InfiniteSampler",
    "LossConfig",
    "OptionsError",
    "ResumeError",
    "StyleGAN2Loss",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingOptions",
    "ema_beta",
    "find_resume_state",
    "load_training_state",
    "prepare",
    "train_run",
    "training_loop",
    "update_ema",
]
