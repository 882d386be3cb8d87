"""Incompressible Navier-Stokes on a periodic 2D box with Kolmogorov forcing."""
from __future__ import annotations

import numpy as np
from phiml import math
from phiml.math import channel, spatial

from .._grid import GridSpec
from ._base import DEFAULT_MAX_SUBSTEPS, AbstractPDE
from ._params import ParamSpec, smooth_random
from ._stencils import ddx, explicit_limit, laplace


class NavierStokes2D(AbstractPDE):
    r"""Incompressible 2D Navier-Stokes with Kolmogorov forcing and linear drag, periodic box.

    .. math::
        u_t + (u \cdot \nabla) u = -\nabla p + \nu \nabla^2 u + f - \alpha u, \qquad
        \nabla \cdot u = 0, \qquad f = (A \sin(2 \pi k y / L_y), 0)

    Collocated velocity, second-order central differences: the advection term in the
    skew-symmetric form ``(1/2) [(u . grad) u + div(u u)]`` (it neither creates nor destroys
    discrete kinetic energy), the viscous term with the five-point Laplacian. Time: SSP-RK3; after
    every stage the velocity is projected onto the fields whose *central-difference* divergence is
    zero (to round-off), by FFT with the central-difference symbols
    ``s_a = sin(2 pi n_a / N_a) / dx_a``:

    ``p_hat = -div_hat / |s|^2`` (0 where ``|s|^2 = 0``), ``u_hat -= i s p_hat``, i.e.
    ``u_hat <- u_hat - s (s . u_hat) / |s|^2``, an orthogonal projection (it removes energy, never
    adds it). The mean flow and the grid-scale (Nyquist) modes, which central differences do not
    see, are left alone; viscosity damps the latter.

    The laminar solution is ``u = (A / (nu kappa^2 + alpha)) sin(kappa y)``, ``kappa = 2 pi k / L_y``;
    it is unstable when ``A / (nu kappa^2 + alpha)`` is large relative to ``nu kappa``. The defaults
    (``nu = 0.03``, ``A = 1``, ``k = 4``, ``alpha = 0.1`` on ``64 x 64``) give an unsteady flow with
    ``max |u|`` around 1.5-1.9 that the grid still resolves (cell Reynolds number ~6).

    Args:
        grid: a 2D periodic grid; default ``64 x 64`` on ``[0, 2 pi)^2``.
        dt: time step between frames.
        viscosity: ``nu``, a float (learnable).
        forcing_amplitude: ``A`` (0 for unforced flow).
        forcing_wavenumber: ``k``, an integer: the forcing has ``k`` periods along ``y``.
        drag: ``alpha >= 0``, linear (Rayleigh) drag.
        substeps: RK3 steps per ``dt``: ``"auto"`` (default) chooses ``ceil(dt / limit)`` from the
            explicit limit of the current state and coefficients (:meth:`~AbstractPDE.substeps_for`),
            so any ``dt`` works; an integer is used as given (the default grid and coefficients at
            ``dt = 0.1`` give 4).
        max_substeps: most automatic substeps per step; beyond, ``on_unstable`` applies.
        ic_modes, ic_amplitude: random initial conditions: a smooth random velocity of this many
            low Fourier modes per component, projected, scaled to ``max |u_a| = ic_amplitude``.
        jit: compile the step with ``phiml.math.jit_compile`` (on torch: tracing).
        on_unstable: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``dt`` is beyond the limit.

    Raises:
        ValueError: for a grid that is not 2D and periodic, or a negative drag.
    """

    field_names = ("velocity",)
    vector_fields = ("velocity",)
    param_specs = (ParamSpec("viscosity", "scalar", (1e-4, 10.0), "kinematic viscosity nu"),)

    def __init__(self, grid: GridSpec | None = None, *, dt: float = 0.1, viscosity: float = 0.03,
                 forcing_amplitude: float = 1.0, forcing_wavenumber: int = 4, drag: float = 0.1,
                 substeps: int | str = "auto", ic_modes: int = 4, ic_amplitude: float = 1.0, jit: bool = True,
                 on_unstable: str = "raise", max_substeps: int = DEFAULT_MAX_SUBSTEPS):
        if grid is None:
            grid = GridSpec((64, 64), (2 * np.pi, 2 * np.pi))
        if not isinstance(grid, GridSpec) or grid.ndim != 2 or grid.boundary != "periodic":
            raise ValueError(
                f"Expected a 2D periodic GridSpec, got {grid!r}. "
                "Fix: pass e.g. GridSpec((64, 64), (2 * np.pi, 2 * np.pi))."
            )
        if drag < 0:
            raise ValueError(f"Expected drag >= 0, got drag={drag}.")
        self.forcing_amplitude = float(forcing_amplitude)
        self.forcing_wavenumber = int(forcing_wavenumber)
        self.drag = float(drag)
        self.ic_modes, self.ic_amplitude = int(ic_modes), float(ic_amplitude)
        # Constants as numpy-backed phiml tensors: phiml converts them to the backend, device and
        # precision of the velocity they meet (float64 inside `math.precision(64)`).
        dims = spatial("x,y") & channel(vector="x,y")
        y = grid.coordinates()[1]
        fx = self.forcing_amplitude * np.sin(2 * np.pi * self.forcing_wavenumber * y / grid.domain_size[1])
        self._forcing = math.tensor(np.stack([fx, np.zeros_like(fx)], -1), dims)
        freqs = [np.sin(2 * np.pi * np.fft.fftfreq(n)) / d for n, d in zip(grid.resolution, grid.dx)]
        s = np.stack(np.meshgrid(*freqs, indexing="ij"), -1)
        s[np.abs(s) < 1e-9 * np.abs(s).max()] = 0.0  # sin(pi) = 1e-16: the Nyquist symbol is 0
        s2 = np.sum(s**2, -1)
        self._symbol = math.tensor(s, dims)
        self._inv_s2 = math.tensor(np.divide(1.0, s2, out=np.zeros_like(s2), where=s2 > 0),
                                   spatial("x,y"))
        super().__init__(grid, dt=dt, substeps=substeps, max_substeps=max_substeps, jit=jit,
                         on_unstable=on_unstable,
                         params={"viscosity": viscosity})

    def _rhs(self, values, params):
        u, nu, g = values["velocity"], params["viscosity"], self.grid
        b = g.extrapolation
        comps = []
        for c in g.axes:
            uc = u.vector[c]
            conv = sum(u.vector[a] * ddx(uc, a, d, b) for a, d in zip(g.axes, g.dx))
            cons = sum(ddx(u.vector[a] * uc, a, d, b) for a, d in zip(g.axes, g.dx))
            comps.append(-0.5 * (conv + cons) + nu * laplace(uc, g.axes, g.dx, b))
        rhs = math.stack(comps, channel(vector=",".join(g.axes))) + self._forcing
        if self.drag:
            rhs = rhs - self.drag * u
        return {"velocity": rhs}

    def _project(self, values):
        return {"velocity": self.project(values["velocity"])}

    def project(self, u: math.Tensor) -> math.Tensor:
        """Remove the central-difference-visible divergent part of ``u`` (any batch dims).

        Args:
            u: phiml tensor with spatial dims ``x, y`` and channel ``vector``.

        Returns:
            ``u - grad p`` with ``div_c(u - grad p) = 0`` to round-off, ``div_c`` the central divergence.
        """
        u_hat = math.fft(u, "x,y")
        # = u_hat - i s p_hat with p_hat = -(i s . u_hat) / |s|^2: the symbols are real, so no i.
        s_dot_u = math.sum(self._symbol * u_hat, "vector")
        return math.real(math.ifft(u_hat - self._symbol * (s_dot_u * self._inv_s2), "x,y"))

    def divergence(self, u: math.Tensor) -> math.Tensor:
        """Central-difference divergence ``sum_a (u_a[i+1] - u_a[i-1]) / 2dx_a``, shape of ``u`` less ``vector``."""
        g = self.grid
        return sum(ddx(u.vector[a], a, d, g.extrapolation) for a, d in zip(g.axes, g.dx))

    def laminar_amplitude(self, viscosity: float | None = None) -> float:
        """``A / (nu kappa^2 + alpha)``: the amplitude of the steady laminar Kolmogorov flow.

        Args:
            viscosity: ``nu``; default: the model's own.
        """
        nu = float(self.true_params["viscosity"]) if viscosity is None else float(viscosity)
        kappa = 2 * np.pi * self.forcing_wavenumber / self.grid.domain_size[1]
        if self.forcing_amplitude == 0:
            return 0.0
        damping = nu * kappa**2 + self.drag
        return abs(self.forcing_amplitude) / damping if damping > 0 else float("inf")

    def _max_stable_dt(self, values, params):
        # The check runs on the initial state only; forcing drives the flow up to about the
        # laminar amplitude, so that speed is assumed along every axis as well.
        nu = params["viscosity"]
        nu_min = float(math.min(nu, nu.shape)) if isinstance(nu, math.Tensor) else float(nu)
        speed = math.maximum(abs(values["velocity"]), self.laminar_amplitude(nu_min))
        return explicit_limit(self.grid, speed, nu, decay=self.drag)

    def _random_values(self, rng, n):
        g = self.grid
        u = np.stack([smooth_random(rng, n, g, modes=self.ic_modes) for _ in g.axes], -1)
        u = self.project(math.tensor(u, math.batch("_n") & spatial("x,y") & channel(vector="x,y")))
        u = u.numpy(["_n", "x", "y", "vector"])
        scale = self.ic_amplitude / np.maximum(np.abs(u).max(axis=(1, 2, 3), keepdims=True), 1e-12)
        return {"velocity": u * scale}

    def config(self):
        return {**super().config(), "forcing_amplitude": self.forcing_amplitude,
                "forcing_wavenumber": self.forcing_wavenumber, "drag": self.drag,
                "ic_modes": self.ic_modes, "ic_amplitude": self.ic_amplitude}
