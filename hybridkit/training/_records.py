"""History as records: one small dataclass per epoch, fit or cycle, read with attributes.

A trainer's ``history`` is a :class:`History`, a list of records in training order. Besides the
records themselves (``history[-1].loss``) it gives a column as a list (``history["loss"]`` is
``[r.loss for r in history]``), which is what a loss plot wants.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["History", "EpochRecord", "SyntheticUpdate", "PhysicalUpdate", "CycleRecord"]


class History(list):
    """Records in training order; ``history["name"]`` is the column ``[r.name for r in history]``."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.column(key)
        item = super().__getitem__(key)
        return History(item) if isinstance(key, slice) else item

    def column(self, name: str) -> list:
        """``[getattr(record, name) for record in self]``.

        Raises:
            KeyError: the records have no such field (the message lists theirs).
        """
        if self and not hasattr(self[0], name):
            fields = [f.name for f in dataclasses.fields(self[0])]
            raise KeyError(f"Expected a field of {type(self[0]).__name__} {fields}, got {name!r}.")
        return [getattr(r, name) for r in self]

    def to_list(self) -> list[dict]:
        """The records as plain dicts (JSON, checkpoints)."""
        return [r.to_dict() if hasattr(r, "to_dict") else dataclasses.asdict(r) for r in self]

    @classmethod
    def from_list(cls, items: Iterable[dict], record_type: type) -> "History":
        """The inverse of :meth:`to_list` for records of ``record_type``."""
        build = getattr(record_type, "from_dict", None) or (lambda d: record_type(**d))
        return cls(build(dict(d)) for d in items)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of :class:`~hybridkit.training.SyntheticTrainer`.

    Attributes:
        epoch: the global epoch number (1 for the first epoch ever trained).
        loss: mean training loss over the epoch's samples (weighted like the loss).
        lr: learning rate the epoch ran with.
        rollout_steps: rollout length of the loss in this epoch.
    """

    epoch: int
    loss: float
    lr: float
    rollout_steps: int


@dataclass(frozen=True)
class _Update:
    """What one model's update in a HYCO cycle did to its loss on the observed data."""

    real_loss_before: float  # loss on the observed data before the update
    real_loss_after: float  # ... after it (before a possible reversion)
    reverted: bool  # whether the update was undone because it made that loss worse

    @property
    def real_loss(self) -> float:
        """The loss on the observed data the model ends the cycle with."""
        return self.real_loss_before if self.reverted else self.real_loss_after


@dataclass(frozen=True)
class SyntheticUpdate(_Update):
    """The network's update in a cycle: trained on real + physically generated windows."""

    real_windows: int = 0  # real windows in the augmented dataset
    generated_windows: int = 0  # windows cut from the physical model's trajectories
    generated_weight: float = 0.0  # loss weight of each generated window


@dataclass(frozen=True)
class PhysicalUpdate(_Update):
    """The physical model's update in a cycle: fitted to real + network-generated targets."""

    fit_status: tuple = ()  # status of each fit ("converged", "not_converged", "diverged")
    real_samples: int = 0  # real windows in the fit
    generated_samples: int = 0  # network rollouts in the fit
    target_weight: float = 0.0  # how much one of the network's targets counted relative to a datum
    # the network's targets moved a number further than HybridConfig.max_shift_std standard errors
    # of the data-only fit (what the data pin down): that estimate was kept
    pull_rejected: bool = False


@dataclass(frozen=True)
class CycleRecord:
    """One HYCO cycle of :class:`~hybridkit.training.HybridTrainer`.

    Attributes:
        cycle: the cycle number (1 for the first).
        synthetic, physical: what each model's update did (:class:`SyntheticUpdate`,
            :class:`PhysicalUpdate`), e.g. ``record.physical.reverted``.
        params: the physical estimate after the cycle, ``name -> float / list``.
    """

    cycle: int
    synthetic: SyntheticUpdate
    physical: PhysicalUpdate
    params: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CycleRecord":
        physical = dict(d["physical"])
        physical["fit_status"] = tuple(physical.get("fit_status", ()))
        return cls(int(d["cycle"]), SyntheticUpdate(**d["synthetic"]), PhysicalUpdate(**physical), dict(d["params"]))
