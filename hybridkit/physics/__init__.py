"""Physical models: differentiable PDE solvers on PhiFlow / phiml with learnable coefficients.

* :class:`Burgers` — viscous Burgers (1D, 2D), scalar or field viscosity
* :class:`Diffusion` — heat equation, scalar or field diffusivity
* :class:`AdvectionDiffusion` — a scalar carried by a learnable constant velocity
* :class:`NavierStokes2D` — incompressible flow on a periodic box with Kolmogorov forcing
* :class:`ParamSpec`, :class:`AbstractPDE` — what every model declares and shares
* :func:`learnable`, :class:`LearnableParam` — a named initial guess for a trainer to optimise
* :func:`smoothness_penalty` — gradient / total-variation / Laplacian penalty of a coefficient field
* :class:`GaussianBumps`, :class:`FourierModes`, :class:`PiecewiseLinear` — a coefficient field
  given by a few numbers (:class:`AbstractParametricField`; :func:`parametrization_from_dict`)
* :class:`StabilityError`, :class:`StabilityWarning`, :class:`ResolutionWarning` — a time step or a
  grid the explicit scheme cannot handle (``substeps="auto"``, the default, chooses the time step)
* :func:`shared_jit` — compiled functions shared by models of one configuration (torch never frees
  a trace)
"""
from ._base import AUTO, DEFAULT_MAX_SUBSTEPS, AbstractPDE, ResolutionWarning, StabilityError, StabilityWarning
from ._params import ParamSpec
from ._compiled import shared_jit
from ._advection_diffusion import AdvectionDiffusion
from ._burgers import Burgers
from ._diffusion import Diffusion
from ._navier_stokes import NavierStokes2D
from ._learnable import LearnableParam, as_learnables, learnable
from ._smoothness import PENALTIES, smoothness_penalty
from ._parametric import (AbstractParametricField, FourierModes, GaussianBumps, PiecewiseLinear,
                          parametrization_from_dict)

__all__ = [
    "AbstractPDE", "ParamSpec", "StabilityError", "StabilityWarning", "ResolutionWarning",
    "AUTO", "DEFAULT_MAX_SUBSTEPS", "shared_jit",
    "Burgers", "Diffusion", "AdvectionDiffusion", "NavierStokes2D",
]
__all__ += ["learnable", "LearnableParam", "as_learnables", "smoothness_penalty", "PENALTIES"]
__all__ += ["AbstractParametricField", "GaussianBumps", "FourierModes", "PiecewiseLinear",
            "parametrization_from_dict"]
