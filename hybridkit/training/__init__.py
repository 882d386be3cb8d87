"""Trainers with the seed's explicit-data API.

* :class:`AbstractTrainer` — the shared ``train(data_source, num_epochs)`` loop
* :class:`SyntheticTrainer`, :class:`SyntheticConfig` — a network trained by its rollout loss
  (:class:`DivergenceError` / :class:`DivergenceWarning` for a non-finite loss, per ``on_nan``;
  :class:`CheckpointError` for a checkpoint it refuses)
* :class:`PhysicalTrainer`, :class:`PhysicalConfig`, :class:`FitResult` — PDE coefficients fitted
  with ``phi.math.minimize`` (:class:`FitError` / :class:`FitWarning` when a fit fails)
* :class:`HybridTrainer`, :class:`HybridConfig` — both trained cooperatively (HYCO)
* :func:`init_distributed`, :func:`distributed_loader`, :func:`is_rank_zero`, :class:`DistInfo`,
  :func:`cleanup_distributed` — data-parallel training under ``torchrun`` (DDP; gloo / nccl)
"""
from ._base import AbstractTrainer
from ._distributed import DistInfo, cleanup_distributed, distributed_loader, init_distributed, is_rank_zero
from ._hybrid import HybridConfig, HybridTrainer
from ._physical import FitError, FitResult, FitWarning, PhysicalConfig, PhysicalTrainer
from ._synthetic import CheckpointError, DivergenceError, DivergenceWarning, SyntheticConfig, SyntheticTrainer

__all__ = ["AbstractTrainer", "SyntheticConfig", "SyntheticTrainer", "CheckpointError", "DivergenceError",
           "DivergenceWarning"]
__all__ += ["PhysicalTrainer", "PhysicalConfig", "FitResult", "FitError", "FitWarning"]
__all__ += ["HybridTrainer", "HybridConfig"]
__all__ += ["init_distributed", "distributed_loader", "is_rank_zero", "DistInfo", "cleanup_distributed"]
