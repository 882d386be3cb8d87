"""Viscous Burgers' equation with a scalar or spatially varying viscosity."""
from __future__ import annotations

import numpy as np
from phiml import math

from .._grid import GridSpec
from ._base import AbstractPDE, ParamSpec, coefficient_kind, smooth_random
from ._stencils import absmax, ddx, div_k_grad, explicit_limit  # noqa: F401  (absmax: old home)


class Burgers(AbstractPDE):
    r"""Viscous Burgers' equation in 1D or 2D.

    .. math:: u_t + (u \cdot \nabla) u = \nabla \cdot (\nu(x) \nabla u)

    In 1D the velocity ``u`` is a scalar field and the advection term uses the energy-conserving
    skew-symmetric form ``(1/3) [(u^2)_x + u u_x]``; in 2D ``u`` is a vector field. Space: second
    order central differences; time: SSP-RK3. ``nu`` is a scalar or a field (``kind='field'`` in
    the learnable parameters is given by the value passed).

    Args:
        grid: the grid (1D or 2D).
        dt: time step between frames.
        viscosity: ``nu``, a float or an array of the grid's shape.
        substeps: RK3 steps per ``dt``.
        ic_modes, ic_amplitude: random initial conditions: this many low Fourier modes,
            scaled to ``max |u| = ic_amplitude``.
        jit: compile the step with ``phiml.math.jit_compile`` (on torch: tracing).
        on_unstable: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``dt`` is beyond the limit.
    """

    field_names = ("velocity",)

    def __init__(self, grid: GridSpec, *, dt: float = 0.1, viscosity=0.5, substeps: int = 1,
                 ic_modes: int = 4, ic_amplitude: float = 1.0, jit: bool = True,
                 on_unstable: str = "raise"):
        self.param_specs = (
            ParamSpec("viscosity", coefficient_kind(viscosity), (1e-4, 10.0), "kinematic viscosity nu"),
        )
        self.vector_fields = ("velocity",) if grid.ndim > 1 else ()
        self.ic_modes, self.ic_amplitude = int(ic_modes), float(ic_amplitude)
        super().__init__(grid, dt=dt, substeps=substeps, jit=jit, on_unstable=on_unstable,
                         params={"viscosity": viscosity})

    def _rhs(self, values, params):
        u, nu, g = values["velocity"], params["viscosity"], self.grid
        b = g.extrapolation
        if g.ndim == 1:
            adv = (ddx(u * u, "x", g.dx[0], b) + u * ddx(u, "x", g.dx[0], b)) / 3
            return {"velocity": -adv + div_k_grad(u, nu, g.axes, g.dx, b, self.coefficient_boundary)}
        comps = []
        for c in g.axes:
            uc = u.vector[c]
            adv = sum(u.vector[a] * ddx(uc, a, d, b) for a, d in zip(g.axes, g.dx))
            comps.append(-adv + div_k_grad(uc, nu, g.axes, g.dx, b, self.coefficient_boundary))
        return {"velocity": math.stack(comps, math.channel(vector=",".join(g.axes)))}

    def _max_stable_dt(self, values, params):
        return explicit_limit(self.grid, values["velocity"], params["viscosity"])

    def _random_values(self, rng, n):
        g = self.grid
        if g.ndim == 1:
            return {"velocity": smooth_random(rng, n, g, modes=self.ic_modes, amplitude=self.ic_amplitude)}
        comps = [smooth_random(rng, n, g, modes=self.ic_modes, amplitude=self.ic_amplitude) for _ in g.axes]
        return {"velocity": np.stack(comps, axis=-1)}

    def config(self):
        return {**super().config(), "ic_modes": self.ic_modes, "ic_amplitude": self.ic_amplitude}
