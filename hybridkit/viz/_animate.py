"""matplotlib animations of trajectories, and their HTML without anything from a CDN.

matplotlib's ``to_jshtml`` embeds the frames as PNG and draws its buttons with Font Awesome
icons loaded from a CDN: offline the buttons are blank. :func:`to_html` removes that link and
gives the buttons text symbols, so the HTML needs nothing from the network.
"""
from __future__ import annotations

import re

import matplotlib
import numpy as np
from matplotlib.animation import FuncAnimation

from .._checks import check_count
from .._grid import GridSpec
from ._frames import FrameFigure, frame_figure


def animate(
    fields,
    *,
    grid: GridSpec | None = None,
    dt: float | None = None,
    t0: float = 0.0,
    component=None,
    error_of: tuple[str, str] | str | None = None,
    shared_scale: bool = True,
    overlay: bool = True,
    cmap: str = "viridis",
    quantity: str = "u",
    stride: int = 1,
    max_frames: int | None = None,
    interval_ms: int = 200,
    figsize=None,
) -> FuncAnimation:
    """The same figure as :func:`field_player`, as a matplotlib animation over frames
    ``0, stride, 2 * stride, ...``.

    Turn it into self-contained HTML with :func:`to_html` (or save it with ``anim.save``).
    Arguments as in :func:`field_player`; ``stride`` skips frames to keep the HTML small, and
    ``max_frames`` caps their number (evenly spaced, first and last frame included).

    Returns:
        A ``FuncAnimation`` on a figure that pyplot does not show by itself.
    """
    if int(stride) < 1:
        raise ValueError(f"Expected stride >= 1 (show every stride-th frame), got {stride}.")
    frames = frame_figure(fields, grid=grid, dt=dt, t0=t0, component=component, error_of=error_of,
                          shared_scale=shared_scale, overlay=overlay, cmap=cmap, figsize=figsize,
                          quantity=quantity)
    shown = list(range(0, frames.num_frames, int(stride)))
    if max_frames is not None:
        shown = [shown[i] for i in frame_indices(len(shown), max_frames)]
    return _animation(frames, shown, interval_ms)


def _animation(frames: FrameFigure, shown: list[int], interval_ms: int) -> FuncAnimation:
    return FuncAnimation(frames.figure, frames.show, frames=shown, interval=int(interval_ms),
                         blit=False, repeat=True)


def frame_indices(count: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` of the frames ``0 .. count - 1``, evenly spaced, first and last kept."""
    check_count(max_frames, "max_frames", minimum=1)
    if count <= max_frames:
        return list(range(count))
    if max_frames == 1:
        return [0]
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, max_frames)})


class _HTML(str):
    """An HTML string that Jupyter renders as HTML when it is the value of a cell."""

    def _repr_html_(self) -> str:
        return str(self)


def to_html(anim: FuncAnimation, *, fps: float | None = None, embed_limit_mb: float | None = None) -> str:
    """Self-contained HTML (JavaScript player, frames embedded as PNG) of an animation.

    Unlike matplotlib's own ``to_jshtml`` it loads nothing from the network: the buttons are
    text symbols instead of Font Awesome icons from a CDN.

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
        return _HTML(offline_controls(anim.to_jshtml(fps=fps)))


_FONT_AWESOME = re.compile(r'<link\s+rel="stylesheet"\s+href="[^"]*font-awesome[^"]*"\s*/?>\s*')
_ICON = re.compile(r'<i class="fa fa-([a-z-]+)(?: fa-flip-horizontal)?"></i>')
# Text symbols for matplotlib's buttons (U+FE0E: text, not emoji, presentation).
_SYMBOLS = {
    "minus": "&minus;", "plus": "+", "pause": "&#x275A;&#x275A;",
    "fast-backward": "|&#x25C0;&#xFE0E;&#x25C0;&#xFE0E;", "step-backward": "|&#x25C0;&#xFE0E;",
    "play": "&#x25B6;&#xFE0E;", "step-forward": "&#x25B6;&#xFE0E;|",
    "fast-forward": "&#x25B6;&#xFE0E;&#x25B6;&#xFE0E;|",
}


def offline_controls(html: str) -> str:
    """matplotlib jshtml without the Font Awesome stylesheet from a CDN: buttons as text symbols.

    The reverse-play button gets the play symbol mirrored (it keeps its ``title`` and
    ``aria-label``, e.g. "Play backwards").
    """
    html = _FONT_AWESOME.sub("", html)

    def symbol(m: re.Match) -> str:
        name = m.group(1)
        if m.group(0).endswith('horizontal"></i>'):
            return "&#x25C0;&#xFE0E;"
        return _SYMBOLS.get(name, name.replace("-", " "))

    return _ICON.sub(symbol, html)
