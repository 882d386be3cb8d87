"""The learnable coefficients a model declares, and the helpers its constructor uses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from phi.field import Field
from phiml import math

from .._grid import GridSpec

__all__ = ["ParamSpec", "coefficient_kind", "smooth_random"]


@dataclass(frozen=True)
class ParamSpec:
    """A coefficient of a PDE that can be learned.

    Attributes:
        name: key in the ``params`` dict, e.g. ``"viscosity"``.
        kind: ``"scalar"`` (one number), ``"field"`` (one number per grid cell) or ``"vector"``
            (one number per spatial axis).
        bounds: valid range ``(low, high)``; the physical trainer optimises inside it.
        doc: one line on what it is.
    """

    name: str
    kind: str
    bounds: tuple[float, float]
    doc: str = ""

    def shape(self, grid: GridSpec) -> tuple[int, ...]:
        """Shape of the parameter's values on ``grid``: ``()``, ``resolution`` or ``(ndim,)``."""
        return {"scalar": (), "field": tuple(grid.resolution), "vector": (grid.ndim,)}[self.kind]

    def check_values(self, values, where: str = "") -> None:
        """Refuse values no simulation can use: NaN / inf, and negative values of a coefficient
        whose range starts at 0 or above (a negative viscosity or diffusivity is anti-diffusion:
        the PDE is ill-posed and any explicit scheme blows up).

        ``bounds`` are the range the trainer searches; values outside it but of the right sign
        (e.g. an inviscid ``0`` for a test) stay allowed.

        Raises:
            ValueError: with what was given and the fix.
        """
        v = np.asarray(values, dtype=np.float64)
        where = f" {where}" if where else ""
        if not np.isfinite(v).all():
            raise ValueError(f"Expected finite values of {self.name!r}{where}, got NaN or inf. "
                             f"Fix: pass values in its range {self.bounds}.")
        if self.bounds[0] >= 0 and (v < 0).any():
            raise ValueError(
                f"Expected {self.name!r}{where} >= 0 ({self.doc or 'a diffusion coefficient'}; valid "
                f"range {self.bounds}), got a minimum of {v.min():.4g}. A negative value makes the PDE "
                f"ill-posed. Fix: pass values in {self.bounds}."
            )


def _float_dtype() -> torch.dtype:
    return torch.float64 if math.get_precision() == 64 else torch.float32


def coefficient_kind(value) -> str:
    """``"scalar"`` for a number (0-d array / tensor), ``"field"`` for anything with axes or a Field.

    Used by constructors whose coefficient may be either (Burgers' viscosity, a diffusivity).
    """
    if isinstance(value, Field):
        return "field"
    if isinstance(value, math.Tensor):
        return "field" if value.shape.spatial else "scalar"
    ndim = value.ndim if isinstance(value, torch.Tensor) else np.ndim(value)
    return "scalar" if ndim == 0 else "field"


def smooth_random(rng: np.random.Generator, n: int, grid: GridSpec, *, modes: int = 4,
                  amplitude: float = 1.0) -> np.ndarray:
    """Random periodic sums of the lowest Fourier modes, scaled so ``max |u| = amplitude``.

    Returns:
        ``(n, *resolution)`` float64.
    """
    coords = grid.coordinates()
    out = np.zeros((n,) + tuple(grid.resolution))
    for i in range(n):
        for _ in range(modes):
            k = rng.integers(1, modes + 1, size=grid.ndim) * rng.choice([-1, 1], size=grid.ndim)
            phase = sum(2 * np.pi * k[a] * coords[a] / grid.domain_size[a] for a in range(grid.ndim))
            out[i] += rng.normal() * np.sin(phase + rng.uniform(0, 2 * np.pi))
        out[i] *= amplitude / max(np.abs(out[i]).max(), 1e-12)
    return out
