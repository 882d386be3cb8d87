"""Viscous Burgers' equation with a scalar or spatially varying viscosity."""
from __future__ import annotations

import numpy as np
from phiml import math

from .._grid import GridSpec
from ._base import DEFAULT_MAX_SUBSTEPS, AbstractPDE
from ._params import ParamSpec, coefficient_kind, smooth_random
from ._stencils import absmax, ddx, div_k_grad, explicit_limit  # noqa: F401  (absmax: old home)

#: largest cell Reynolds number ``max|u| dx / nu`` a rollout is trusted at. The central scheme is
#: monotone up to 2; measured on random 4-mode states (64 and 128 cells, 60 frames): max|u| never
#: grew up to 3, grew by up to 5 % at 4, 20 % at 6, 30 % at 8, 60 % at 16 (Burgers cannot grow it).
CELL_REYNOLDS_LIMIT = 4.0


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
        substeps: RK3 steps per ``dt``: ``"auto"`` (default) chooses ``ceil(dt / limit)`` from the
            explicit limit of the current state and coefficients (:meth:`~AbstractPDE.substeps_for`),
            so any ``dt`` works; an integer is used as given.
        max_substeps: most automatic substeps per step; beyond, ``on_unstable`` applies.
        ic_modes, ic_amplitude: random initial conditions: this many low Fourier modes,
            scaled to ``max |u| = ic_amplitude``.
        jit: compile the step with ``phiml.math.jit_compile`` (on torch: tracing).
        on_unstable: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``dt`` is beyond the limit.
    """

    field_names = ("velocity",)
    bounded_fields = ("velocity",)  # each component obeys a maximum principle

    def __init__(self, grid: GridSpec, *, dt: float = 0.1, viscosity=0.5, substeps: int | str = "auto",
                 ic_modes: int = 4, ic_amplitude: float = 1.0, jit: bool = True,
                 on_unstable: str = "raise", max_substeps: int = DEFAULT_MAX_SUBSTEPS):
        self.param_specs = (
            ParamSpec("viscosity", coefficient_kind(viscosity), (1e-4, 10.0), "kinematic viscosity nu"),
        )
        self.vector_fields = ("velocity",) if grid.ndim > 1 else ()
        self.ic_modes, self.ic_amplitude = int(ic_modes), float(ic_amplitude)
        super().__init__(grid, dt=dt, substeps=substeps, max_substeps=max_substeps, jit=jit,
                         on_unstable=on_unstable,
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

    def cell_reynolds(self, state, params=None) -> float:
        """``max over cells and axes of |u_a| dx_a / nu``: above ~2 the central scheme is not monotone.

        Args:
            state: as in :meth:`substeps_for`; params: as in :meth:`step`. One host sync.
        """
        values, p = self._values_of(state), self.prepare_params(params)
        return self._cell_reynolds(values["velocity"], p["viscosity"])

    def _cell_reynolds(self, u, nu) -> float:
        g = self.grid
        comps = [u] if g.ndim == 1 else [u.vector[a] for a in g.axes]
        nu = math.maximum(nu, 1e-30)  # inviscid: any motion is under-resolved
        return max(float(math.max(abs(c) * d / nu, (abs(c) * nu).shape)) for c, d in zip(comps, g.dx))

    def _resolution_issue(self, values, params):
        re = self._cell_reynolds(values["velocity"], params["viscosity"])
        if re <= CELL_REYNOLDS_LIMIT:
            return None
        return (f"Burgers: the cell Reynolds number max|u| dx / nu is {re:.3g}, above {CELL_REYNOLDS_LIMIT:g}: "
                f"this grid does not resolve the flow (the central scheme lets max|u| grow, which Burgers "
                f"cannot). {self._resolution_fix(values, params)}")

    def _resolution_fix(self, values, params):
        re = self._cell_reynolds(values["velocity"], params["viscosity"])
        nu = params["viscosity"]
        nu_max = float(math.max(nu, nu.shape)) if isinstance(nu, math.Tensor) else float(nu)
        factor = max(re / CELL_REYNOLDS_LIMIT, 1.0)
        cells = tuple(int(np.ceil(n * factor)) for n in self.grid.resolution)
        return (f"Fix: a finer grid (about {cells} cells), or a larger viscosity (about {factor:.3g} times "
                f"larger, e.g. {nu_max * factor:.3g}; in a fit: a larger lower bound).")

    def _random_values(self, rng, n):
        g = self.grid
        if g.ndim == 1:
            return {"velocity": smooth_random(rng, n, g, modes=self.ic_modes, amplitude=self.ic_amplitude)}
        comps = [smooth_random(rng, n, g, modes=self.ic_modes, amplitude=self.ic_amplitude) for _ in g.axes]
        return {"velocity": np.stack(comps, axis=-1)}

    def config(self):
        return {**super().config(), "ic_modes": self.ic_modes, "ic_amplitude": self.ic_amplitude}
