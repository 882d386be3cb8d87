"""Trainers with the original design note's explicit-data API: ``train(data_source, num_epochs)``.

The hierarchy (each class owns code):

* :class:`AbstractTrainer` — the ``train`` loop, the epoch counter, the :class:`History` of
  records, progress and callbacks; with :class:`AbstractCheckpointable`: ``state_dict()`` /
  ``load_state_dict()`` and ``save_checkpoint`` / ``load_checkpoint`` (one format,
  :class:`CheckpointError`)
* :class:`TensorTrainer` — a torch model with its optimizer (``_create_optimizer``), LR
  scheduler, device and random generator -> :class:`SyntheticTrainer` (the rollout loss;
  :class:`DivergenceError` / :class:`DivergenceWarning` for a non-finite loss, per ``on_nan``)
* :class:`FieldTrainer` — learnable coefficients of a PhiFlow model fitted with
  ``phi.math.minimize`` (:class:`FitResult` with standard errors; :class:`FitError` /
  :class:`FitWarning` when a fit fails or is not identifiable; :class:`InitialGuessWarning` when a
  start is moved inside the usable range) -> :class:`PhysicalTrainer` (the misfit of rollouts to
  observed data; optionally each window's initial state fitted too)
* :class:`HybridTrainer` — composes a synthetic and a physical trainer (HYCO)

Configs (typed dataclasses; a plain dict in the note's layout is converted once by
:func:`trainer_config`, one dict can serve both trainers): :class:`TensorConfig`,
:class:`SyntheticConfig`, :class:`FieldConfig`, :class:`PhysicalConfig`, :class:`HybridConfig`.
Records: :class:`EpochRecord`, :class:`FitResult`, :class:`CycleRecord`
(:class:`SyntheticUpdate`, :class:`PhysicalUpdate`).

Data-parallel training under ``torchrun``: :func:`init_distributed`, :func:`distributed_loader`,
:func:`is_rank_zero`, :func:`is_distributed`, :func:`barrier`, :class:`DistInfo`,
:func:`cleanup_distributed` (DDP; gloo / nccl).
"""
from ._base import AbstractCheckpointable, AbstractTrainer
from ._checkpoint import CheckpointError
from ._configs import FieldConfig, HybridConfig, PhysicalConfig, SyntheticConfig, TensorConfig, trainer_config
from ._distributed import (DistInfo, barrier, cleanup_distributed, distributed_loader, init_distributed, is_distributed,
                           is_rank_zero)
from ._field import FieldTrainer
from ._fit import FitError, FitResult, FitWarning
from ._transform import InitialGuessWarning
from ._hybrid import HybridTrainer
from ._physical import PhysicalTrainer
from ._records import CycleRecord, EpochRecord, History, PhysicalUpdate, SyntheticUpdate
from ._synthetic import DivergenceError, DivergenceWarning, SyntheticTrainer
from ._tensor import TensorTrainer

__all__ = ["AbstractTrainer", "AbstractCheckpointable", "TensorTrainer", "FieldTrainer", "SyntheticTrainer",
           "PhysicalTrainer", "HybridTrainer"]
__all__ += ["TensorConfig", "SyntheticConfig", "FieldConfig", "PhysicalConfig", "HybridConfig", "trainer_config"]
__all__ += ["History", "EpochRecord", "FitResult", "CycleRecord", "SyntheticUpdate", "PhysicalUpdate"]
__all__ += ["CheckpointError", "DivergenceError", "DivergenceWarning", "FitError", "FitWarning", "InitialGuessWarning"]
__all__ += ["init_distributed", "distributed_loader", "is_rank_zero", "is_distributed", "barrier", "DistInfo",
            "cleanup_distributed"]
