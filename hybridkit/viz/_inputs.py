"""Turn what a user passes (numpy, torch, PhiFlow; storage layout) into checked numpy panels.

Every plotting function goes through here, so shapes are validated once, at the public boundary,
with messages that say what was expected, what was given and how to fix it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from .._grid import GridSpec

_AXES = ("x", "y")
# hybridkit's PDEs are written in nondimensional form (lengths, times and fields in units of the
# problem's own scales): every axis and colour-bar label says so.
NONDIM = "nondim."


def with_units(quantity: str) -> str:
    """An axis label: ``"u"`` -> ``"u (nondim.)"``."""
    return f"{quantity} ({NONDIM})"


def to_numpy(values, *, what: str) -> np.ndarray:
    """Return ``values`` (numpy, torch, PhiFlow ``Field`` or phiml tensor) as a float numpy array.

    A PhiFlow field or phiml tensor may carry at most one batch dimension (e.g. the ``time`` of a
    rollout), which becomes the leading axis.
    """
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy().astype(float, copy=False)
    if _is_phi(values):
        from ..convert import to_tensor

        shape = (values.values if _is_field(values) else values).shape
        if shape.batch.rank > 1:
            raise ValueError(
                f"Expected {what} with at most one batch dimension (time), got {shape}. "
                f"Fix: select one sample first, e.g. values[{{'{shape.batch.names[-1]}': 0}}]."
            )
        return to_tensor(values).detach().cpu().numpy().astype(float, copy=False)
    return np.asarray(values, dtype=float)


def _is_phi(values) -> bool:
    from phiml.math import Tensor

    return _is_field(values) or isinstance(values, Tensor)


def _is_field(values) -> bool:
    from phi.field import Field

    return isinstance(values, Field)


@dataclass(frozen=True)
class Space:
    """Where the spatial axes of a plot lie: physical units from a grid, else cell indices."""

    shape: tuple[int, ...]  # spatial shape, (x,) or (x, y)
    centres: tuple[np.ndarray, ...]  # cell-centre coordinates per axis
    edges: tuple[tuple[float, float], ...]  # (low, high) extent per axis, cell faces included
    labels: tuple[str, ...]  # axis labels, e.g. ("x (nondim.)",) or ("x (cell index)",)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def extent(self) -> list[float]:
        """``imshow`` extent of a 2D field drawn with x to the right and y up."""
        return [*self.edges[0], *self.edges[1]]

    def cell_edges(self, axis: int) -> np.ndarray:
        """The ``n + 1`` cell faces along ``axis``."""
        lo, hi = self.edges[axis]
        return np.linspace(lo, hi, self.shape[axis] + 1)

    @classmethod
    def of(cls, shape: tuple[int, ...], grid: GridSpec | None) -> "Space":
        if grid is None:
            centres = tuple(np.arange(n, dtype=float) for n in shape)
            edges = tuple((-0.5, n - 0.5) for n in shape)
            labels = tuple(f"{a} (cell index)" for a in _AXES[: len(shape)])
        else:
            centres = tuple((np.arange(n) + 0.5) * d for n, d in zip(grid.resolution, grid.dx))
            edges = tuple((0.0, s) for s in grid.domain_size)
            labels = tuple(with_units(a) for a in grid.axes)
        return cls(tuple(shape), centres, edges, tuple(labels))


@dataclass(frozen=True)
class Times:
    """Frame times: ``t0 + k * dt`` when ``dt`` is known, else the frame index."""

    count: int
    dt: float | None = None
    t0: float = 0.0

    def __post_init__(self):
        if self.dt is not None and not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"Expected dt > 0 (time between frames) or None, got {self.dt!r}.")

    @property
    def values(self) -> np.ndarray:
        k = np.arange(self.count, dtype=float)
        return k if self.dt is None else self.t0 + k * self.dt

    @property
    def label(self) -> str:
        return "frame" if self.dt is None else with_units("t")

    def title(self, k: int) -> str:
        """One frame's caption, e.g. ``t = 0.4   (frame 4/20)``."""
        where = f"frame {k}/{self.count - 1}"
        return where if self.dt is None else f"t = {self.values[k]:.4g}   ({where})"


@dataclass(frozen=True)
class Panel:
    """One plotted quantity: ``data`` ``(time, *space)``, with what the panel is called."""

    name: str  # key in the user's dict, or "error"
    title: str
    data: np.ndarray
    is_error: bool = False
    signed: bool = True  # False for a magnitude: a sequential, not a diverging, colour map
    source: str = ""  # for an error panel: the field it is the error of (drawn in its style)


def spatial_ndim(shape: tuple[int, ...], lead: int, grid: GridSpec | None, *, what: str) -> tuple[int, bool]:
    """Number of spatial axes of an array of ``shape`` with ``lead`` leading (time) axes, and
    whether it has a trailing vector axis.

    With a grid the shape must match it. Without one, a trailing axis is a vector axis when its
    size equals the number of spatial axes before it (a ``GridSpec`` axis has at least 4 cells,
    so ``(time, 64, 1)`` and ``(time, 32, 32, 2)`` cannot be read otherwise).
    """
    space = shape[lead:]
    if grid is not None:
        res = tuple(grid.resolution)
        if space == res:
            return grid.ndim, False
        if space == res + (grid.ndim,):
            return grid.ndim, True
        lead_txt = "time, " * lead
        raise ValueError(
            f"Expected {what} of shape ({lead_txt}{', '.join(map(str, res))}) or "
            f"({lead_txt}{', '.join(map(str, res))}, {grid.ndim}) for the grid {res}, got {shape}. "
            "Fix: pass arrays in the storage layout of this grid, or the grid they live on."
        )
    vector = len(space) >= 2 and space[-1] == len(space) - 1 and space[-1] <= len(_AXES)
    ndim = len(space) - int(vector)
    if not 1 <= ndim <= len(_AXES):
        lead_txt = "time, " * lead
        raise ValueError(
            f"Expected {what} of shape ({lead_txt}x), ({lead_txt}x, y) or with a trailing vector "
            f"axis, got {shape} ({ndim} spatial axes). Fix: plot 1D or 2D fields; slice a 3D field "
            "or select one sample of a batch first."
        )
    return ndim, vector


