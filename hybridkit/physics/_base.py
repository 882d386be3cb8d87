"""What every physical model shares: parameters, stepping, rollouts, stability checks."""
from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from phi.field import Field
from phiml import math
from phiml.math import batch, extrapolation

from .. import _backend  # noqa: F401  (sets the torch backend)
from .._backend import as_physics_tensor
from .._grid import GridSpec
from ..convert import to_field

__all__ = ["ParamSpec", "AbstractPDE", "StabilityError", "StabilityWarning"]


class StabilityError(ValueError):
    """The time step exceeds the explicit scheme's stability limit."""


class StabilityWarning(UserWarning):
    """The time step exceeds the explicit scheme's stability limit (``on_unstable='warn'``)."""


@dataclass(frozen=True)
class ParamSpec:
    """A coefficient of a PDE that can be learned.

    Attributes:
        name: key in the ``params`` dict, e.g. ``"viscosity"``.
        kind: ``"scalar"`` (one number), ``"field"`` (one number per grid cell) or ``"vector"``
            (one number per spatial axis).
        bounds: valid range ``(low, high)``; the physical trainer optimises inside it.
        doc: one line on what it is.
    """

    name: str
    kind: str
    bounds: tuple[float, float]
    doc: str = ""

    def shape(self, grid: GridSpec) -> tuple[int, ...]:
        """Shape of the parameter's values on ``grid``: ``()``, ``resolution`` or ``(ndim,)``."""
        return {"scalar": (), "field": tuple(grid.resolution), "vector": (grid.ndim,)}[self.kind]

    def check_values(self, values, where: str = "") -> None:
        """Refuse values no simulation can use: NaN / inf, and negative values of a coefficient
        whose range starts at 0 or above (a negative viscosity or diffusivity is anti-diffusion:
        the PDE is ill-posed and any explicit scheme blows up).

        ``bounds`` are the range the trainer searches; values outside it but of the right sign
        (e.g. an inviscid ``0`` for a test) stay allowed.

        Raises:
            ValueError: with what was given and the fix.
        """
        v = np.asarray(values, dtype=np.float64)
        where = f" {where}" if where else ""
        if not np.isfinite(v).all():
            raise ValueError(f"Expected finite values of {self.name!r}{where}, got NaN or inf. "
                             f"Fix: pass values in its range {self.bounds}.")
        if self.bounds[0] >= 0 and (v < 0).any():
            raise ValueError(
                f"Expected {self.name!r}{where} >= 0 ({self.doc or 'a diffusion coefficient'}; valid "
                f"range {self.bounds}), got a minimum of {v.min():.4g}. A negative value makes the PDE "
                f"ill-posed. Fix: pass values in {self.bounds}."
            )


