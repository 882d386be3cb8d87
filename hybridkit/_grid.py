"""The discretisation shared by a physical model, its datasets and the torch side."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from phi.geom import Box
from phiml.math import extrapolation, spatial

from ._checks import is_integer

_AXES = ("x", "y", "z")
BOUNDARIES = {"periodic": extrapolation.PERIODIC, "zero": extrapolation.ZERO}


@dataclass(frozen=True)
class GridSpec:
    """A uniform cell-centred grid on ``[0, size_i)`` along each axis.

    Args:
        resolution: cells per axis, e.g. ``(64,)`` or ``(32, 32)``.
        domain_size: physical length per axis.
        boundary: ``"periodic"`` or ``"zero"`` (Dirichlet zero ghost cells).
    """

    resolution: tuple[int, ...]
    domain_size: tuple[float, ...]
    boundary: str = "periodic"

    def __post_init__(self):
        res, size = _as_tuple(self.resolution), _as_tuple(self.domain_size)
        if len(size) == 1 and len(res) > 1:
            size = size * len(res)
        # counts are integers and sizes finite numbers: 64.9 cells is not 64, True is not 1
        if not 1 <= len(res) <= 3 or not all(is_integer(n) and n >= 4 for n in res):
            raise ValueError(
                f"Expected 1 to 3 axes with at least 4 cells each, got resolution={self.resolution!r}. "
                "Fix: pass e.g. resolution=(64,) or (32, 32): whole numbers of cells, at least 4 per axis."
            )
        res = tuple(int(n) for n in res)
        finite = all(isinstance(s, numbers.Real) and not isinstance(s, bool) and type(s).__name__ != "bool_"
                     and 0 < float(s) < float("inf") for s in size)
        if len(size) != len(res) or not finite:
            raise ValueError(
                f"Expected one positive, finite domain size per axis ({len(res)}), got "
                f"domain_size={self.domain_size!r}. Fix: e.g. domain_size=(100.0,)."
            )
        size = tuple(float(s) for s in size)
        if not isinstance(self.boundary, str) or self.boundary not in BOUNDARIES:
            raise ValueError(
                f"Expected boundary in {sorted(BOUNDARIES)}, got {self.boundary!r}. Fix: boundary='periodic' "
                "(or 'zero' for Dirichlet zero walls)."
            )
        object.__setattr__(self, "resolution", res)
        object.__setattr__(self, "domain_size", size)

    @property
    def ndim(self) -> int:
        return len(self.resolution)

    @property
    def axes(self) -> tuple[str, ...]:
        """Spatial dimension names, ``('x',)``, ``('x', 'y')``, ..."""
        return _AXES[: self.ndim]

    @property
    def dx(self) -> tuple[float, ...]:
        return tuple(s / n for s, n in zip(self.domain_size, self.resolution))

    @property
    def spatial_shape(self):
        """The phiml spatial shape, e.g. ``(xˢ=64)``."""
        return spatial(**dict(zip(self.axes, self.resolution)))

    @property
    def bounds(self) -> Box:
        return Box(**dict(zip(self.axes, self.domain_size)))

    @property
    def extrapolation(self):
        return BOUNDARIES[self.boundary]

    def coordinates(self):
        """Cell centres as numpy arrays, one per axis (``indexing='ij'``)."""
        import numpy as np

        axes = [(np.arange(n) + 0.5) * d for n, d in zip(self.resolution, self.dx)]
        return np.meshgrid(*axes, indexing="ij")

    def to_dict(self) -> dict:
        return {
            "resolution": list(self.resolution),
            "domain_size": list(self.domain_size),
            "boundary": self.boundary,
        }


def _as_tuple(v) -> tuple:
    if isinstance(v, (list, tuple)):
        return tuple(v)
    if type(v).__name__ == "ndarray":
        return tuple(v.reshape(-1).tolist())
    return (v,)
