"""Second-order finite differences on cell-centred phiml tensors.

Every operator takes the values of a grid (spatial dims named ``x``, ``y``, ...) and the grid's
boundary extrapolation, pads one ghost cell and returns a tensor of the same shape.
:func:`explicit_limit` gives the time step SSP-RK3 is stable with for these stencils.
"""
from __future__ import annotations

import numpy as np
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


def absmax(value) -> float:
    """``max |value|`` over all dims of a phiml tensor (or of a number) as a Python float."""
    if isinstance(value, math.Tensor):
        return float(math.max(abs(value), value.shape))
    return float(np.max(np.abs(value)))


def advective_rate(grid, velocity) -> float:
    """``sum_a max|u_a| / dx_a``: the largest frequency central advection by ``velocity`` has.

    ``velocity`` is a number, a scalar phiml tensor (the same speed bound along every axis), or a
    phiml tensor with a channel dim ``vector`` (one component per axis; any other dims).
    """
    if isinstance(velocity, math.Tensor) and "vector" in velocity.shape.channel:
        comp = math.max(abs(velocity), velocity.shape.without("vector"))
        return float(sum(float(comp.vector[a]) / d for a, d in zip(grid.axes, grid.dx)))
    return absmax(velocity) * sum(1 / d for d in grid.dx)


def explicit_limit(grid, velocity, diffusivity, *, decay: float = 0.0) -> float:
    """Stable step of SSP-RK3 with these central stencils.

    SSP-RK3 is stable on the imaginary axis up to ``sqrt(3)`` and on the negative real axis up to
    ~2.51; we keep a margin: advection ``dt * sum_a max|u_a| / dx_a <= 1`` and diffusion plus a
    linear decay ``dt * (4 max(nu) sum_a 1 / dx_a^2 + decay) <= 2`` (in 1D: ``dt <= 0.5 dx^2 / nu``).
    Summing over axes matters in 2D: a diagonal flow ``(a, a)`` has twice the CFL number of ``(a, 0)``.

    Args:
        grid: the :class:`GridSpec`.
        velocity: see :func:`advective_rate` (0 for pure diffusion).
        diffusivity: number or phiml tensor (scalar or field), ``>= 0``.
        decay: rate of a linear damping term ``-decay * u``.
    """
    limits = [np.inf]
    rate = advective_rate(grid, velocity)
    if rate > 0:
        limits.append(1.0 / rate)
    real = 4 * absmax(diffusivity) * sum(1 / d**2 for d in grid.dx) + abs(float(decay))
    if real > 0:
        limits.append(2.0 / real)
    return float(min(limits))
