"""Named learnable parameters: the initial guess of a PDE coefficient that a trainer optimises.

The original design note writes ``math.tensor(0.01, name="viscosity")``; phiml has no such call. The real spelling
is ``learnable("viscosity", 0.01)``, which returns a :class:`LearnableParam` carrying the name,
the initial value, the kind (scalar / field / vector) and optional bounds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import torch
from phi.field import Field
from phiml import math

from .._backend import as_physics_tensor
from ._base import AbstractPDE

__all__ = ["LearnableParam", "learnable", "as_learnables"]

KINDS = ("scalar", "field", "vector")


@dataclass(frozen=True, eq=False)
class LearnableParam:
    """The initial guess of one learnable PDE coefficient.

    Attributes:
        name: the model's parameter name, e.g. ``"viscosity"`` (see ``model.param_names``).
        value: initial guess: a float, or an array ``resolution`` (field) or ``(ndim,)`` (vector).
        kind: ``"scalar"``, ``"field"`` or ``"vector"``; None: from ``value``'s shape, and for a
            float from the model's :class:`ParamSpec` (a float on a field parameter is a uniform
            initial field).
        bounds: ``(low, high)`` the optimiser stays inside; None: the model's valid range
            (``ParamSpec.bounds``). Must lie inside that range.
        transform: how the optimiser sees the value: ``"log"`` (positive ranges: it moves in
            ``log value``), ``"linear"``, or ``"auto"`` (log when ``low > 0``). Both are squashed
            into ``bounds`` so no step can leave them.
    """

    name: str
    value: object
    kind: str | None = None
    bounds: tuple[float, float] | None = None
    transform: str = "auto"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Expected a parameter name (str), got {self.name!r}.")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"Expected kind in {KINDS} or None, got {self.kind!r}.")
        if self.transform not in ("auto", "log", "linear"):
            raise ValueError(f"Expected transform 'auto', 'log' or 'linear', got {self.transform!r}.")
        if self.bounds is not None:
            lo, hi = (float(b) for b in self.bounds)
            if not lo < hi:
                raise ValueError(f"Expected bounds (low, high) with low < high, got {self.bounds}.")
            object.__setattr__(self, "bounds", (lo, hi))
        object.__setattr__(self, "value", _as_numpy(self.value))

    def resolve(self, model: AbstractPDE) -> "LearnableParam":
        """A copy with kind, bounds, transform and a value of the right shape, checked against ``model``.

        Raises:
            KeyError: ``name`` is not one of the model's parameters.
            ValueError: wrong shape, bounds outside the model's range, value outside the bounds.
        """
        spec = model.spec(self.name)  # KeyError names the model's parameters
        grid = model.grid
        value = self.value
        kind = self.kind or _kind_of(value, spec.kind, grid)
        shape = {"scalar": (), "field": tuple(grid.resolution), "vector": (grid.ndim,)}[kind]
        if value.shape == () and shape != ():
            value = np.full(shape, float(value))
        if value.shape != shape:
            raise ValueError(
                f"Expected the initial value of {self.name!r} ({kind}) with shape {shape}, got "
                f"{value.shape}. Fix: pass a float, or an array of the grid's resolution for a field."
            )
        lo, hi = spec.bounds
        bounds = self.bounds or (float(lo), float(hi))
        if bounds[0] < lo or bounds[1] > hi:
            raise ValueError(
                f"Expected bounds of {self.name!r} inside the model's valid range {spec.bounds}, "
                f"got {bounds}. Fix: narrow the bounds (the model is not valid outside its range)."
            )
        if np.any(value < bounds[0]) or np.any(value > bounds[1]) or not np.all(np.isfinite(value)):
            raise ValueError(
                f"Expected the initial value of {self.name!r} inside its bounds {bounds}, got values "
                f"in [{np.min(value):.4g}, {np.max(value):.4g}]. Fix: change the initial guess or the bounds."
            )
        transform = self.transform
        if transform == "auto":
            transform = "log" if bounds[0] > 0 else "linear"
        if transform == "log" and bounds[0] <= 0:
            raise ValueError(f"transform='log' needs positive bounds, got {bounds} for {self.name!r}.")
        return replace(self, value=value, kind=kind, bounds=bounds, transform=transform)

    def tensor(self, model: AbstractPDE, value=None) -> math.Tensor:
        """``value`` (default: the initial one) as the phiml tensor the model's step takes."""
        v = self.value if value is None else _as_numpy(value)
        t = as_physics_tensor(np.asarray(v, dtype=np.float32))
        kind = self.kind or _kind_of(v, model.spec(self.name).kind, model.grid)
        if kind == "field":
            return math.tensor(t, model.grid.spatial_shape)
        if kind == "vector":
            return math.tensor(t, math.channel(vector=",".join(model.grid.axes)))
        return math.tensor(t)

    def __repr__(self) -> str:
        v = f"{float(self.value):g}" if self.value.shape == () else f"array{self.value.shape}"
        return f"learnable({self.name!r}, {v}, kind={self.kind!r}, bounds={self.bounds})"


