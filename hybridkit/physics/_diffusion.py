"""The heat equation with a scalar or spatially varying diffusivity."""
from __future__ import annotations

from .._grid import GridSpec
from ._base import DEFAULT_MAX_SUBSTEPS, AbstractPDE
from ._params import ParamSpec, coefficient_kind, smooth_random
from ._stencils import div_k_grad, explicit_limit


class Diffusion(AbstractPDE):
    r"""Heat equation in 1D, 2D or 3D.

    .. math:: T_t = \nabla \cdot (D(x) \nabla T)

    Space: the conservative second-order stencil with ``D`` averaged onto cell faces (the total
    heat is conserved exactly on a periodic grid); time: SSP-RK3. ``D`` is a scalar or a field
    (``kind='field'`` in the learnable parameters is given by the value passed).

    Args:
        grid: the grid.
        dt: time step between frames.
        diffusivity: ``D``, a float or an array of the grid's shape ``resolution``.
        substeps: RK3 steps per ``dt``: ``"auto"`` (default) chooses ``ceil(dt / limit)`` from the
            explicit limit of the current state and coefficients (:meth:`~AbstractPDE.substeps_for`),
            so any ``dt`` works; an integer is used as given; explicit diffusion
            needs ``dt/substeps <= 0.5 dx^2 / (ndim D)``.
        max_substeps: most automatic substeps per step; beyond, ``on_unstable`` applies.
        ic_modes, ic_amplitude: random initial conditions: this many low Fourier modes,
            scaled to ``max |T| = ic_amplitude``.
        jit: compile the step with ``phiml.math.jit_compile`` (on torch: tracing).
        on_unstable: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``dt`` is beyond the limit.
    """

    field_names = ("temperature",)
    limit_depends_on_state = False  # the coefficients alone set it
    vector_fields = ()

    def __init__(self, grid: GridSpec, *, dt: float = 0.1, diffusivity=0.5, substeps: int | str = "auto",
                 ic_modes: int = 4, ic_amplitude: float = 1.0, jit: bool = True,
                 on_unstable: str = "raise", max_substeps: int = DEFAULT_MAX_SUBSTEPS):
        self.param_specs = (
            ParamSpec("diffusivity", coefficient_kind(diffusivity), (1e-4, 10.0), "diffusivity D"),
        )
        self.ic_modes, self.ic_amplitude = int(ic_modes), float(ic_amplitude)
        super().__init__(grid, dt=dt, substeps=substeps, max_substeps=max_substeps, jit=jit,
                         on_unstable=on_unstable,
                         params={"diffusivity": diffusivity})

    def _rhs(self, values, params):
        g = self.grid
        return {"temperature": div_k_grad(values["temperature"], params["diffusivity"], g.axes, g.dx,
                                          g.extrapolation, self.coefficient_boundary)}

    def _max_stable_dt(self, values, params):
        return explicit_limit(self.grid, 0.0, params["diffusivity"])

    def _random_values(self, rng, n):
        return {"temperature": smooth_random(rng, n, self.grid, modes=self.ic_modes,
                                             amplitude=self.ic_amplitude)}

    def config(self):
        return {**super().config(), "ic_modes": self.ic_modes, "ic_amplitude": self.ic_amplitude}
