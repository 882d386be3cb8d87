"""Partial observations: where (spatial mask) and when (temporal mask) data exist, and noise.

A loss over partial observations is the mean over observed points only (:func:`masked_mse`):
unobserved cells and frames contribute nothing, and the value does not depend on how many
fields there are (each field's masked mean counts once).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from phi.field import Field
from phiml import math

from .._backend import as_physics_tensor
from .._checks import check_count, check_real, is_integer
from .._grid import GridSpec

__all__ = ["ObservationMask", "spatial_mask", "temporal_mask", "add_noise", "masked_mse"]


@dataclass(frozen=True, eq=False)
class ObservationMask:
    """Which target points of a trajectory are observed (True = observed).

    Attributes:
        spatial: bool ``resolution`` (e.g. ``(64,)``), the observed cells; None: all.
        temporal: bool ``(num_steps,)``, the observed target frames; None: all.

    The initial state of a window is taken as known everywhere (it starts the rollout); the mask
    applies to the targets. Combine masks per sample by passing one per data item.
    """

    spatial: np.ndarray | None = None
    temporal: np.ndarray | None = None

    def __post_init__(self):
        for name in ("spatial", "temporal"):
            m = getattr(self, name)
            if m is None:
                continue
            m = np.asarray(m)
            axes = (1, 2, 3) if name == "spatial" else (1,)
            if m.ndim not in axes:
                raise ValueError(
                    f"Expected a {name} mask with {' to '.join(map(str, (axes[0], axes[-1])))} "
                    f"ax{'es' if name == 'spatial' else 'is'}, got shape {m.shape}. Fix: "
                    + ("spatial_mask(grid, region=...) gives one of shape grid.resolution."
                       if name == "spatial" else "temporal_mask(num_steps, every=...) gives one of shape (num_steps,).")
                )
            if m.dtype != bool:
                if not np.isin(m, (0, 1)).all():
                    raise ValueError(f"Expected a boolean {name} mask (or 0/1), got values {np.unique(m)[:5]}. "
                                     "Fix: True where observed, False elsewhere.")
                m = m.astype(bool)
            if not m.any():
                raise ValueError(
                    f"The {name} mask observes nothing (all False). Fix: mark at least one "
                    f"{'cell' if name == 'spatial' else 'frame'} as observed, or pass None for all."
                )
            object.__setattr__(self, name, m)

    def weights(self, grid: GridSpec, num_steps: int) -> math.Tensor:
        """The mask as 0/1 float weights with dims ``(time, *space)`` (only those it restricts).

        Raises:
            ValueError: when the mask's shapes do not match ``grid`` / ``num_steps``.
        """
        num_steps = _check_steps(grid, num_steps)
        w = math.tensor(1.0)
        if self.spatial is not None:
            if self.spatial.shape != tuple(grid.resolution):
                raise ValueError(
                    f"Expected a spatial mask of shape {tuple(grid.resolution)}, got {self.spatial.shape}."
                )
            w = w * math.tensor(as_physics_tensor(self.spatial.astype(np.float32)), grid.spatial_shape)
        if self.temporal is not None:
            if self.temporal.shape != (int(num_steps),):
                raise ValueError(
                    f"Expected a temporal mask of shape ({num_steps},) (one per target frame), "
                    f"got {self.temporal.shape}."
                )
            w = w * math.tensor(as_physics_tensor(self.temporal.astype(np.float32)), math.batch("time"))
        return w

    def point_weights(self, grid: GridSpec, num_steps: int) -> np.ndarray:
        """The mask as float32 weights ``(num_steps, 1, *resolution)`` for a network's loss
        (broadcasting against targets ``(T, C, *space)`` in the channel layout)."""
        num_steps = _check_steps(grid, num_steps)
        w = np.ones((num_steps, 1) + tuple(grid.resolution), dtype=np.float32)
        self.weights(grid, num_steps)  # raises when the mask does not fit the grid / steps
        if self.spatial is not None:
            w = w * self.spatial.astype(np.float32)
        if self.temporal is not None:
            w = w * self.temporal.astype(np.float32).reshape((-1, 1) + (1,) * grid.ndim)
        return w

    @property
    def observed_fraction(self) -> float:
        """Fraction of target points observed."""
        f = 1.0
        for m in (self.spatial, self.temporal):
            if m is not None:
                f *= float(m.mean())
        return f


def spatial_mask(grid: GridSpec, *, region: Sequence[tuple[float, float]] | None = None,
                 fraction: float | None = None, seed: int | None = None, every: int | None = None) -> np.ndarray:
    """A spatial observation mask: a box of the domain, a random fraction of the cells, or
    sensors on every ``every``-th cell (per axis).

    Args:
        grid: the grid.
        region: ``[(low, high)]`` per axis in physical coordinates; cells whose centres lie in
            ``[low, high)`` are observed. E.g. ``[(0, 50)]``: the left half of ``[0, 100)``.
        fraction: instead of a region: observe this fraction of cells, drawn at random (seeded).
        seed: seed for ``fraction``.
        every: sensors: cells whose index is a multiple of ``every`` along every axis (with a
            region: only those inside it).

    Returns:
        bool ``resolution``.

    Raises:
        ValueError: both or neither of ``region`` / ``fraction`` (``every`` alone is allowed),
            ``every`` not an integer >= 1, a region that is not one pair
            of finite numbers ``low < high`` per axis or holds no cell centre, a fraction outside
            ``(0, 1]``, a seed that is not an integer >= 0. TypeError: ``grid`` is not a GridSpec.
    """
    _check_grid(grid)
    if every is not None:
        every = check_count(every, "every", minimum=1, fix="e.g. every=4: a sensor on every 4th cell.")
        if fraction is not None:
            raise ValueError(f"Expected every= or fraction=, not both, got every={every}, fraction={fraction}.")
        grid_mask = np.ones(tuple(grid.resolution), dtype=bool)
        for axis, n in enumerate(grid.resolution):
            shape = [1] * grid.ndim
            shape[axis] = n
            grid_mask &= (np.arange(n) % every == 0).reshape(shape)
        return grid_mask & (spatial_mask(grid, region=region) if region is not None else True)
    if (region is None) == (fraction is None):
        raise ValueError("Expected exactly one of region=[(low, high), ...] or fraction=..., got "
                         f"region={region}, fraction={fraction}.")
    if region is not None:
        bounds = _check_region(region, grid)
        coords = grid.coordinates()
        mask = np.ones(tuple(grid.resolution), dtype=bool)
        for c, (lo, hi) in zip(coords, bounds):
            mask &= (c >= lo) & (c < hi)
    else:
        fraction = check_real(fraction, "fraction", minimum=0.0, strict_minimum=True, maximum=1.0,
                              fix="the share of cells observed, e.g. fraction=0.25.")
        seed = _check_seed(seed)
        n = int(np.prod(grid.resolution))
        k = max(1, int(round(fraction * n)))
        flat = np.zeros(n, dtype=bool)
        flat[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
        mask = flat.reshape(tuple(grid.resolution))
    if not mask.any():
        raise ValueError(f"The region {region} contains no cell centre of the grid {grid.resolution}.")
    return mask


def temporal_mask(num_steps: int, *, every: int | None = None, frames: Sequence[int] | None = None) -> np.ndarray:
    """A temporal observation mask over the ``num_steps`` target frames of a window.

    Args:
        num_steps: target frames per window (``num_predict_steps``).
        every: observe frames ``every-1, 2*every-1, ...`` (each ``every``-th step, the last of each
            stride); e.g. ``every=5`` with 10 steps observes steps 5 and 10.
        frames: instead: the indices (0-based, into the targets) that are observed.

    Returns:
        bool ``(num_steps,)``.

    Raises:
        ValueError: both or neither of ``every`` / ``frames``, a count that is not an integer
            (``every=2.5`` is not every 2nd frame), frame indices out of range or not integers, or
            a mask that observes no frame.
    """
    if (every is None) == (frames is None):
        raise ValueError(f"Expected exactly one of every= or frames=, got every={every}, frames={frames}.")
    num_steps = check_count(num_steps, "num_steps", minimum=1, fix="the target frames per window, e.g. 10.")
    mask = np.zeros(num_steps, dtype=bool)
    if every is not None:
        every = check_count(every, "every", minimum=1, fix="observe every k-th frame with an integer k, e.g. every=2.")
        mask[every - 1::every] = True
    else:
        frames = list(frames)
        if not all(is_integer(i) for i in frames):
            raise ValueError(f"Expected integer frame indices, got {frames}. Fix: e.g. frames=[0, 4, 9].")
        idx = np.asarray([int(i) for i in frames], dtype=int)
        if idx.size and (idx.min() < -num_steps or idx.max() >= num_steps):
            raise ValueError(f"Expected frame indices in [0, {num_steps}), got {list(frames)}.")
        mask[idx] = True
    if not mask.any():
        raise ValueError(f"The temporal mask observes no frame of {num_steps} (every={every}, frames={frames}).")
    return mask


def add_noise(data, rel_std: float, *, seed: int | None = 0):
    """Add seeded Gaussian noise with std ``rel_std * std(data)`` (per field).

    Args:
        data: a ``Field``, a dict ``name -> Field``, a phiml tensor, a numpy array or a torch tensor.
        rel_std: noise level relative to the data's standard deviation (0.05 = 5 %).
        seed: same seed, same noise.

    Returns:
        the same type as ``data``, with noise added (float32 values).

    Raises:
        ValueError: ``rel_std`` not a finite number >= 0, a seed that is not an integer >= 0 (or
            None), or data holding NaN / inf (its std, hence the noise, would be NaN everywhere).
    """
    rel_std = check_real(rel_std, "rel_std", minimum=0.0, fix="the noise std relative to the data's, e.g. 0.05 for 5 %.")
    rng = np.random.default_rng(_check_seed(seed))
    if isinstance(data, Mapping):
        return {k: _noisy(v, rel_std, rng) for k, v in data.items()}
    return _noisy(data, rel_std, rng)


def _noisy(v, rel_std: float, rng: np.random.Generator):
    if isinstance(v, Field):
        return v.with_values(_noisy(v.values, rel_std, rng))
    if isinstance(v, math.Tensor):
        names = v.shape.names
        return math.tensor(as_physics_tensor(_noisy(v.numpy(names), rel_std, rng)), v.shape)
    if isinstance(v, torch.Tensor):
        return torch.as_tensor(_noisy(v.detach().cpu().numpy(), rel_std, rng), device=v.device)
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"Expected numeric data to add noise to, got dtype {a.dtype}. Fix: pass float arrays or fields.")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(
            f"Expected finite data to add noise to, got {int((~np.isfinite(a)).sum())} NaN / inf value(s) of {a.size}: "
            "the noise scale (the data's std) would be NaN everywhere. Fix: drop or repair the non-finite values first."
        )
    noise = rng.standard_normal(a.shape) * rel_std * a.std()
    return (a + noise).astype(np.float32)


def masked_mse(pred: Mapping[str, math.Tensor], target: Mapping[str, math.Tensor],
               weights: math.Tensor | None = None, counts: Mapping[str, float] | None = None) -> math.Tensor:
    """Mean squared error over observed points, averaged over fields.

    Args:
        pred, target: ``name -> tensor`` with the same dims (e.g. ``(batch, time, x)``).
        weights: 0/1 observation weights broadcasting against them (e.g. ``(batch, time, x)``
            or ``(x)``); None: all observed.
        counts: observed points per field (``sum`` of the broadcast weights), if precomputed.

    Returns:
        scalar tensor: ``mean over fields of sum(w * (pred - target)^2) / sum(w)``.
    """
    losses = []
    for k in pred:
        err2 = (pred[k] - target[k]) ** 2
        if weights is None:
            losses.append(math.mean(err2, err2.shape))
            continue
        n = counts[k] if counts is not None else observed_count(weights, err2.shape)
        losses.append(math.sum(weights * err2, err2.shape) / n)
    return sum(losses) / len(losses)


def observed_count(weights: math.Tensor, shape) -> float:
    """Number of observed points when ``weights`` broadcasts to a tensor of ``shape``.

    Raises:
        ValueError: when nothing is observed.
    """
    w = weights.shape
    extra = w.without(shape.names)
    if extra:
        raise ValueError(f"Observation weights have dims {extra} that the data {shape} lacks.")
    missing = shape.without(w.names)
    n = float(math.sum(weights, w)) * missing.volume
    if n <= 0:
        raise ValueError("The observation weights observe nothing (all zero). Fix: observe at least one point.")
    return n


def _check_grid(grid) -> GridSpec:
    if not isinstance(grid, GridSpec):
        raise TypeError(f"Expected a hybridkit.GridSpec as grid, got {type(grid).__name__}. Fix: pass model.grid.")
    return grid


def _check_steps(grid, num_steps) -> int:
    _check_grid(grid)
    return check_count(num_steps, "num_steps", minimum=1, fix="the target frames per window (num_predict_steps).")


def _check_seed(seed) -> int | None:
    if seed is None:
        return None
    return check_count(seed, "seed", minimum=0, fix="pass a non-negative integer seed (or None for a fresh draw).")


def _check_region(region, grid: GridSpec) -> list[tuple[float, float]]:
    """``[(low, high)]`` per axis as floats, ``low < high``, finite numbers (bools are none)."""
    example = ", ".join(f"(0, {s / 2:g})" for s in grid.domain_size)
    fix = f"Fix: one (low, high) per axis in physical coordinates, e.g. region=[{example}]."
    try:
        pairs = [tuple(p) for p in region]
    except TypeError:
        raise ValueError(f"Expected region as a list of (low, high) pairs, got {region!r}. {fix}") from None
    if len(pairs) != grid.ndim:
        raise ValueError(f"Expected one (low, high) per axis ({grid.ndim}), got region={region}. {fix}")
    out = []
    for pair in pairs:
        try:
            low, high = (check_real(v, "a region bound") for v in pair)
        except ValueError:
            raise ValueError(f"Expected each region entry as two finite numbers (low, high), got {pair!r}. {fix}") from None
        if not low < high:
            raise ValueError(f"Expected low < high in every region entry, got {pair!r}. {fix}")
        out.append((low, high))
    return out
