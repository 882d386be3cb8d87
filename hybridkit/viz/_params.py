"""A learned parameter field next to the true one, with the observed region marked."""
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


def plot_param_field(learned, true, *, grid: GridSpec | None = None, mask=None,
                     name: str = "parameter", title: str | None = None, cmap: str = "viridis",
                     figsize=None):
    """Learned vs true parameter field; the title gives the relative L2 error.

    1D: both as lines on one axis, the observed region shaded. 2D: true, learned (one colour
    scale) and learned - true as images, the observed region outlined.

    Args:
        learned, true: ``(*space)`` fields of the same shape (numpy, torch, PhiFlow).
        grid: for axes in physical units (else cell indices).
        mask: ``(*space)``, nonzero where data were observed; the title then also gives the
            relative L2 error on the observed and on the unobserved part.
        name: the parameter's name, for labels (e.g. ``"diffusivity"``).
        title: what this estimate is (e.g. ``"20 % noise, no regulariser"``), the first line of
            the figure's title.

    Returns:
        A matplotlib ``Figure``; its suptitle reads, one part per line,
        ``"[<title>] <name>: relative L2 error <e> [(observed <eo>, unobserved <eu>)]"``.

    Raises:
        ValueError: for shapes that differ, are not 1D / 2D, or do not match ``grid`` / ``mask``.
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
    lines = [title] if title else []
    lines.append(f"{name}: relative L2 error {relative_l2(lv, tv):.3g}")
    if observed is not None and observed.any() and not observed.all():
        lines.append(f"(observed {relative_l2(lv[observed], tv[observed]):.3g}, "
                     f"unobserved {relative_l2(lv[~observed], tv[~observed]):.3g})")
    if ndim == 1:
        fig = _lines(lv, tv, space, observed, name, figsize)
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


def _lines(learned, true, space, observed, name, figsize):
    fig, (ax,) = new_figure(1, width=6.5, height=3.8, figsize=figsize)
    x = space.centres[0]
    if observed is not None:
        faces = space.cell_edges(0)
        for k, (i, j) in enumerate(_runs(observed)):
            ax.axvspan(faces[i], faces[j], color="C2", alpha=0.15, lw=0,
                       label="observed region" if k == 0 else None)
    ax.plot(x, true, color="k", lw=2.0, label=f"true {name}")
    ax.plot(x, learned, color="C1", lw=1.8, ls="--", label=f"learned {name}")
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
