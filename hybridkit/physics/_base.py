"""What every physical model shares: parameters, stepping, rollouts, stability checks."""
from __future__ import annotations

import abc
import math as pymath
import warnings
from typing import Mapping

import numpy as np
import torch
from phi.field import Field
from phiml import math
from phiml.math import batch, extrapolation

from .. import _backend  # noqa: F401  (sets the torch backend)
from .._backend import as_physics_tensor
from .._checks import check_count
from .._grid import GridSpec
from ..convert import to_field
from ._compiled import detached, frozen, stepper
from ._params import ParamSpec, _float_dtype
from ._stability import ResolutionWarning, StabilityError, StabilityWarning, check_growth, over_cap

__all__ = ["AbstractPDE", "AUTO", "DEFAULT_MAX_SUBSTEPS"]

#: ``substeps="auto"``: the model picks the number of RK3 steps per ``dt`` from the explicit limits
AUTO = "auto"
#: default cap of automatic substeps: more per frame means frames far apart for this grid and these
#: coefficients (see :meth:`AbstractPDE.substeps_for`)
DEFAULT_MAX_SUBSTEPS = 256


class AbstractPDE(abc.ABC):
    """A PDE ``du/dt = rhs(u; params)`` on a :class:`GridSpec`, integrated with SSP-RK3.

    Subclasses implement the hooks ``_rhs``, ``_max_stable_dt`` and ``_random_values`` (and
    optionally ``_project``, ``_resolution_issue``); stepping, time-step control, rollouts,
    parameter handling and stability checks live here.

    Every state is a dict ``field name -> Field`` (or a single ``Field`` for one-field models);
    fields may carry any batch dims (simulations along ``batch``), parameters broadcast against
    them (a parameter with a ``batch`` dim gives one value per simulation).

    **Time steps.** One step advances ``dt`` (the spacing of the frames) in ``n`` RK3 substeps of
    ``dt / n``. With ``substeps="auto"`` (the default) ``n = ceil(dt / limit)`` from the explicit
    stability limit ``limit`` (advection and diffusion, :meth:`substeps_for`) of the state and
    coefficients the step is given, so any ``dt`` works; where one substep is stable ``n = 1``, the
    same arithmetic as ``substeps=1``. :meth:`rollout` re-chooses ``n`` every step as the state
    evolves. An integer ``substeps`` is used as given (checked per ``on_unstable``).

    **Compiled steps** (``jit=True``) are shared by all models of one :attr:`trace_key`, one per
    number of substeps: creating many equal models traces once (torch never frees a trace).
    ``config()`` must therefore name everything the step depends on (it must anyway: datasets
    record it to say how they were made).
    """

    #: names of the evolving fields, in the order the channel layout uses
    field_names: tuple[str, ...] = ()
    #: which of them are vector fields (one component per spatial axis)
    vector_fields: tuple[str, ...] = ()
    #: the learnable coefficients
    param_specs: tuple[ParamSpec, ...] = ()
    #: fields with a maximum principle (max |f| cannot grow): a rollout in which it grows is
    #: under-resolved and warns (:class:`ResolutionWarning`)
    bounded_fields: tuple[str, ...] = ()
    #: whether the explicit limit depends on the state (advection by the evolving field); if not,
    #: a rollout chooses the number of substeps once
    limit_depends_on_state: bool = True

    def __init__(self, grid: GridSpec, *, dt: float, substeps: int | str, jit: bool, on_unstable: str,
                 params: Mapping[str, object], max_substeps: int = DEFAULT_MAX_SUBSTEPS):
        if not isinstance(grid, GridSpec):
            raise TypeError(f"Expected a GridSpec, got {type(grid).__name__}.")
        if not 0 < dt < float("inf"):
            raise ValueError(f"Expected a finite dt > 0, got dt={dt}.")
        if substeps != AUTO:
            substeps = check_count(substeps, "substeps", minimum=1,
                                   fix=f"pass an integer >= 1, or substeps={AUTO!r} (chosen from the explicit limits).")
        if on_unstable not in ("raise", "warn", "ignore"):
            raise ValueError(f"Expected on_unstable in 'raise', 'warn', 'ignore', got {on_unstable!r}.")
        self.grid = grid
        self.dt = float(dt)
        self.substeps = substeps
        self.max_substeps = check_count(max_substeps, "max_substeps", minimum=1,
                                        fix=f"e.g. max_substeps={DEFAULT_MAX_SUBSTEPS}.")
        self.on_unstable = on_unstable
        self.jit = bool(jit)
        self.true_params = self.prepare_params(params)
        for spec in self.param_specs:  # once, on what the user passed: steps never pay for this
            native = self.true_params[spec.name].native(self.true_params[spec.name].shape.names)
            values = native.detach().cpu().numpy() if isinstance(native, torch.Tensor) else native
            spec.check_values(values, f"of {type(self).__name__}")

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

    def _resolution_issue(self, values: dict, params: dict) -> str | None:
        """Why the grid cannot resolve this state with these coefficients (with the fix), or None."""
        return None

    def _resolution_fix(self, values: dict, params: dict) -> str:
        """The fix named when a bounded field grew during a rollout."""
        return "Fix: a finer grid, or larger diffusion coefficients."

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

    # ---------------------------------------------------------------- time-step control
    def substeps_for(self, state, params: Mapping[str, object] | None = None) -> int:
        """The number of RK3 substeps one step of ``dt`` takes from ``state`` with ``params``.

        An integer ``substeps`` is returned as set. With ``"auto"``: ``n = ceil(dt / limit)``,
        ``limit`` the explicit stability limit of one substep (advection ``dt sum_a max|u_a| /
        dx_a <= 1``, diffusion ``dt 4 max(nu) sum_a 1/dx_a^2 <= 2``) at these values and
        coefficients; ``n = 1`` exactly when one substep is stable. One host sync (the maxima).

        A caller that compiles several steps into one trace computes ``n`` here, outside the
        trace, for the largest coefficients the trace will see, and passes it to
        :meth:`step_values` (``substeps=n``).

        Args:
            state: dict ``name -> Field`` or ``name -> phiml tensor`` (or one ``Field``); concrete values.
            params: as in :meth:`step` (missing ones: the model's own).

        Raises:
            StabilityError: with ``"auto"``, when ``n`` exceeds ``max_substeps`` (with
                ``on_unstable='raise'``; ``'warn'`` warns, ``'ignore'`` returns ``n`` as it is).
        """
        values = self._values_of(state)
        p = self.prepare_params(params)
        if self.substeps != AUTO:
            return self.substeps
        return self._auto_substeps(values, p)

    def _auto_substeps(self, values: dict, params: dict) -> int:
        values, params = detached(values), detached(params)  # a count has no gradient
        limit = float(self._max_stable_dt(values, params))
        ratio = self.dt / limit if limit > 0 else float("inf")
        if ratio <= 1:  # also covers an infinite limit (nothing moves, nothing diffuses)
            return 1
        n = pymath.ceil(ratio) if pymath.isfinite(ratio) else None
        if n is None or n > self.max_substeps:
            over_cap(self, limit, n)
        return n if n is not None else self.max_substeps

    @property
    def trace_key(self) -> tuple:
        """Hashable: models with equal keys compute the same step from the same values and parameters.

        The class and :meth:`config` without the substep settings (the number of substeps is a
        separate argument of a compiled step). Compiled functions are shared under it
        (:func:`~hybridkit.physics.shared_jit`).
        """
        cfg = {k: v for k, v in self.config().items() if k not in ("substeps", "max_substeps")}
        return (type(self), frozen(cfg))

    # ---------------------------------------------------------------- stepping
    def _advance(self, values: dict, params: dict, n: int, count: int | None = None) -> dict:
        """``count`` (default ``n``) RK3 substeps of ``dt / n``."""
        h = self.dt / n
        for _ in range(n if count is None else count):
            values = self._ssp_rk3(values, params, h)
        return values

    def substep_values(self, values: dict, params: dict, h) -> dict:
        """One SSP-RK3 substep of length ``h`` on raw phiml tensors (``params`` prepared, see
        :meth:`prepare_params`). ``h`` may be a phiml tensor: a compiled caller passes it as an
        input, so that one trace serves any number of substeps (the fit's rollouts do)."""
        return self._ssp_rk3(values, params, h)

    def _ssp_rk3(self, u: dict, params: dict, h: float) -> dict:
        """Shu-Osher SSP-RK3: third order in time, stable for central advection up to CFL ~1.7."""
        def euler(v):
            r = self._rhs(v, params)
            return self._project({k: v[k] + h * r[k] for k in v})
        u1 = euler(u)
        u2 = {k: 0.75 * u[k] + 0.25 * w for k, w in euler(u1).items()}
        return {k: u[k] / 3 + 2 / 3 * w for k, w in euler(u2).items()}

    def _stepper(self, n: int, values: dict):
        """``(values, params) -> values`` advancing ``dt`` in ``n`` substeps (compiled and shared if ``jit``)."""
        return stepper(self, n, values)

    def _n_for(self, values: dict, params: dict, substeps) -> int:
        if substeps is not None:
            return check_count(substeps, "substeps", minimum=1, fix="pass model.substeps_for(values, params).")
        if self.substeps != AUTO:
            return self.substeps
        n = self._auto_substeps(values, params)
        if n > 1 and not math.all_available(*values.values()):
            warnings.warn(
                f"{type(self).__name__}.step_values with substeps='auto' inside a compiled trace: n={n}, chosen "
                f"from the values the trace is made with, is fixed in the trace. Fix: compute "
                f"n = model.substeps_for(values, params) outside the trace (for the largest coefficients it "
                f"will see) and pass step_values(..., substeps=n).", StabilityWarning, stacklevel=3)
        return n

    def step_values(self, values: dict, params: dict | None = None, *, substeps: int | None = None) -> dict:
        """One step of ``dt`` on raw phiml tensors (the differentiable core; compiled if ``jit``).

        Args:
            values: dict ``name -> phiml tensor`` with all of :attr:`field_names`.
            params: parameter values (see :meth:`prepare_params`); missing ones: the model's own.
            substeps: the number of RK3 substeps; None: the model's ``substeps`` (with ``"auto"``
                chosen from ``values`` and ``params``, one host sync). Pass it when this call is
                part of a larger compiled trace (a rollout misfit): the compiled step is cached
                per ``n``, so a fixed ``n`` never retraces.
        """
        params = self.prepare_params(params)
        n = self._n_for(values, params, substeps)
        return self._stepper(n, values)(values, params)

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

        With ``substeps="auto"`` the number of substeps is chosen again before every step from
        the current state (a flow that speeds up gets more; once where the limit does not depend
        on the state, :attr:`limit_depends_on_state`).

        Args:
            state: as in :meth:`step`.
            n_steps: number of steps (>= 0).
            params: as in :meth:`step`.
            include_init: whether frame 0 is the initial state (``n_steps + 1`` frames).
            check: check the time step against the stability limit first (``on_unstable``), and
                the resolution: warn (:class:`ResolutionWarning`) when the grid cannot resolve the
                initial state, or when a field with a maximum principle grows during the rollout.
        """
        n_steps = check_count(n_steps, "n_steps", minimum=0)
        single, fields = self._as_dict(state)
        p = self.prepare_params(params)
        values = {k: fields[k].values for k in self.field_names}
        issue = None
        if check:
            self.check_stability(values, p)
            issue = self._resolution_issue(values, p)
            if issue:
                warnings.warn(issue, ResolutionWarning, stacklevel=2)
        frames = [values] if include_init else []
        start, n = values, None
        for _ in range(n_steps):
            if n is None or self.limit_depends_on_state:
                n = self._n_for(values, p, None)
            values = self._stepper(n, values)(values, p)
            frames.append(values)
        stacked = {k: math.stack([f[k] for f in frames], batch("time")) for k in self.field_names}
        if check and n_steps and not issue:
            check_growth(self, start, stacked, p)
        out = {k: fields[k].with_values(stacked[k]) for k in self.field_names}
        return out[self.field_names[0]] if single else out

    # ---------------------------------------------------------------- stability
    def max_stable_dt(self, state, params: Mapping[str, object] | None = None) -> float:
        """Largest ``dt`` the explicit scheme is stable with at the model's substeps.

        ``substeps * limit`` for an integer ``substeps``; with ``"auto"`` the limit of one
        substep (``limit``, which an automatic step divides any larger ``dt`` by, up to
        ``max_substeps`` substeps).
        """
        values = self._values_of(state)
        limit = self._max_stable_dt(values, self.prepare_params(params))
        return (1 if self.substeps == AUTO else self.substeps) * limit

    def check_stability(self, values: dict, params: dict) -> None:
        """Raise / warn (per ``on_unstable``) if ``dt`` exceeds the stability limit.

        With ``substeps="auto"``: if more than ``max_substeps`` substeps would be needed.
        """
        if self.on_unstable == "ignore":
            return
        if self.substeps == AUTO:
            self._auto_substeps(values, params)
            return
        limit = self.substeps * self._max_stable_dt(values, params)
        if self.dt <= limit:
            return
        msg = (
            f"{type(self).__name__}: dt={self.dt:g} exceeds the explicit stability limit "
            f"{limit:.4g} (substeps={self.substeps}). Fix: increase substeps to at least "
            f"{int(np.ceil(self.dt / limit * self.substeps))} or reduce dt, or pass substeps='auto'."
        )
        if self.on_unstable == "raise":
            raise StabilityError(msg)
        warnings.warn(msg, StabilityWarning, stacklevel=3)

    # ---------------------------------------------------------------- resolution
    def resolution_issue(self, state, params: Mapping[str, object] | None = None) -> str | None:
        """Why this grid cannot resolve ``state`` with ``params``, with the fix; None if it can.

        E.g. Burgers at a cell Reynolds number ``max|u| dx / nu`` far above 2, where the central
        scheme lets ``max |u|`` grow (Burgers cannot). Concrete values; one host sync.

        Args:
            state: as in :meth:`substeps_for`.
            params: as in :meth:`step`.
        """
        return self._resolution_issue(self._values_of(state), self.prepare_params(params))

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

    def _values_of(self, state) -> dict:
        """``name -> phiml tensor`` from a state of Fields or of phiml tensors."""
        if isinstance(state, math.Tensor) and len(self.field_names) == 1:
            return {self.field_names[0]: state}
        _, fields = self._as_dict(state)
        return {k: (fields[k].values if isinstance(fields[k], Field) else fields[k]) for k in self.field_names}

    def config(self) -> dict:
        """Constructor arguments as plain data (written into dataset files)."""
        return {"grid": self.grid.to_dict(), "dt": self.dt, "substeps": self.substeps,
                "max_substeps": self.max_substeps}

    @property
    def coefficient_boundary(self):
        """Extrapolation for coefficient fields: periodic on periodic grids, else zero-gradient."""
        return (extrapolation.PERIODIC if self.grid.boundary == "periodic"
                else extrapolation.ZERO_GRADIENT)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resolution={self.grid.resolution}, dt={self.dt}, substeps={self.substeps!r})"