def reduce_vector(values: np.ndarray, vector: bool, component, *, what: str) -> tuple[np.ndarray, str]:
    """Magnitude (``component=None``) or one component of a vector field; scalars pass through.

    Returns the values without the vector axis and a suffix for titles.
    """
    if not vector:
        return values, ""
    if component is None:
        return np.linalg.norm(values, axis=-1), " (magnitude)"
    n = values.shape[-1]
    index = _AXES.index(component) if component in _AXES else component
    if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise ValueError(
            f"Expected component None (magnitude), an index in [0, {n}) or one of {_AXES[:n]} for "
            f"{what}, got {component!r}."
        )
    return values[..., index], f" ({_AXES[index]} component)"


def prepare_panels(
    fields,
    *,
    grid: GridSpec | None,
    component=None,
    error_of: tuple[str, str] | None = None,
) -> tuple[list[Panel], int]:
    """Check a dict of trajectories and turn it into panels, the error panels last.

    Args:
        fields: ``name -> (time, *space)`` or ``(time, *space, vector)``; a single array is taken as
            ``{"field": array}``.
        grid: the grid the fields live on, or None (axes in cell indices).
        component: for vector fields, None (magnitude), an index or an axis name.
        error_of: ``(a, b)``: add a panel ``a - b`` (named ``"error"``) computed on the raw values
            (for a vector field shown as magnitude, the magnitude of the difference); or the name
            ``ref`` of a reference field: one panel ``name - ref`` for every other field.

    Returns:
        The panels and the number of spatial axes.
    """
    if not isinstance(fields, Mapping):
        fields = {"field": fields}
    if not fields:
        raise ValueError("Expected at least one field, got an empty dict. Fix: pass {'u': array}.")
    raw = {name: to_numpy(v, what=f"field {name!r}") for name, v in fields.items()}
    info = {}
    for name, a in raw.items():
        if a.ndim < 2:
            raise ValueError(
                f"Expected field {name!r} of shape (time, *space[, vector]), got {a.shape}. "
                "Fix: add the time axis, e.g. values[None] for a single frame."
            )
        info[name] = spatial_ndim(a.shape, 1, grid, what=f"field {name!r}")
    _check_same_shape(raw, info)
    panels = []
    for name, a in raw.items():
        values, suffix = reduce_vector(a, info[name][1], component, what=f"field {name!r}")
        panels.append(Panel(name, name + suffix, values))
    if error_of is not None:
        panels += _error_panels(raw, info, error_of, component)
    return panels, info[next(iter(raw))][0]


def _check_same_shape(raw: dict, info: dict) -> None:
    def space(name):
        a = raw[name]
        return a.shape[1 : a.ndim - int(info[name][1])]

    ref = next(iter(raw))
    for name, a in raw.items():
        if a.shape[0] != raw[ref].shape[0] or space(name) != space(ref):
            shapes = ", ".join(f"{n} {raw[n].shape}" for n in raw)
            n = min(x.shape[0] for x in raw.values())
            raise ValueError(
                "Expected every field with the same number of frames and the same spatial shape, "
                f"got {shapes}. Fix: slice them to a common length, e.g. values[:{n}], or plot "
                "fields of different grids separately."
            )


def _error_panels(raw: dict, info: dict, error_of, component) -> list[Panel]:
    names = list(raw)
    if isinstance(error_of, str) and error_of in raw and len(raw) > 1:
        pairs, single = [(name, error_of) for name in names if name != error_of], False
    elif (isinstance(error_of, (tuple, list)) and len(error_of) == 2
          and all(isinstance(n, str) and n in raw for n in error_of)):
        pairs, single = [tuple(error_of)], True
    else:
        raise ValueError(
            f"Expected error_of=(a, b) naming two of the fields {names}, or the name of a reference "
            f"field (then every other field minus it), got {error_of!r}. Fix: e.g. "
            f"error_of={tuple(names[:2])!r} or error_of={names[0]!r}, or None for no error panel."
        )
    panels = []
    for a, b in pairs:
        if info[a][1] != info[b][1]:
            raise ValueError(
                f"Expected {a!r} and {b!r} both scalar or both vector fields to subtract them, got "
                f"shapes {raw[a].shape} and {raw[b].shape}."
            )
        diff, suffix = reduce_vector(raw[a] - raw[b], info[a][1], component, what="the error")
        signed = not (info[a][1] and component is None)
        title = f"|{a} - {b}|" if not signed else f"{a} - {b}{suffix}"
        name = "error" if single else title
        if name in raw:
            raise ValueError(
                f"A field is already called {name!r}, the name of an error panel. Fix: rename the field."
            )
        panels.append(Panel(name, title, diff, is_error=True, signed=signed, source=a))
    return panels


def value_range(arrays, *, symmetric: bool = False) -> tuple[float, float]:
    """Finite min and max over all ``arrays`` (all frames), widened when they coincide.

    ``symmetric`` gives ``(-m, m)`` with ``m`` the largest absolute value, for signed errors.
    """
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return (-1.0, 1.0)
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if hi <= lo:  # a constant field: a flat colour scale would divide by zero
        pad = 0.5 * abs(lo) if lo != 0 else 0.5
        lo, hi = lo - pad, hi + pad
    return lo, hi
