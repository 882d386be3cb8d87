"""A time slider with a play button over trajectories, for JupyterLab without extra extensions.

The figure is drawn with whatever matplotlib backend is active and sent to the browser as a PNG in
an ``ipywidgets.Image``: that renders in plain JupyterLab (no ipympl), does not flicker the way
clearing an ``Output`` does, and keeps a fixed size while the frames change.
"""
from __future__ import annotations

import ipywidgets as widgets

from .._grid import GridSpec
from ._frames import FrameFigure, frame_figure


class FieldPlayer(widgets.VBox):
    """A play button and a frame slider above a figure of trajectories (see :func:`field_player`).

    Attributes:
        play: the ``ipywidgets.Play`` button, linked in the browser to ``slider``.
        slider: the ``IntSlider`` over frames; setting ``slider.value`` redraws that frame.
        image: the ``ipywidgets.Image`` showing the figure as PNG.
        figure: the matplotlib figure (updated in place, closed in pyplot).
        artists: ``name -> Line2D`` (1D) or ``AxesImage`` (2D, holding ``frame.T``); the error
            panel is ``"error"``.
    """

    def __init__(self, frames: FrameFigure, *, interval_ms: int = 200, dpi: int = 100):
        last = frames.num_frames - 1
        self._frames = frames
        self._dpi = dpi
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


def field_player(
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
    interval_ms: int = 200,
    figsize=None,
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
        error_of: ``(a, b)`` adds a panel ``a - b`` (its own, symmetric colour scale).
        shared_scale: one colour scale (y-range for lines) for all non-error panels, spanning the
            global min and max over all frames.
        overlay: 1D only: lines of all fields on one axis (else one axis per field).
        cmap: colour map of the field images.
        interval_ms: time between frames when playing.
        figsize: matplotlib figure size, default from the number of panels.

    Returns:
        A :class:`FieldPlayer` widget; display it (last expression of a cell).

    Raises:
        ValueError: for shapes that are not ``(time, *space[, vector])``, that differ between
            fields or do not match ``grid``.
    """
    frames = frame_figure(fields, grid=grid, dt=dt, t0=t0, component=component, error_of=error_of,
                          shared_scale=shared_scale, overlay=overlay, cmap=cmap, figsize=figsize)
    return FieldPlayer(frames, interval_ms=interval_ms)


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
