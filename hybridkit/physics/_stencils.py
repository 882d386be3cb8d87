"""Second-order finite differences on cell-centred phiml tensors.

Every operator takes the values of a grid (spatial dims named ``x``, ``y``, ...) and the grid's
boundary extrapolation, pads one ghost cell and returns a tensor of the same shape.
"""
from __future__ import annotations

from phiml import math


def neighbours(u: math.Tensor, axis: str, boundary):
    """``(u[i-1], u[i+1])`` along ``axis`` with ghost cells from ``boundary``."""
    p = math.pad(u, {axis: (1, 1)}, boundary)
    return p[{axis: slice(0, -2)}], p[{axis: slice(2, None)}]


def ddx(u: math.Tensor, axis: str, dx: float, boundary) -> math.Tensor:
    """Central first derivative ``(u[i+1] - u[i-1]) / 2dx``."""
    um, up = neighbours(u, axis, boundary)
    return (up - um) / (2 * dx)


def laplace(u: math.Tensor, axes, dxs, boundary) -> math.Tensor:
    """Five-point (in 2D) Laplacian ``sum_a (u[i+1] - 2u[i] + u[i-1]) / dx_a^2``."""
    out = 0
    for axis, dx in zip(axes, dxs):
        um, up = neighbours(u, axis, boundary)
        out = out + (up - 2 * u + um) / dx**2
    return out


def div_k_grad(u: math.Tensor, k: math.Tensor, axes, dxs, boundary, k_boundary) -> math.Tensor:
    """Conservative ``div(k grad u)`` with ``k`` averaged onto cell faces.

    ``(k[i+1/2] (u[i+1] - u[i]) - k[i-1/2] (u[i] - u[i-1])) / dx^2`` per axis, with
    ``k[i+1/2] = (k[i] + k[i+1]) / 2``. For a constant ``k`` this is ``k * laplace(u)``.
    """
    out = 0
    for axis, dx in zip(axes, dxs):
        um, up = neighbours(u, axis, boundary)
        km, kp = neighbours(k, axis, k_boundary)
        out = out + ((k + kp) * (up - u) - (k + km) * (u - um)) / (2 * dx**2)
    return out
