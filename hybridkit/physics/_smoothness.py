"""Smoothness penalties of coefficient fields (the physical fit's regularisers)."""
from __future__ import annotations

from phiml import math

from ._base import AbstractPDE
from ._stencils import laplace, neighbours

__all__ = ["smoothness_penalty", "PENALTIES"]

PENALTIES = ("gradient", "tv", "laplacian")


def smoothness_penalty(p: math.Tensor, kind: str, model: AbstractPDE) -> math.Tensor:
    """Smoothness penalty of a coefficient field ``p`` on ``model``'s grid (mean over cells,
    physical units, the model's coefficient boundary).

    * ``"gradient"`` (H1): ``mean sum_a ((p[i+1] - p[i]) / dx_a)^2``
    * ``"tv"`` (total variation): ``mean sqrt(sum_a ((p[i+1] - p[i]) / dx_a)^2 + 1e-12)``
    * ``"laplacian"``: ``mean (laplace p)^2``
    """
    g, b = model.grid, model.coefficient_boundary
    if kind == "laplacian":
        lap = laplace(p, g.axes, g.dx, b)
        return math.mean(lap ** 2, lap.shape)
    grad2 = 0
    for axis, dx in zip(g.axes, g.dx):
        _, up = neighbours(p, axis, b)
        grad2 = grad2 + ((up - p) / dx) ** 2
    if kind == "gradient":
        return math.mean(grad2, grad2.shape)
    if kind == "tv":
        tv = math.sqrt(grad2 + 1e-12)  # smoothed so the gradient exists where p is flat
        return math.mean(tv, tv.shape)
    raise ValueError(f"Expected a smoothness penalty in {PENALTIES}, got {kind!r}.")
