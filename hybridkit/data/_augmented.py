"""AugmentedDataset: real windows plus windows cut from generated trajectories, with weights."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_count, check_real
from ._dataset import HybridDataset


class AugmentedDataset(Dataset):
    """Real samples and generated samples in one dataset; every item carries its loss weight.

    Items are those of the parts with the weight appended: ``(initial, targets, weight)`` in
    tensor mode, ``(initial_fields, target_fields, weight)`` in field mode. Real items come
    first (indices ``0 .. n_real - 1``), then the generated ones.

    **Counts** (the original design note's count-based augmentation): with ``generated_per_real=r``, the dataset
    holds ``round(r * n_real)`` generated windows, drawn without replacement (seeded) from all
    windows of the generated parts; None uses every generated window.

    Args:
        real: windows of the observed data (may be None: generated only).
        generated: one or several :class:`HybridDataset` over generated trajectories (e.g. the
            files a :class:`CacheManager` holds), with the same layout as ``real``.
        generated_per_real: generated windows per real window, or None for all.
        weight_real, weight_generated: loss weight of each real / generated item: a float, or
            per-point weights ``(num_predict_steps, 1, *space)`` (e.g.
            :meth:`ObservationMask.point_weights`: real data observed only in part).
        seed: seed of the draw of generated windows.

    Raises:
        ValueError: parts with different layouts or modes, a generated part with no window (a
            trajectory shorter than ``num_predict_steps + 1`` frames), more generated windows
            asked for than exist, or a number that is not one (``generated_per_real`` NaN / inf /
            a bool, a negative or non-finite weight, a seed that is not an integer >= 0).
    """

    def __init__(self, real: HybridDataset | None, generated: HybridDataset | Sequence[HybridDataset] = (),
                 *, generated_per_real: float | None = None, weight_real: float = 1.0,
                 weight_generated: float = 1.0, seed: int = 0):
        seed = check_count(seed, "seed", minimum=0, fix="pass a non-negative integer, e.g. seed=0.")
        parts = [generated] if isinstance(generated, HybridDataset) else list(generated)
        if real is None and not parts:
            raise ValueError("Expected real or generated data, got neither.")
        self.real = real
        self.generated = parts
        ref = real if real is not None else parts[0]
        for i, part in enumerate(parts):
            _check_compatible(ref, part, f"generated[{i}]")
        self.weight_real = _check_weight(weight_real, "weight_real", ref)
        self.weight_generated = _check_weight(weight_generated, "weight_generated", ref)
        self.return_fields = ref.return_fields  # lets make_loader pick the field collate
        self.num_predict_steps = ref.num_predict_steps
        self.grid = ref.grid
        self.in_channels, self.out_channels = ref.in_channels, ref.out_channels

        offsets = np.cumsum([0] + [len(p) for p in parts])
        available = int(offsets[-1])
        n_real = len(real) if real is not None else 0
        if generated_per_real is None:
            chosen = np.arange(available)
        else:
            generated_per_real = check_real(generated_per_real, "generated_per_real", minimum=0.0,
                                            fix="a finite number of generated windows per real one, e.g. 1.0; "
                                                "None uses every generated window.")
            if real is None:
                raise ValueError("generated_per_real needs real data to count against; pass None.")
            want = int(round(generated_per_real * n_real))
            if want > available:
                raise ValueError(
                    f"Expected at most {available} generated windows (what the generated "
                    f"trajectories hold), got a request for {want} ({generated_per_real} per real "
                    f"window x {n_real}). Fix: generate more or longer trajectories, or lower "
                    "generated_per_real."
                )
            chosen = np.sort(np.random.default_rng(seed).choice(available, size=want, replace=False))
        self._offsets = offsets
        self._chosen = chosen
        self._n_real = n_real

    @classmethod
    def observed(cls, real: HybridDataset, observation=None) -> "AugmentedDataset":
        """The real windows alone, each point weighted 1 where ``observation`` (an
        :class:`~hybridkit.data.ObservationMask`) says data exist and 0 elsewhere (None: all)."""
        if observation is None:
            return cls(real, [])
        return cls(real, [], weight_real=observation.point_weights(real.grid, real.num_predict_steps))

    @property
    def layout(self) -> HybridDataset:
        """The dataset that defines the items' layout (fields, channels, grid)."""
        return self.real if self.real is not None else self.generated[0]

    @property
    def counts(self) -> dict[str, int]:
        """Number of real and generated items."""
        return {"real": self._n_real, "generated": len(self._chosen)}

    def __len__(self) -> int:
        return self._n_real + len(self._chosen)

    def __getitem__(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"Expected an index in 0..{n - 1}, got {i}.")
        i %= n
        if i < self._n_real:
            return (*self.real[i], self._weight(self.weight_real))
        j = int(self._chosen[i - self._n_real])
        part = int(np.searchsorted(self._offsets, j, side="right") - 1)
        return (*self.generated[part][j - int(self._offsets[part])], self._weight(self.weight_generated))

    def _weight(self, w) -> torch.Tensor:
        """The item's weight as a tensor: a scalar, or per point when either part has per-point
        weights (so that the items of one batch stack)."""
        per_point = [x for x in (self.weight_real, self.weight_generated) if np.ndim(x)]
        if not per_point:
            return torch.tensor(float(w), dtype=torch.float32)
        return torch.as_tensor(np.broadcast_to(np.asarray(w, dtype=np.float32), per_point[0].shape).copy())

    def __repr__(self) -> str:
        c = self.counts
        wr = "per-point" if np.ndim(self.weight_real) else f"{self.weight_real:g}"
        wg = "per-point" if np.ndim(self.weight_generated) else f"{self.weight_generated:g}"
        return (f"AugmentedDataset({c['real']} real x {wr} + {c['generated']} generated x {wg}, "
                f"{'fields' if self.return_fields else 'tensors'})")


def _check_weight(w, label: str, ref: HybridDataset):
    if np.ndim(w) == 0:
        w = w.item() if hasattr(w, "item") else w  # a 0-d array / tensor as a Python number (or bool)
        return check_real(w, label, minimum=0.0, fix=f"e.g. {label}=1.0, or per-point weights from "
                                                    "ObservationMask.point_weights(grid, num_predict_steps).")
    arr = np.asarray(w)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"Expected per-point {label} as numbers, got dtype {arr.dtype}. Fix: "
                         f"ObservationMask.point_weights(grid, {ref.num_predict_steps}).")
    arr = arr.astype(np.float32)
    shape = (ref.num_predict_steps, 1) + tuple(ref.grid.resolution)
    if arr.shape != shape or not np.isfinite(arr).all() or (arr < 0).any() or not arr.any():
        raise ValueError(
            f"Expected per-point {label} of shape {shape} (num_predict_steps, 1, *space), finite, "
            f">= 0 and not all zero, got shape {arr.shape}. Fix: ObservationMask.point_weights(grid, "
            f"{ref.num_predict_steps})."
        )
    return arr


def _check_compatible(ref: HybridDataset, part, label: str) -> None:
    if not isinstance(part, HybridDataset):
        raise TypeError(f"Expected {label} to be a HybridDataset, got {type(part).__name__}.")
    if len(part) == 0:
        raise ValueError(
            f"{label} has no window: its trajectories are shorter than num_predict_steps + 1 = "
            f"{part.num_predict_steps + 1} frames. Fix: generate longer trajectories."
        )
    for attr in ("return_fields", "num_predict_steps", "dynamic_fields", "static_fields", "grid"):
        a, b = getattr(ref, attr), getattr(part, attr)
        if a != b:
            raise ValueError(
                f"Expected {label} to match the real data's {attr}={a!r}, got {b!r}. Fix: build "
                "both HybridDatasets with the same field names, num_predict_steps and mode."
            )
