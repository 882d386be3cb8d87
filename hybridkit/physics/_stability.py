"""Stability and resolution: the errors and warnings of an explicit scheme that cannot take a step."""
from __future__ import annotations

import warnings

import numpy as np
from phiml import math

__all__ = ["StabilityError", "StabilityWarning", "ResolutionWarning", "check_growth", "over_cap"]

#: relative growth of max |f| of a field with a maximum principle that a rollout tolerates
#: (float round-off and the scheme's own small overshoots stay far below it)
GROWTH_TOLERANCE = 0.01


class StabilityError(ValueError):
    """The time step exceeds the explicit scheme's stability limit."""


class StabilityWarning(UserWarning):
    """The time step exceeds the explicit scheme's stability limit (``on_unstable='warn'``)."""


class ResolutionWarning(UserWarning):
    """The grid does not resolve the physics (e.g. Burgers at a cell Reynolds number far above 2)."""


def over_cap(model, limit: float, n: int | None) -> None:
    """Raise / warn / ignore (per ``on_unstable``) that automatic substeps would exceed ``max_substeps``."""
    if model.on_unstable == "ignore":
        return
    need = f"at least {n}" if n is not None else "more than any number of"
    msg = (
        f"{type(model).__name__}: dt={model.dt:g} exceeds the explicit stability limit {limit:.4g} of one "
        f"substep {model.dt / limit if limit > 0 else float('inf'):.4g} times over, more than "
        f"max_substeps={model.max_substeps} substeps per step. Fix: increase substeps to {need} or reduce "
        f"dt (frames closer together), or use a coarser grid or a smaller coefficient (in a fit: a "
        f"smaller upper bound); pass max_substeps={n if n is not None else 'N'} to accept the cost."
    )
    if model.on_unstable == "raise":
        raise StabilityError(msg)
    warnings.warn(msg, StabilityWarning, stacklevel=4)


def check_growth(model, start: dict, frames: dict, params: dict) -> None:
    """Warn when a field with a maximum principle grew during a rollout (an under-resolved flow)."""
    for name in model.bounded_fields:
        u0, traj = start[name], frames[name]
        m0 = math.max(abs(u0), u0.shape.non_batch)
        mt = math.max(abs(traj), traj.shape.non_batch & traj.shape.only("time"))
        ratio = float(math.max(mt / math.maximum(m0, 1e-30), mt.shape))
        if not np.isfinite(ratio) or ratio > 1 + GROWTH_TOLERANCE:  # NaN / inf: it blew up
            warnings.warn(
                f"{type(model).__name__}: max|{name}| grew by a factor {ratio:.3g} during the rollout, which "
                f"the PDE cannot (a maximum principle): the grid does not resolve this flow. "
                f"{model._resolution_fix(start, params)}", ResolutionWarning, stacklevel=3)
