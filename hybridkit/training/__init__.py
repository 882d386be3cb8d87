"""Trainers with the seed's explicit-data API.

* :class:`AbstractTrainer` — the shared ``train(data_source, num_epochs)`` loop
"""
from ._base import AbstractTrainer

__all__ = ["AbstractTrainer"]
