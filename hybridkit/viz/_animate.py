"""Animations of trajectories that render where widgets do not (static HTML export, nbval)."""
from __future__ import annotations

import matplotlib
from matplotlib.animation import FuncAnimation

from .._grid import GridSpec
from ._frames import frame_figure


def animate(
    fields,
    *,
    grid: GridSpec | None = None,
    dt: float | None = None,
    t0: float = 0.0,
    component=None,
    error_of: tuple[str, str] | None = None,
    shared_scale: bool = True,
    overlay: bool = True,
    cmap: str = "viridis",
    stride: int = 1,
    interval_ms: int = 200,
    figsize=None,
) -> FuncAnimation:
    """The same figure as :func:`field_player`, as a matplotlib animation over frames
    ``0, stride, 2 * stride, ...``.

    Turn it into self-contained HTML with :func:`to_html` (or save it with ``anim.save``).
    Arguments as in :func:`field_player`; ``stride`` skips frames to keep the HTML small.

    Returns:
        A ``FuncAnimation`` on a figure that pyplot does not show by itself.
    """
    if int(stride) < 1:
        raise ValueError(f"Expected stride >= 1 (show every stride-th frame), got {stride}.")
    frames = frame_figure(fields, grid=grid, dt=dt, t0=t0, component=component, error_of=error_of,
                          shared_scale=shared_scale, overlay=overlay, cmap=cmap, figsize=figsize)
    return FuncAnimation(frames.figure, frames.show, frames=range(0, frames.num_frames, int(stride)),
                         interval=int(interval_ms), blit=False, repeat=True)


class _HTML(str):
    """An HTML string that Jupyter renders as HTML when it is the value of a cell."""

    def _repr_html_(self) -> str:
        return str(self)


def to_html(anim: FuncAnimation, *, fps: float | None = None, embed_limit_mb: float | None = None) -> str:
    """Self-contained HTML (JavaScript player, frames embedded as PNG) of an animation.

    Args:
        anim: e.g. from :func:`animate`.
        fps: playback speed; default from the animation's interval.
        embed_limit_mb: raise matplotlib's limit on the embedded size (default 20 MB; beyond it
            matplotlib drops the remaining frames with a logged warning).

    Returns:
        A ``str`` with the HTML; as a cell's value Jupyter shows the player.
    """
    rc = {} if embed_limit_mb is None else {"animation.embed_limit": float(embed_limit_mb)}
    with matplotlib.rc_context(rc):
        return _HTML(anim.to_jshtml(fps=fps))
