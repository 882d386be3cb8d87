"""The seed's import path ``src.training.synthetic``: ``from hybridkit.training.synthetic import
SyntheticTrainer`` works as the seed writes it. The code lives in :mod:`hybridkit.training._synthetic`.
"""
from ._synthetic import SyntheticConfig, SyntheticTrainer

__all__ = ["SyntheticConfig", "SyntheticTrainer"]