class AbstractPDE(abc.ABC):
    """A PDE ``du/dt = rhs(u; params)`` on a :class:`GridSpec`, integrated with SSP-RK3.

    Subclasses implement the hooks ``_rhs`` (and optionally ``_project``, ``_max_stable_dt``,
    ``_random_values``); stepping, rollouts, parameter handling and stability checks live here.

    Every state is a dict ``field name -> Field`` (or a single ``Field`` for one-field models);
    fields may carry any batch dims (simulations along ``batch``), parameters broadcast against
    them (a parameter with a ``batch`` dim gives one value per simulation).
    """

    #: names of the evolving fields, in the order the channel layout uses
    field_names: tuple[str, ...] = ()
    #: which of them are vector fields (one component per spatial axis)
    vector_fields: tuple[str, ...] = ()
    #: the learnable coefficients
    param_specs: tuple[ParamSpec, ...] = ()

    def __init__(self, grid: GridSpec, *, dt: float, substeps: int, jit: bool, on_unstable: str,
                 params: Mapping[str, object]):
        if not isinstance(grid, GridSpec):
            raise TypeError(f"Expected a GridSpec, got {type(grid).__name__}.")
        if not 0 < dt < float("inf"):
            raise ValueError(f"Expected a finite dt > 0, got dt={dt}.")
        if int(substeps) < 1:
            raise ValueError(f"Expected substeps >= 1, got substeps={substeps}.")
        if on_unstable not in ("raise", "warn", "ignore"):
            raise ValueError(f"Expected on_unstable in 'raise', 'warn', 'ignore', got {on_unstable!r}.")
        self.grid = grid
        self.dt = float(dt)
        self.substeps = int(substeps)
        self.on_unstable = on_unstable
        self.jit = bool(jit)
        self.true_params = self.prepare_params(params)
        for spec in self.param_specs:  # once, on what the user passed: steps never pay for this
            native = self.true_params[spec.name].native(self.true_params[spec.name].shape.names)
            values = native.detach().cpu().numpy() if isinstance(native, torch.Tensor) else native
            spec.check_values(values, f"of {type(self).__name__}")
        self._jit_step = math.jit_compile(self._step_values) if jit else None

    # ---------------------------------------------------------------- hooks
    @abc.abstractmethod
    def _rhs(self, values: dict, params: dict) -> dict:
        """Time derivative of each field's values (phiml tensors)."""

    def _project(self, values: dict) -> dict:
        """Constraint applied after every stage (e.g. incompressibility). Default: none."""
        return values

    @abc.abstractmethod
    def _max_stable_dt(self, values: dict, params: dict) -> float:
        """Largest stable time step of one substep."""

    @abc.abstractmethod
    def _random_values(self, rng: np.random.Generator, n: int) -> dict:
        """Random smooth initial values ``name -> numpy (n, *space[, vector])``."""

    # ---------------------------------------------------------------- parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.param_specs)

    def spec(self, name: str) -> ParamSpec:
        for p in self.param_specs:
            if p.name == name:
                return p
        raise KeyError(f"Unknown parameter {name!r}; {type(self).__name__} has {list(self.param_names)}.")

    def prepare_params(self, params: Mapping[str, object] | None) -> dict:
        """Normalise parameter values to phiml tensors (missing ones: the model's own values).

        Accepted per parameter: a float, a numpy array / torch tensor of the spec's shape
        (optionally with a leading simulation axis), a phiml tensor, or a ``Field``.

        Raises:
            KeyError: for a name the model does not have.
            ValueError: for a value of the wrong shape.
        """
        params = dict(params or {})
        unknown = set(params) - set(self.param_names)
        if unknown:
            raise KeyError(
                f"Unknown parameter(s) {sorted(unknown)} for {type(self).__name__}; "
                f"expected some of {list(self.param_names)}."
            )
        out = {}
        for spec in self.param_specs:
            if spec.name in params:
                out[spec.name] = self._param_tensor(spec, params[spec.name])
            else:
                out[spec.name] = getattr(self, "true_params", {})[spec.name]
        return out

    def _param_tensor(self, spec: ParamSpec, value) -> math.Tensor:
        if isinstance(value, Field):
            value = value.values
        if isinstance(value, math.Tensor):
            return value
        # Floats follow phiml's precision (float64 inside `math.precision(64)`); a floating torch
        # tensor keeps its dtype so that float64 gradient checks stay float64.
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            t = value
        else:
            t = as_physics_tensor(np.asarray(value, dtype=np.float64)).to(_float_dtype())
        shape = spec.shape(self.grid)
        nb = t.ndim - len(shape)
        if nb not in (0, 1) or tuple(t.shape[nb:]) != shape:
            raise ValueError(
                f"Expected {spec.name!r} of shape {shape} (or (sims, {', '.join(map(str, shape))})), "
                f"got {tuple(t.shape)}."
            )
        dims = batch("batch") if nb else math.EMPTY_SHAPE
        if spec.kind == "field":
            dims = dims & self.grid.spatial_shape
        elif spec.kind == "vector":
            dims = dims & math.channel(vector=",".join(self.grid.axes))
        return math.tensor(t, dims)

    # ---------------------------------------------------------------- stepping
    def _step_values(self, values: dict, params: dict) -> dict:
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            values = self._ssp_rk3(values, params, h)
        return values

    def _ssp_rk3(self, u: dict, params: dict, h: float) -> dict:
        """Shu-Osher SSP-RK3: third order in time, stable for central advection up to CFL ~1.7."""
        def euler(v):
            r = self._rhs(v, params)
            return self._project({k: v[k] + h * r[k] for k in v})
        u1 = euler(u)
        u2 = {k: 0.75 * u[k] + 0.25 * w for k, w in euler(u1).items()}
        return {k: u[k] / 3 + 2 / 3 * w for k, w in euler(u2).items()}

    def step_values(self, values: dict, params: dict | None = None) -> dict:
        """One step of ``dt`` on raw phiml tensors (the differentiable core; jitted if ``jit``)."""
        params = self.prepare_params(params)
        if self._jit_step is not None:
            return self._jit_step(values, params)
        return self._step_values(values, params)

    def step(self, state, params: Mapping[str, object] | None = None):
        """Advance ``state`` by ``dt``.

        Args:
            state: dict ``name -> Field`` with all of :attr:`field_names` (or one ``Field`` for a
                one-field model); any batch dims.
            params: parameter values (see :meth:`prepare_params`); missing ones: the model's own.

        Returns:
            The new state, of the same type as ``state``.
        """
        single, fields = self._as_dict(state)
        values = {k: fields[k].values for k in self.field_names}
        new = self.step_values(values, params)
        out = {k: fields[k].with_values(new[k]) for k in self.field_names}
        return out[self.field_names[0]] if single else out

    def rollout(self, state, n_steps: int, params: Mapping[str, object] | None = None, *,
                include_init: bool = True, check: bool = True):
        """Repeated :meth:`step`; frames stacked along a new batch dim ``time``.

        Args:
            state: as in :meth:`step`.
            n_steps: number of steps (>= 0).
            params: as in :meth:`step`.
            include_init: whether frame 0 is the initial state (``n_steps + 1`` frames).
            check: check the time step against the stability limit first (``on_unstable``).
        """
        if int(n_steps) < 0:
            raise ValueError(f"Expected n_steps >= 0, got {n_steps}.")
        single, fields = self._as_dict(state)
        p = self.prepare_params(params)
        values = {k: fields[k].values for k in self.field_names}
        if check:
            self.check_stability(values, p)
        frames = [values] if include_init else []
        for _ in range(int(n_steps)):
            values = self._jit_step(values, p) if self._jit_step is not None else self._step_values(values, p)
            frames.append(values)
        out = {k: fields[k].with_values(math.stack([f[k] for f in frames], batch("time")))
               for k in self.field_names}
        return out[self.field_names[0]] if single else out

    # ---------------------------------------------------------------- stability
    def max_stable_dt(self, state, params: Mapping[str, object] | None = None) -> float:
        """Largest ``dt`` (for the whole step, all substeps) the explicit scheme is stable with."""
        _, fields = self._as_dict(state) if not isinstance(state, dict) or all(
            isinstance(v, Field) for v in state.values()) else (False, state)
        values = {k: (v.values if isinstance(v, Field) else v) for k, v in fields.items()}
        return self.substeps * self._max_stable_dt(values, self.prepare_params(params))

    def check_stability(self, values: dict, params: dict) -> None:
        """Raise / warn (per ``on_unstable``) if ``dt`` exceeds the stability limit."""
        if self.on_unstable == "ignore":
            return
        limit = self.substeps * self._max_stable_dt(values, params)
        if self.dt <= limit:
            return
        msg = (
            f"{type(self).__name__}: dt={self.dt:g} exceeds the explicit stability limit "
            f"{limit:.4g} (substeps={self.substeps}). Fix: increase substeps to at least "
            f"{int(np.ceil(self.dt / limit * self.substeps))} or reduce dt."
        )
        if self.on_unstable == "raise":
            raise StabilityError(msg)
        warnings.warn(msg, StabilityWarning, stacklevel=3)

    # ---------------------------------------------------------------- initial conditions
    def random_state(self, batch_size: int, seed: int | np.random.Generator | None = None,
                     *, batch_name: str = "batch") -> dict:
        """``batch_size`` random smooth initial states (seeded: same seed, same states).

        Returns:
            dict ``name -> Field`` with a batch dim ``batch_name``.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        vals = self._random_values(rng, int(batch_size))
        return {k: to_field(vals[k].astype(np.float32), self.grid, vector=k in self.vector_fields,
                            batch_names=(batch_name,)) for k in self.field_names}

    # ---------------------------------------------------------------- helpers
    def _as_dict(self, state):
        if isinstance(state, Field):
            if len(self.field_names) != 1:
                raise TypeError(
                    f"{type(self).__name__} has fields {list(self.field_names)}; pass a dict of Fields."
                )
            return True, {self.field_names[0]: state}
        if not isinstance(state, Mapping):
            raise TypeError(f"Expected a dict of Fields (or one Field), got {type(state).__name__}.")
        missing = [k for k in self.field_names if k not in state]
        if missing:
            raise KeyError(f"State lacks field(s) {missing}; {type(self).__name__} needs {list(self.field_names)}.")
        return False, state

    def config(self) -> dict:
        """Constructor arguments as plain data (written into dataset files)."""
        return {"grid": self.grid.to_dict(), "dt": self.dt, "substeps": self.substeps}

    @property
    def coefficient_boundary(self):
        """Extrapolation for coefficient fields: periodic on periodic grids, else zero-gradient."""
        return (extrapolation.PERIODIC if self.grid.boundary == "periodic"
                else extrapolation.ZERO_GRADIENT)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resolution={self.grid.resolution}, dt={self.dt}, substeps={self.substeps})"


def _float_dtype() -> torch.dtype:
    return torch.float64 if math.get_precision() == 64 else torch.float32


def coefficient_kind(value) -> str:
    """``"scalar"`` for a number (0-d array / tensor), ``"field"`` for anything with axes or a Field.

    Used by constructors whose coefficient may be either (Burgers' viscosity, a diffusivity).
    """
    if isinstance(value, Field):
        return "field"
    if isinstance(value, math.Tensor):
        return "field" if value.shape.spatial else "scalar"
    ndim = value.ndim if isinstance(value, torch.Tensor) else np.ndim(value)
    return "scalar" if ndim == 0 else "field"


def smooth_random(rng: np.random.Generator, n: int, grid: GridSpec, *, modes: int = 4,
                  amplitude: float = 1.0) -> np.ndarray:
    """Random periodic sums of the lowest Fourier modes, scaled so ``max |u| = amplitude``.

    Returns:
        ``(n, *resolution)`` float64.
    """
    coords = grid.coordinates()
    out = np.zeros((n,) + tuple(grid.resolution))
    for i in range(n):
        for _ in range(modes):
            k = rng.integers(1, modes + 1, size=grid.ndim) * rng.choice([-1, 1], size=grid.ndim)
            phase = sum(2 * np.pi * k[a] * coords[a] / grid.domain_size[a] for a in range(grid.ndim))
            out[i] += rng.normal() * np.sin(phase + rng.uniform(0, 2 * np.pi))
        out[i] *= amplitude / max(np.abs(out[i]).max(), 1e-12)
    return out
