"""The parts of :class:`~hybridkit.training.HybridTrainer` that are not a cycle's logic: the views
of the observed data each side trains on and is judged on, the data-only fit's guard
(:func:`_shifted`), per-cycle seeds and small conversions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from phiml import math

from ..data import AugmentedDataset, HybridDataset

def _seed(seed: int, cycle: int) -> int:
    """A per-cycle seed: cycles draw different data, reruns and resumes the same."""
    return int(np.random.SeedSequence([int(seed), int(cycle) + 1]).generate_state(1)[0])


def _batch(values: dict) -> int:
    return next(iter(values.values())).shape.get_size("batch")


def _data_key(ds: HybridDataset) -> list:
    """What identifies the physical model's training windows (file, simulations, window count)."""
    return [str(ds.data_manager.path), [int(i) for i in ds.sim_indices], len(ds), int(ds.num_predict_steps)]


def _holdout(ds: HybridDataset, every: int):
    """``ds.holdout(every)``, or ``(ds, None)`` when its windows have fewer than ``every`` start
    frames per simulation (e.g. one 20-step window in 21 frames): then that side is judged on the
    windows it trains on."""
    starts = len(ds) // len(ds.sim_indices)
    return ds.holdout(every) if every and starts >= every else (ds, None)


def _sum(w: math.Tensor) -> float:
    return float(math.sum(w, w.shape))


def _max(w) -> float:
    return float(math.max(w, w.shape)) if isinstance(w, math.Tensor) else float(w)


@dataclass(frozen=True)
class _Views:
    """The observed windows as the two models see them: the network's windows (with their
    observation weights) and the physical model's, each split into training and held-out ones."""

    real: HybridDataset
    train_s: AugmentedDataset
    held_s: AugmentedDataset
    train_p: HybridDataset
    held_p: HybridDataset
    held_out_p: bool  # False: too few window starts to hold any out (held_p is then train_p)


def _expand(w: math.Tensor, init: dict, tgt: dict) -> math.Tensor:
    """Weights with explicit ``batch`` and ``time`` dims (so they can be concatenated)."""
    w = math.expand(w, math.batch(batch=_batch(init)))
    return math.expand(w, math.batch(time=next(iter(tgt.values())).shape.get_size("time")))


def _shifted(fitted: Mapping, now: Mapping, std: Mapping, limit: float) -> bool:
    """Whether some number of ``now`` lies more than ``limit`` standard errors ``std`` from
    ``fitted``; a number without a finite error (not constrained by the data) never counts."""
    for name, value in fitted.items():
        if name not in std:
            continue
        s = np.asarray(std[name], dtype=np.float64)
        shift = np.abs(np.asarray(now[name], dtype=np.float64) - np.asarray(value, dtype=np.float64))
        if s.shape != shift.shape:
            continue
        known = np.isfinite(s)
        if np.any(shift[known] > limit * s[known]):
            return True
    return False


def _plain(params: dict) -> dict:
    """Parameters as plain data (floats and nested lists) for records and JSON."""
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in params.items()}
