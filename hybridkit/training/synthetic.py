"""The original design note's import path ``src.training.synthetic``: ``from
hybridkit.training.synthetic import SyntheticTrainer`` works as the note writes it."""
from . import SyntheticConfig, SyntheticTrainer, TensorTrainer

__all__ = ["SyntheticTrainer", "SyntheticConfig", "TensorTrainer"]
