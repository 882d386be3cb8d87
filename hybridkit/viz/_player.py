"""A time slider with a play button over trajectories, for JupyterLab without extra extensions.

The figure is drawn with whatever matplotlib backend is active and sent to the browser as a PNG in
an ``ipywidgets.Image``: that renders in plain JupyterLab (no ipympl), does not flicker the way
clearing an ``Output`` does, and keeps a fixed size while the frames change.

Where no kernel runs the widget (a stored notebook, its HTML export, nbval, GitHub), the player
falls back to what its display also carries: a self-contained animation (``text/html``) or a
picture of the frame shown (``image/png``). JupyterLab prefers the live widget.
"""
from __future__ import annotations

import base64

import ipywidgets as widgets

from .._grid import GridSpec
from ._jsplayer import DPI, MAX_FRAMES, MAX_KB, animation_html
from ._frames import FrameFigure, frame_figure

FALLBACKS = ("animation", "image", None)


class FieldPlayer(widgets.VBox):
    """A play button and a frame slider above a figure of trajectories (see :func:`field_player`).

    Attributes:
        play: the ``ipywidgets.Play`` button, linked in the browser to ``slider``.
        slider: the ``IntSlider`` over frames; setting ``slider.value`` redraws that frame.
        image: the ``ipywidgets.Image`` showing the figure as PNG.
        figure: the matplotlib figure (updated in place, closed in pyplot).
        artists: ``name -> Line2D`` (1D) or ``AxesImage`` (2D, holding ``frame.T``); the error
            panel is ``"error"`` (``error_of=(a, b)``) or ``"<name> - <ref>"`` (``error_of=ref``).
        fallback: what the display carries besides the widget view (see :func:`field_player`).
    """

    def __init__(self, frames: FrameFigure, *, interval_ms: int = 200, dpi: int = 100,
                 fallback: str | None = "animation"):
        if fallback not in FALLBACKS:
            raise ValueError(f"Expected fallback one of {FALLBACKS}, got {fallback!r}. Fix: 'animation' "
                             "(an HTML animation where widgets do not render), 'image' (a PNG of the "
                             "frame shown) or None (the widget only).")
        last = frames.num_frames - 1
        self._frames = frames
        self._dpi = dpi
        self._interval_ms = int(interval_ms)
        self._animation_html: str | None = None
        self.fallback = fallback
        self.figure = frames.figure
        self.artists = frames.artists
        self.play = widgets.Play(value=0, min=0, max=last, step=1, interval=int(interval_ms),
                                 description="play")
        self.slider = widgets.IntSlider(value=0, min=0, max=last, description="frame")
        # A browser-side link: playing does not wait for the kernel to move the slider.
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = widgets.Image(value=frames.png(dpi), format="png")
        self.slider.observe(self._on_frame, names="value")
        super().__init__([widgets.HBox([self.play, self.slider]), self.image])

    def _on_frame(self, change) -> None:
        self._frames.show(change["new"])
        self.image.value = self._frames.png(self._dpi)

    def describe(self) -> str:
        """One line saying what the player shows, e.g. ``FieldPlayer: truth, UNet, truth - UNet;
        21 frames, t = 0 .. 2``; its plain-text display."""
        times = self._frames.times
        span = "" if times.dt is None else f", t = {times.values[0]:.4g} .. {times.values[-1]:.4g}"
        names = ", ".join(p.title for p in self._frames.panels)
        return f"FieldPlayer: {names}; {times.count} frames{span}"

    def animation_html(self, *, max_frames: int = MAX_FRAMES, dpi: int = DPI, max_kb: float = MAX_KB) -> str:
        """The player as a self-contained HTML animation: its ``text/html`` fallback.

        At most ``max_frames`` frames (evenly spaced, first and last kept) at ``dpi``, fewer if
        they would take more than ``max_kb`` kilobytes. With the defaults it is computed once and
        kept (the display calls it).
        """
        options = (max_frames, dpi, max_kb)
        if options != (MAX_FRAMES, DPI, MAX_KB):
            return animation_html(self._frames, max_frames=max_frames, dpi=dpi, max_kb=max_kb,
                                  interval_ms=self._interval_ms)
        if self._animation_html is None:
            self._animation_html = animation_html(self._frames, interval_ms=self._interval_ms)
        return self._animation_html

    def _repr_mimebundle_(self, **kwargs):
        # The widget view for JupyterLab, plus a static fallback for everything that shows a
        # stored output without a kernel; a plain-text line instead of the widget's repr.
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.describe()
        if self.fallback == "animation":
            bundle["text/html"] = self.animation_html()
        elif self.fallback == "image":
            bundle["image/png"] = base64.b64encode(self._frames.png(self._dpi)).decode("ascii")
        return bundle


