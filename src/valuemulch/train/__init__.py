"""Training, one config and one trainer per method (as TRL pairs them): encoder, lm, baselines, and
the tier-1 detector. ``valuemulch.train.pipeline`` (train -> certify -> register) sits above certify
and the registry, so this ``__init__`` does not import it."""

from valuemulch.train._adapt import adapt
from valuemulch.train._base import Trained, TrainingRun
from valuemulch.train._methods import TrainConfig, config_class, make_config, train
from valuemulch.train.baseline import train_baseline
from valuemulch.train.baseline_config import BaselineConfig
from valuemulch.train.detector import DetectorModel, TrainedDetector, export_detector, train_detector
from valuemulch.train.detector_config import DetectorConfig
from valuemulch.train.encoder import train_encoder
from valuemulch.train.encoder_config import EncoderConfig
from valuemulch.train.lm import train_lm
from valuemulch.train.lm_config import LMConfig

__all__ = [
    "BaselineConfig",
    "DetectorConfig",
    "DetectorModel",
    "EncoderConfig",
    "LMConfig",
    "TrainConfig",
    "Trained",
    "TrainedDetector",
    "TrainingRun",
    "adapt",
    "config_class",
    "export_detector",
    "make_config",
    "train",
    "train_baseline",
    "train_detector",
    "train_encoder",
    "train_lm",
]
