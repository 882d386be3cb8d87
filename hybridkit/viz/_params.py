"""A learned parameter field next to the true one, with the observed region marked and, in 1D,
an uncertainty band."""
from __future__ import annotations

import numpy as np
from matplotlib.patches import Patch

from .._grid import GridSpec
from ._inputs import Panel, Space, spatial_ndim, to_numpy, with_units
from ._panels import draw_images, new_figure, new_image_figure


def relative_l2(learned: np.ndarray, true: np.ndarray) -> float:
    """``||learned - true||_2 / ||true||_2`` (the absolute L2 error when ``true`` is zero)."""
    err = float(np.linalg.norm(learned - true))
    ref = float(np.linalg.norm(true))
    return err / ref if ref > 0 else err


#: half-width of the drawn band in standard deviations: a 95 % interval of a Gaussian
BAND_Z = 1.959963985
#: the y-axis shows the lines' range plus this fraction of it on each side: a band far wider than
#: the field (where the data say nothing) runs off the axis instead of squashing the lines
BAND_MARGIN = 0.5


def plot_param_field(learned, true, *, grid: GridSpec | None = None, mask=None, band=None,
                     name: str = "parameter", title: str | None = None, cmap: str = "viridis",
                     figsize=None):
    """Learned vs true parameter field; the title gives the relative L2 error.

    1D: both as lines on one axis, the observed region shaded, and with ``band`` the 95 %
    band ``learned ± 1.96 band`` shaded around the learned line. 2D: true, learned (one colour
    scale) and learned - true as images, the observed region outlined.

    Args:
        learned, true: ``(*space)`` fields of the same shape (numpy, torch, PhiFlow).
        grid: for axes in physical units (else cell indices).
        mask: ``(*space)``, nonzero where data were observed; the title then also gives the
            relative L2 error on the observed and on the unobserved part.
        band: ``(*space)`` standard deviation of ``learned`` per cell (1D only), e.g. a fit's
            ``FitResult.field_std[name]``; the title then also gives the fraction of cells whose
            band holds the true value. Where the band is much wider than the field, it runs off
            the y-axis, which shows at most the lines' range and half of it on either side.
        name: the parameter's name, for labels (e.g. ``"diffusivity"``).
        title: what this estimate is (e.g. ``"20 % noise, no regulariser"``), the first line of
            the figure's title.

    Returns:
        A matplotlib ``Figure``; its suptitle reads, one part per line,
        ``"[<title>] <name>: relative L2 error <e> [(observed <eo>, unobserved <eu>)]
        [95 % band holds the truth in <p> % of cells]"``.

    Raises:
        ValueError: for shapes that differ, are not 1D / 2D, or do not match ``grid`` / ``mask``;
            for a ``band`` on a 2D field, of another shape, or with negative or non-finite values.
    """
    lv = to_numpy(learned, what="learned")
    tv = to_numpy(true, what="true")
    if lv.shape != tv.shape:
        raise ValueError(
            f"Expected learned and true parameter fields of the same shape, got learned {lv.shape} "
            f"and true {tv.shape}. Fix: pass both as (*space), e.g. squeeze a batch axis."
        )
    ndim, vector = spatial_ndim(tv.shape, 0, grid, what="the parameter field")
    if vector or lv.ndim != ndim:
        raise ValueError(
            f"Expected a scalar parameter field (*space), got shape {tv.shape}. "
            "Fix: plot one component at a time."
        )
    space = Space.of(tv.shape, grid)
    observed = None if mask is None else _check_mask(mask, tv.shape)
    std = None if band is None else _check_band(band, tv.shape, ndim)
    lines = [title] if title else []
    lines.append(f"{name}: relative L2 error {relative_l2(lv, tv):.3g}")
    if observed is not None and observed.any() and not observed.all():
        lines.append(f"(observed {relative_l2(lv[observed], tv[observed]):.3g}, "
                     f"unobserved {relative_l2(lv[~observed], tv[~observed]):.3g})")
    if std is not None:
        held = np.mean(np.abs(lv - tv) <= BAND_Z * std)
        lines.append(f"95 % band holds the truth in {held:.0%} of cells")
    if ndim == 1:
        fig = _lines(lv, tv, space, observed, std, name, figsize)
    else:
        fig = _images(lv, tv, space, observed, name, cmap, figsize)
    fig.suptitle("\n".join(lines), fontsize="medium")
    return fig


