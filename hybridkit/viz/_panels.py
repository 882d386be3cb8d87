"""A row of panels in one figure: figure creation, shared colour scales, colorbars.

Shared by the frame views (player, animation), the space-time view and the parameter view, so
that every image in hybridkit is coloured and labelled the same way.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._inputs import Panel, value_range, with_units

ERROR_CMAP = "RdBu_r"  # diverging: sign of the error, white where it vanishes
MAGNITUDE_ERROR_CMAP = "magma"  # for |a - b|, which has no sign


def new_figure(ncols: int, *, width: float, height: float, figsize=None, layout="constrained"):
    """A figure with ``ncols`` axes side by side (``width`` inches each), closed in pyplot.

    Closing it keeps pyplot (and Jupyter's inline backend) from showing it a second time: the
    caller returns it, renders it to PNG, or animates it; a closed figure still draws and saves.
    """
    fig, axes = plt.subplots(1, ncols, figsize=figsize or (width * ncols, height), layout=layout,
                             squeeze=False)
    plt.close(fig)
    return fig, list(axes[0])


def new_image_figure(panels: list[Panel], space_extent, *, shared_scale: bool, figsize=None):
    """A figure for :func:`draw_images` of a 2D domain, sized to its aspect ratio.

    The "compressed" layout packs equal-aspect axes and their colorbars without the gaps (and
    clipped colorbar labels) that the plain constrained layout leaves around them.
    """
    x0, x1, y0, y1 = space_extent
    aspect = (y1 - y0) / (x1 - x0)
    box_w, box_h = 4.5, 2.9  # largest axes, in inches; the domain is fitted into it
    if aspect > box_h / box_w:
        axes_w, axes_h = max(box_h / aspect, 1.2), box_h
    else:
        axes_w, axes_h = box_w, max(box_w * aspect, 1.2)
    fields = sum(not p.is_error for p in panels)
    errors = len(panels) - fields
    colorbars = (min(fields, 1) + min(errors, 1)) if shared_scale else len(panels)
    width = len(panels) * (axes_w + 0.65) + 0.7 * colorbars + 0.2
    return new_figure(len(panels), width=width / len(panels), height=axes_h + 1.1,
                      figsize=figsize, layout="compressed")


def line_style(k: int, n_points: int) -> dict:
    """Matplotlib keywords of the ``k``-th curve on an axis that holds several.

    Curves differ in colour *and* in line style, width and markers, so that a curve lying exactly
    on another stays visible: the first is wide and translucent (often the reference, e.g. the
    truth), the next ones dashed / dotted with hollow markers at staggered points.
    """
    style = dict(_LINE_STYLES[k % len(_LINE_STYLES)], color=f"C{k % 10}")
    if "marker" in style:
        step = max(1, n_points // 8)
        style["markevery"] = ((k * step) // 3 % step, step)
    return style


_LINE_STYLES = (
    {"ls": "-", "lw": 3.2, "alpha": 0.55},
    {"ls": "--", "lw": 1.8},
    {"ls": "-.", "lw": 1.6, "marker": "o", "ms": 4.5, "mfc": "none"},
    {"ls": ":", "lw": 2.0, "marker": "s", "ms": 4.0, "mfc": "none"},
    {"ls": (0, (5, 1.5, 1, 1.5, 1, 1.5)), "lw": 1.6, "marker": "^", "ms": 4.5, "mfc": "none"},
    {"ls": (0, (1, 1)), "lw": 2.2, "marker": "D", "ms": 3.5, "mfc": "none"},
)


def draw_images(fig, axes, panels: list[Panel], images: list[np.ndarray], *, extent, shared_scale: bool,
                cmap: str, aspect, label: str) -> dict:
    """Draw ``images[i]`` (rows = vertical axis) of ``panels[i]`` into ``axes[i]`` with labelled
    colorbars.

    The colour limits come from all of ``panel.data`` (all frames), so that colours mean the same
    value in every frame. With ``shared_scale`` the field panels share one scale and one colorbar
    (labelled ``label``), and so do the error panels (labelled with their title when there is
    one, else "error"); an error scale is symmetric about zero for signed errors.

    Returns:
        ``name -> AxesImage``.
    """
    groups = [[i for i, p in enumerate(panels) if not p.is_error],
              [i for i, p in enumerate(panels) if p.is_error]]
    artists = {}
    for group in groups:
        if not group:
            continue
        signed = all(panels[i].signed for i in group)
        shared = value_range([panels[i].data for i in group], symmetric=panels[group[0]].is_error and signed) \
            if shared_scale else None
        for i in group:
            panel = panels[i]
            lo, hi = shared or value_range([panel.data], symmetric=panel.is_error and panel.signed)
            if panel.is_error:
                cm = ERROR_CMAP if signed else MAGNITUDE_ERROR_CMAP
                lo = lo if signed else 0.0
            else:
                cm = cmap
            im = axes[i].imshow(images[i], origin="lower", extent=extent, cmap=cm, vmin=lo, vmax=hi,
                                interpolation="nearest", aspect=aspect)
            axes[i].set_title(panel.title)
            artists[panel.name] = im
            if shared is None:
                fig.colorbar(im, ax=axes[i], shrink=0.85, label=_colorbar_label([panel], label))
        if shared is not None:
            fig.colorbar(artists[panels[group[0]].name], ax=[axes[i] for i in group], shrink=0.85,
                         label=_colorbar_label([panels[i] for i in group], label))
    return artists


def _colorbar_label(panels: list[Panel], label: str) -> str:
    if not panels[0].is_error:
        return label
    return with_units(panels[0].title if len(panels) == 1 else "error")
