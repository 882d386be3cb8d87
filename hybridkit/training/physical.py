"""The seed's import path ``src.training.physical``: ``from hybridkit.training.physical import
PhysicalTrainer`` works as the seed writes it. The code lives in :mod:`hybridkit.training._physical`.
"""
from ._physical import FitError, FitResult, FitWarning, PhysicalConfig, PhysicalTrainer

__all__ = ["PhysicalTrainer", "PhysicalConfig", "FitResult", "FitError", "FitWarning"]
