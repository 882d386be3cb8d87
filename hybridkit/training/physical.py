"""The original design note's import path ``src.training.physical``: ``from
hybridkit.training.physical import PhysicalTrainer`` works as the note writes it."""
from . import FieldTrainer, FitError, FitResult, FitWarning, PhysicalConfig, PhysicalTrainer

__all__ = ["PhysicalTrainer", "PhysicalConfig", "FieldTrainer", "FitResult", "FitError", "FitWarning"]