def _check_mask(mask, shape) -> np.ndarray:
    m = to_numpy(mask, what="mask")
    if m.shape != shape:
        raise ValueError(
            f"Expected a spatial mask of shape {shape} (nonzero = observed), got {m.shape}. "
            "Fix: pass the spatial part of the observation mask, e.g. mask[0] for a (time, *space) one."
        )
    return m != 0


def _check_band(band, shape, ndim) -> np.ndarray:
    if ndim != 1:
        raise ValueError(f"Expected band= for a 1D field only, got a field of shape {shape}. "
                         "Fix: plot the standard deviation as a field of its own, e.g. "
                         "plot_param_field(std, np.zeros_like(std)).")
    b = to_numpy(band, what="band")
    if b.shape != shape:
        raise ValueError(f"Expected a band of shape {shape} (one standard deviation per cell), got {b.shape}. "
                         "Fix: pass FitResult.field_std[name].")
    if not (np.isfinite(b).all() and (b >= 0).all()):
        raise ValueError(f"Expected a band of finite standard deviations >= 0, got values from {np.nanmin(b)!r} "
                         f"to {np.nanmax(b)!r}. Fix: pass FitResult.field_std[name] of a fit that computed it.")
    return b


def _lines(learned, true, space, observed, std, name, figsize):
    fig, (ax,) = new_figure(1, width=6.5, height=3.8, figsize=figsize)
    x = space.centres[0]
    if observed is not None:
        faces = space.cell_edges(0)
        for k, (i, j) in enumerate(_runs(observed)):
            ax.axvspan(faces[i], faces[j], color="C2", alpha=0.15, lw=0,
                       label="observed region" if k == 0 else None)
    if std is not None:
        ax.fill_between(x, learned - BAND_Z * std, learned + BAND_Z * std, color="C1", alpha=0.25, lw=0,
                        label="95 % band (learned ± 1.96 std)")
    ax.plot(x, true, color="k", lw=2.0, label=f"true {name}")
    ax.plot(x, learned, color="C1", lw=1.8, ls="--", label=f"learned {name}")
    if std is not None:
        lo, hi = min(learned.min(), true.min()), max(learned.max(), true.max())
        pad = BAND_MARGIN * (hi - lo) if hi > lo else 1.0
        auto_lo, auto_hi = ax.get_ylim()
        ax.set_ylim(max(auto_lo, lo - pad), min(auto_hi, hi + pad))
    ax.set_xlim(space.edges[0])
    ax.set_xlabel(space.labels[0])
    ax.set_ylabel(with_units(name))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the consecutive True cells of a 1D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(int)
    change = np.flatnonzero(np.diff(padded))
    return list(zip(change[::2], change[1::2]))


def _images(learned, true, space, observed, name, cmap, figsize):
    panels = [Panel("true", f"true {name}", true[None]), Panel("learned", f"learned {name}", learned[None]),
              Panel("error", f"learned - true {name}", (learned - true)[None], is_error=True)]
    fig, axes = new_image_figure(panels, space.extent, shared_scale=True, figsize=figsize)
    draw_images(fig, axes, panels, [p.data[0].T for p in panels], extent=space.extent,
                shared_scale=True, cmap=cmap, aspect="equal", label=with_units(name))
    partial = observed is not None and observed.any() and not observed.all()
    for ax in axes:
        ax.set_xlabel(space.labels[0])
        ax.set_ylabel(space.labels[1])
        if partial:
            # Outline and hatch on the cell centres: the line runs between observed and
            # unobserved cells.
            z = observed.T.astype(float)
            ax.contourf(*space.centres, z, levels=[-0.5, 0.5], colors="none", hatches=["//"])
            ax.contour(*space.centres, z, levels=[0.5], colors="k", linewidths=1.0)
    if partial:
        hatch = Patch(facecolor="none", edgecolor="k", hatch="//", label="not observed")
        fig.legend(handles=[hatch], loc="outside lower center", fontsize="small", frameon=False)
    return fig
