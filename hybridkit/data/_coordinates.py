"""The grid and the frame spacing of imported data, read from its coordinates and checked.

hybridkit's grid is cell-centred on ``[0, L)``. Each sample of imported data becomes one cell
centre (values are never interpolated): from coordinates ``c_0 .. c_{n-1}`` the step is
``dx = (c_{n-1} - c_0) / (n - 1)``, the length ``L = n * dx`` and the lower edge ``c_0 - dx / 2``
(kept so that the original coordinates can be given back). The spacing is uniform if every
``c_i`` lies within ``spacing_tol`` of a step (default ``1e-3``) plus the rounding of the stored
dtype (``4 eps max|c|``) of ``c_0 + i * dx``. Frame times are checked the same way.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._checks import check_real
from .._grid import GridSpec

__all__ = ["DEFAULT_SPACING_TOL", "AXES", "uniform_step", "cell_grid", "frame_spacing"]

#: allowed deviation of a coordinate from the uniform grid, as a fraction of one step
DEFAULT_SPACING_TOL = 1e-3
AXES = ("x", "y", "z")


def uniform_step(values, tol: float, what: str) -> tuple[float, float]:
    """``(step, first)`` of uniformly spaced, increasing ``values`` (checked, see the module)."""
    raw = np.asarray(values)
    if raw.dtype.kind in "mM":
        raise ValueError(f"Expected numeric {what}, got {raw.dtype} values. Fix: convert them to numbers, "
                         "e.g. (t - t[0]) / np.timedelta64(1, 's').")
    if raw.ndim != 1 or raw.dtype.kind not in "fiu":
        raise ValueError(f"Expected {what} as a 1D array of numbers, got shape {raw.shape}, dtype {raw.dtype}.")
    v = raw.astype(np.float64)
    if len(v) < 2:
        raise ValueError(f"Expected at least 2 values in {what} to define a spacing, got {len(v)}. "
                         "Fix: pass the spacing directly (dt= or domain_size=).")
    if not np.isfinite(v).all():
        raise ValueError(f"Expected finite {what}, got NaN or inf.")
    step = (v[-1] - v[0]) / (len(v) - 1)
    if not step > 0 or (np.diff(v) <= 0).any():
        raise ValueError(f"Expected increasing {what}, got {_preview(v)}. Fix: sort the axis (and the data "
                         "with it), e.g. u[..., ::-1] with x[::-1].")
    dev = np.abs(v - (v[0] + step * np.arange(len(v))))
    eps = np.finfo(raw.dtype).eps if raw.dtype.kind == "f" else np.finfo(np.float64).eps
    allowed = tol * step + 4 * eps * np.abs(v).max()
    if dev.max() > allowed:
        i = int(dev.argmax())
        raise ValueError(
            f"Expected uniformly spaced {what} (each within {tol:g} of a step {step:.6g} of the uniform grid), "
            f"got value {i} = {v[i]:.8g}, {dev[i] / step:.3g} steps off ({_preview(v)}). hybridkit's grids "
            "are uniform. Fix: interpolate the data onto a uniform grid first (np.interp, "
            "xarray's .interp), or raise spacing_tol if the deviation is rounding."
        )
    return float(step), float(v[0])


def cell_grid(space: tuple[int, ...], coords: list, domain_size, periodic: bool, tol: float,
              names: Sequence[str]) -> tuple[GridSpec, list[float]]:
    """The cell-centred grid of samples at ``coords`` and the lower edge per axis.

    An axis whose coordinates are ``None`` takes its length from ``domain_size`` (cells at
    ``(i + 0.5) * L / n``, lower edge 0); with coordinates, ``domain_size`` must agree with
    ``n * dx`` and is then used exactly (float32 coordinates give ``L`` only to rounding).
    """
    ndim = len(space)
    sizes = [None] * ndim
    if domain_size is not None:
        given = [float(s) for s in np.atleast_1d(np.asarray(domain_size, dtype=np.float64))]
        if len(given) == 1 and ndim > 1:
            given = given * ndim
        if len(given) != ndim or not all(np.isfinite(s) and s > 0 for s in given):
            raise ValueError(f"Expected domain_size with one positive length per spatial axis ({ndim}), got "
                             f"{domain_size!r}.")
        sizes = given
    lengths, origin = [], []
    for n, c, size, name in zip(space, coords, sizes, names):
        if c is None:
            if size is None:
                raise ValueError(f"Expected coordinates for axis {name!r} or domain_size=. Fix: pass one.")
            lengths.append(size)
            origin.append(0.0)
            continue
        c = np.asarray(c)
        if c.shape != (n,):
            raise ValueError(f"Expected {n} coordinates along {name!r} (the data's size along that axis), got "
                             f"shape {c.shape}. Fix: pass the coordinates of this axis, in axis order.")
        dx, first = uniform_step(c, tol, f"coordinates along {name!r}")
        length = n * dx
        if size is not None:
            if abs(size - length) > tol * dx + 4 * np.finfo(c.dtype if c.dtype.kind == "f" else np.float64).eps * size:
                raise ValueError(
                    f"domain_size {size:g} along {name!r} disagrees with the coordinates: {n} cells of {dx:.6g} "
                    f"span {length:.8g}. Fix: drop domain_size (the coordinates define the grid), or check "
                    "whether the coordinates include both ends of the domain.")
            length = size
        lengths.append(length)
        origin.append(first - length / n / 2)
    try:
        grid = GridSpec(tuple(space), tuple(lengths), "periodic" if periodic else "zero")
    except ValueError as e:
        raise ValueError(f"The data give the grid {tuple(space)} cells of {tuple(lengths)}: {e}") from None
    return grid, origin


def frame_spacing(frames: int, dt, t, tol: float, what: str, allow_both: bool = False) -> tuple[float, float]:
    """``(dt, t0)`` from ``dt`` or the frame times ``t`` (checked uniform); with both
    (``allow_both``) they must agree and ``dt`` is used exactly."""
    if dt is None and t is None:
        raise ValueError("Expected the time between frames: dt= or the frame times. Fix: pass dt=.")
    if dt is not None and t is not None and not allow_both:
        raise ValueError("Expected dt= or t=, not both. Fix: pass one.")
    if dt is not None:
        dt = check_real(dt, "dt", minimum=0, strict_minimum=True)
    if t is None or (frames == 1 and dt is not None):
        return dt, 0.0 if t is None else float(np.asarray(t, dtype=np.float64).ravel()[0])
    t = np.asarray(t)
    if t.shape != (frames,):
        raise ValueError(f"Expected one time per frame in {what} ({frames}), got shape {t.shape}.")
    step, t0 = uniform_step(t, tol, f"frame times ({what})")
    if dt is not None:
        if abs(dt - step) > tol * step:
            raise ValueError(f"dt={dt:g} disagrees with the frame times ({what}: step {step:.6g}). Fix: drop dt.")
        step = dt
    return step, t0


def _preview(v: np.ndarray) -> str:
    shown = ", ".join(f"{x:.6g}" for x in v[:4])
    return f"[{shown}{', ...' if len(v) > 4 else ''}]"

