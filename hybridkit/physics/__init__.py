"""Physical models: differentiable PDE solvers on PhiFlow / phiml with learnable coefficients.

* :class:`Burgers` — viscous Burgers (1D, 2D), scalar or field viscosity
* :class:`Diffusion` — heat equation with a field diffusivity
* :class:`AdvectionDiffusion` — a scalar carried by a learnable constant velocity
* :class:`NavierStokes2D` — incompressible flow on a periodic box with Kolmogorov forcing
* :class:`ParamSpec`, :class:`AbstractPDE` — what every model declares and shares
"""
from ._base import AbstractPDE, ParamSpec, StabilityError, StabilityWarning
from ._burgers import Burgers

__all__ = ["AbstractPDE", "ParamSpec", "StabilityError", "StabilityWarning", "Burgers"]
