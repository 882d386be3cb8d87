"""A passive scalar carried by a constant velocity and diffusing."""
from __future__ import annotations

import numpy as np

from .._grid import GridSpec
from ._base import DEFAULT_MAX_SUBSTEPS, AbstractPDE
from ._params import ParamSpec, smooth_random
from ._stencils import ddx, explicit_limit, laplace


class AdvectionDiffusion(AbstractPDE):
    r"""Linear advection-diffusion of a concentration in 1D, 2D or 3D.

    .. math:: c_t + v \cdot \nabla c = D \nabla^2 c

    with a constant velocity ``v`` (one component per axis) and a scalar diffusivity ``D``, both
    learnable. Space: second-order central differences; time: SSP-RK3. With ``D = 0`` this is pure
    advection (an exact shift ``c(x - v t)``; the central scheme is dispersive, not diffusive).

    Args:
        grid: the grid.
        dt: time step between frames.
        velocity: ``v``, one number per axis, e.g. ``(1.0,)`` in 1D or ``(1.0, 0.5)`` in 2D
            (a bare float is accepted in 1D); default: 1 along every axis.
        diffusivity: ``D >= 0``, a float.
        substeps: RK3 steps per ``dt``: ``"auto"`` (default) chooses ``ceil(dt / limit)`` from the
            explicit limit of the current state and coefficients (:meth:`~AbstractPDE.substeps_for`),
            so any ``dt`` works; an integer is used as given; stable when
            ``dt/substeps * sum_a |v_a| / dx_a <= 1`` and ``dt/substeps <= 0.5 / (D sum_a 1/dx_a^2)``.
        max_substeps: most automatic substeps per step; beyond, ``on_unstable`` applies.
        ic_modes, ic_amplitude: random initial conditions: this many low Fourier modes,
            scaled to ``max |c| = ic_amplitude``.
        jit: compile the step with ``phiml.math.jit_compile`` (on torch: tracing).
        on_unstable: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``dt`` is beyond the limit.

    Raises:
        ValueError: when ``velocity`` does not have one component per axis.
    """

    field_names = ("concentration",)
    limit_depends_on_state = False  # the coefficients alone set it
    vector_fields = ()
    param_specs = (
        ParamSpec("velocity", "vector", (-10.0, 10.0), "constant advection velocity, one component per axis"),
        ParamSpec("diffusivity", "scalar", (0.0, 10.0), "diffusivity D"),
    )

    def __init__(self, grid: GridSpec, *, dt: float = 0.1, velocity=None, diffusivity: float = 0.1,
                 substeps: int | str = "auto", ic_modes: int = 4, ic_amplitude: float = 1.0, jit: bool = True,
                 on_unstable: str = "raise", max_substeps: int = DEFAULT_MAX_SUBSTEPS):
        if velocity is None:
            velocity = (1.0,) * grid.ndim
        v = np.atleast_1d(np.asarray(velocity, dtype=np.float64))
        if v.shape != (grid.ndim,):
            raise ValueError(
                f"Expected velocity with one component per axis {grid.axes}, got {velocity!r}. "
                f"Fix: pass e.g. velocity={(1.0,) * grid.ndim}."
            )
        self.ic_modes, self.ic_amplitude = int(ic_modes), float(ic_amplitude)
        super().__init__(grid, dt=dt, substeps=substeps, max_substeps=max_substeps, jit=jit,
                         on_unstable=on_unstable,
                         params={"velocity": v, "diffusivity": diffusivity})

    def _rhs(self, values, params):
        c, v, g = values["concentration"], params["velocity"], self.grid
        b = g.extrapolation
        adv = sum(v.vector[a] * ddx(c, a, d, b) for a, d in zip(g.axes, g.dx))
        return {"concentration": -adv + params["diffusivity"] * laplace(c, g.axes, g.dx, b)}

    def _max_stable_dt(self, values, params):
        return explicit_limit(self.grid, params["velocity"], params["diffusivity"])

    def _random_values(self, rng, n):
        return {"concentration": smooth_random(rng, n, self.grid, modes=self.ic_modes,
                                               amplitude=self.ic_amplitude)}

    def config(self):
        return {**super().config(), "ic_modes": self.ic_modes, "ic_amplitude": self.ic_amplitude}
