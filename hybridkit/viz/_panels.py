"""A row of panels in one figure: figure creation, shared colour scales, colorbars.

Shared by the frame views (player, animation), the space-time view and the parameter view, so
that every image in hybridkit is coloured and labelled the same way.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._inputs import Panel, value_range

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
    colorbars = (len(panels) - fields) + (min(fields, 1) if shared_scale else fields)
    width = len(panels) * (axes_w + 0.65) + 0.7 * colorbars + 0.2
    return new_figure(len(panels), width=width / len(panels), height=axes_h + 1.1,
                      figsize=figsize, layout="compressed")


def draw_images(fig, axes, panels: list[Panel], images: list[np.ndarray], *, extent, shared_scale: bool,
                cmap: str, aspect) -> dict:
    """Draw ``images[i]`` (rows = vertical axis) of ``panels[i]`` into ``axes[i]`` with colorbars.

    The colour limits come from all of ``panel.data`` (all frames), so that colours mean the same
    value in every frame. Field panels share one scale and one colorbar when ``shared_scale``;
    an error panel always has its own (symmetric for a signed error).

    Returns:
        ``name -> AxesImage``.
    """
    fields = [i for i, p in enumerate(panels) if not p.is_error]
    shared = value_range([panels[i].data for i in fields]) if shared_scale and fields else None
    artists = {}
    for ax, panel, image in zip(axes, panels, images):
        if panel.is_error:
            cm = ERROR_CMAP if panel.signed else MAGNITUDE_ERROR_CMAP
            lo, hi = value_range([panel.data], symmetric=panel.signed)
            lo = lo if panel.signed else 0.0
        else:
            cm = cmap
            lo, hi = shared or value_range([panel.data])
        im = ax.imshow(image, origin="lower", extent=extent, cmap=cm, vmin=lo, vmax=hi,
                       interpolation="nearest", aspect=aspect)
        ax.set_title(panel.title)
        artists[panel.name] = im
        if panel.is_error or shared is None:
            fig.colorbar(im, ax=ax, shrink=0.85)
    if shared is not None:
        fig.colorbar(artists[panels[fields[0]].name], ax=[axes[i] for i in fields], shrink=0.85)
    return artists