def learnable(name: str, value, *, kind: str | None = None, bounds: tuple[float, float] | None = None,
              transform: str = "auto") -> LearnableParam:
    """Create a named learnable parameter (the real spelling of the original design note's ``math.tensor(v, name=...)``).

    Example::

        learnable_params = [learnable("viscosity", 0.01)]          # scalar initial guess
        learnable_params = [learnable("diffusivity", 0.3, kind="field")]  # uniform initial field

    Args:
        name: the model's parameter name.
        value: initial guess: float, or array ``resolution`` (field) / ``(ndim,)`` (vector); numpy,
            torch, a phiml tensor or a ``Field`` all work.
        kind, bounds, transform: see :class:`LearnableParam`.
    """
    return LearnableParam(name, value, kind=kind, bounds=bounds, transform=transform)


def as_learnables(params, model: AbstractPDE) -> list[LearnableParam]:
    """Normalise what a trainer is given into resolved :class:`LearnableParam` objects.

    Accepted: a list of :class:`LearnableParam`; a dict ``name -> value``; a list of
    ``(name, value)`` pairs; or a bare value (float / phiml tensor / array) when the model has
    exactly one parameter.

    Raises:
        ValueError: empty, duplicate names, or an unnamed value on a model with several parameters.
    """
    if isinstance(params, LearnableParam) or _is_pair(params):
        params = [params]
    if isinstance(params, Mapping):
        items = [learnable(k, v) for k, v in params.items()]
    elif isinstance(params, (list, tuple)):
        items = [_one(p, model) for p in params]
    else:
        items = [_one(params, model)]
    if not items:
        raise ValueError("Expected at least one learnable parameter, got none. "
                         f"Fix: e.g. [learnable({model.param_names[0]!r}, 0.1)].")
    names = [p.name for p in items]
    if len(set(names)) != len(names):
        raise ValueError(f"Expected distinct parameter names, got {names}.")
    return [p.resolve(model) for p in items]


def _one(p, model: AbstractPDE) -> LearnableParam:
    if isinstance(p, LearnableParam):
        return p
    if _is_pair(p):
        return learnable(p[0], p[1])
    if len(model.param_names) == 1:  # unambiguous: the model has a single parameter
        return learnable(model.param_names[0], p)
    raise ValueError(
        f"Cannot tell which parameter the value {p!r} is: {type(model).__name__} has "
        f"{list(model.param_names)}. Fix: pass learnable(name, value) or a dict name -> value."
    )


def _is_pair(p) -> bool:
    return isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)


def _kind_of(value: np.ndarray, spec_kind: str, grid) -> str:
    if value.shape == ():
        return spec_kind
    if value.shape == tuple(grid.resolution):
        return "field"
    if value.shape == (grid.ndim,):
        return "vector"
    raise ValueError(
        f"Cannot tell the kind of a value of shape {value.shape} on a grid {grid.resolution}: "
        f"expected (), {tuple(grid.resolution)} (field) or ({grid.ndim},) (vector)."
    )


def _as_numpy(value) -> np.ndarray:
    if isinstance(value, Field):
        value = value.values
    if isinstance(value, math.Tensor):
        # spatial dims in axis order (x, y, z), then the vector dim
        order = sorted(value.shape.spatial.names) + list(value.shape.channel.names)
        value = value.numpy(order) if value.shape.rank else float(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)
