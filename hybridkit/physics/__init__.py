"""Physical models: differentiable PDE solvers on PhiFlow / phiml with learnable coefficients.

* :class:`Burgers` — viscous Burgers (1D, 2D), scalar or field viscosity
* :class:`Diffusion` — heat equation, scalar or field diffusivity
* :class:`AdvectionDiffusion` — a scalar carried by a learnable constant velocity
* :class:`NavierStokes2D` — incompressible flow on a periodic box with Kolmogorov forcing
* :class:`ParamSpec`, :class:`AbstractPDE` — what every model declares and shares
* :func:`learnable`, :class:`LearnableParam` — a named initial guess for a trainer to optimise
* :func:`smoothness_penalty` — gradient / total-variation / Laplacian penalty of a coefficient field
"""
from ._base import AbstractPDE, ParamSpec, StabilityError, StabilityWarning
from ._advection_diffusion import AdvectionDiffusion
from ._burgers import Burgers
from ._diffusion import Diffusion
from ._navier_stokes import NavierStokes2D
from ._learnable import LearnableParam, as_learnables, learnable
from ._smoothness import PENALTIES, smoothness_penalty

__all__ = [
    "AbstractPDE", "ParamSpec", "StabilityError", "StabilityWarning",
    "Burgers", "Diffusion", "AdvectionDiffusion", "NavierStokes2D",
]
__all__ += ["learnable", "LearnableParam", "as_learnables", "smoothness_penalty", "PENALTIES"]