def field_player(
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
    interval_ms: int = 200,
    figsize=None,
    fallback: str | None = "animation",
) -> FieldPlayer:
    """An interactive view of trajectories: a play button and a time slider over one figure.

    1D fields are drawn as lines (all on one axis when ``overlay``), 2D fields as images side by
    side with one colour scale. Moving the slider updates the artists in place and re-renders
    the figure; it works with the default inline backend (ipympl is not needed).

    Args:
        fields: ``name -> (time, *space)`` for scalar fields or ``(time, *space, vector)`` for
            vector fields (numpy, torch, or a PhiFlow field with a ``time`` batch dim), all with
            the same number of frames and spatial shape. A single array is named ``"field"``.
        grid: the ``GridSpec`` the fields live on, for axes in physical units (else cell indices).
        dt: time between frames, for time labels (else frame numbers); ``t0`` is the first time.
        component: for vector fields: None for the magnitude, or an index / axis name (``"x"``).
        error_of: ``(a, b)`` adds a panel ``a - b`` (its own, symmetric colour scale); the name
            ``ref`` of one field adds ``name - ref`` for every other field (1D: on one error axis,
            each in its field's line style; 2D: one image each, on one colour scale).
        shared_scale: one colour scale (y-range for lines) for all non-error panels, spanning the
            global min and max over all frames.
        overlay: 1D only: lines of all fields on one axis (else one axis per field).
        cmap: colour map of the field images.
        quantity: what the fields are, for the value axis (1D) and the colorbar (2D), e.g.
            ``"u"`` or ``"vorticity"``; labels add "(nondim.)": hybridkit's PDEs are nondimensional.
        interval_ms: time between frames when playing.
        figsize: matplotlib figure size, default from the number of panels.
        fallback: what the display carries besides the live widget, for views without a kernel
            (stored notebook, HTML export, GitHub): ``"animation"`` (self-contained HTML, at most
            24 frames, ~450 kB), ``"image"`` (a PNG of the current frame) or None.

    Returns:
        A :class:`FieldPlayer` widget; display it (last expression of a cell).

    Raises:
        ValueError: for shapes that are not ``(time, *space[, vector])``, that differ between
            fields or do not match ``grid``.
    """
    frames = frame_figure(fields, grid=grid, dt=dt, t0=t0, component=component, error_of=error_of,
                          shared_scale=shared_scale, overlay=overlay, cmap=cmap, figsize=figsize,
                          quantity=quantity)
    return FieldPlayer(frames, interval_ms=interval_ms, fallback=fallback)


def compare_rollout(truth, prediction, *, names: tuple[str, str] = ("truth", "prediction"),
                    **kwargs) -> FieldPlayer:
    """Truth vs prediction vs their difference, with a time slider: :func:`field_player` with
    ``error_of=names``.

    Args:
        truth, prediction: ``(time, *space[, vector])`` trajectories of the same shape.
        names: panel names of the two trajectories.
        **kwargs: passed on to :func:`field_player` (``grid``, ``dt``, ``component``, ...).
    """
    return field_player({names[0]: truth, names[1]: prediction}, error_of=tuple(names), **kwargs)
