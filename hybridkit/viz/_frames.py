"""One figure that shows trajectories one frame at a time, updated in place (player, animation)."""
from __future__ import annotations

import io

from ._inputs import Panel, Space, Times, prepare_panels, value_range, with_units
from ._panels import draw_images, line_style, new_figure, new_image_figure


class FrameFigure:
    """Panels side by side showing frame ``k`` of every trajectory; :meth:`show` moves to a frame.

    1D fields are lines (overlaid on one axis when ``overlay``, each in its own colour, line style
    and markers; the errors on an axis of their own), 2D fields are images with x to the right
    and y up (an image artist holds ``frame.T``) and labelled colorbars. Axis limits and colour
    scales span all frames, so nothing rescales while the time moves.

    Attributes:
        figure: the matplotlib figure (closed in pyplot; render it with :meth:`png`).
        artists: ``panel name -> Line2D`` (1D) or ``AxesImage`` (2D); a single error panel is
            ``"error"``, the errors against a reference are ``"<name> - <ref>"``.
        frame: the frame shown.
        title: the figure's title ``Text`` (the time of the frame shown).
        quantity: what the fields are (the value axis / colorbar label, without units).
    """

    def __init__(self, panels: list[Panel], space: Space, times: Times, *, shared_scale: bool = True,
                 overlay: bool = True, cmap: str = "viridis", figsize=None, quantity: str = "u"):
        self.panels = panels
        self.space = space
        self.times = times
        self.quantity = quantity
        if space.ndim == 1:
            self.figure, self.artists = _draw_lines(panels, space, shared_scale, overlay, figsize, quantity)
        else:
            fig, axes = new_image_figure(panels, space.extent, shared_scale=shared_scale,
                                         figsize=figsize)
            for ax in axes:
                ax.set_xlabel(space.labels[0])
                ax.set_ylabel(space.labels[1])
            first = [p.data[0].T for p in panels]
            self.figure = fig
            self.artists = draw_images(fig, axes, panels, first, extent=space.extent,
                                       shared_scale=shared_scale, cmap=cmap, aspect="equal",
                                       label=with_units(quantity))
        self.title = self.figure.suptitle(times.title(0))
        self.frame = 0
        # Lay out once, then freeze: re-solving the layout on every frame costs more than drawing
        # it, and fixed axes cannot jitter while the time moves.
        self.figure.draw_without_rendering()
        self.figure.draw_without_rendering()  # compressed layout settles in a second pass
        self.figure.set_layout_engine("none")

    @property
    def num_frames(self) -> int:
        return self.times.count

    def show(self, k: int) -> list:
        """Move every artist to frame ``k`` (in place) and return the artists that changed."""
        k = int(k)
        if not 0 <= k < self.num_frames:
            raise ValueError(f"Expected a frame in [0, {self.num_frames}), got {k}.")
        for panel in self.panels:
            artist = self.artists[panel.name]
            frame = panel.data[k]
            if frame.ndim == 1:
                artist.set_ydata(frame)
            else:
                artist.set_data(frame.T)
        self.title.set_text(self.times.title(k))
        self.frame = k
        return [*self.artists.values(), self.title]

    def png(self, dpi: int = 100) -> bytes:
        """The figure at the current frame as PNG bytes (same pixel size for every frame)."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()


def _draw_lines(panels, space, shared_scale, overlay, figsize, quantity):
    fields = [p for p in panels if not p.is_error]
    errors = [p for p in panels if p.is_error]
    if overlay:
        groups = ([fields] if fields else []) + ([errors] if errors else [])
    else:
        groups = [[p] for p in panels]
    fig, axes = new_figure(len(groups), width=5.5 if overlay else 4.2, height=3.6, figsize=figsize)
    shared = _padded(value_range([p.data for p in fields])) if shared_scale and fields else None
    x = space.centres[0]
    order = {p.name: k for k, p in enumerate(fields)}  # an error is drawn in its field's style
    artists = {}
    for ax, group in zip(axes, groups):
        for panel in group:
            style = line_style(order.get(panel.source if panel.is_error else panel.name, 0), len(x))
            if panel.is_error and len(errors) == 1:
                style.update(color="k", alpha=1.0, lw=1.6)
            (artists[panel.name],) = ax.plot(x, panel.data[0], label=panel.title, **style)
        if group[0].is_error:
            signed = all(p.signed for p in group)
            lo, hi = value_range([p.data for p in group], symmetric=signed)
            ax.set_ylim(_padded((lo if signed else 0.0, hi)))
            ax.axhline(0.0, color="0.6", lw=0.8)
            ax.set_ylabel(with_units(group[0].title if len(group) == 1 else f"error in {quantity}"))
            ax.set_facecolor("0.97")  # the error axis looks different from the field axis
        else:
            ax.set_ylim(shared or _padded(value_range([p.data for p in group])))
            ax.set_ylabel(with_units(quantity))
        ax.set_xlim(space.edges[0])
        ax.set_xlabel(space.labels[0])
        ax.grid(alpha=0.3)
        if len(group) > 1:
            # Above the axes, not on them: a moving curve never passes under it.
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(group), 3),
                      fontsize="small", frameon=False, borderaxespad=0.2)
        else:
            ax.set_title(group[0].title)
    return fig, artists


def _padded(lim, frac: float = 0.05):
    lo, hi = lim
    pad = frac * (hi - lo)
    return (lo - pad, hi + pad)


def frame_figure(fields, *, grid, dt, t0, component, error_of, shared_scale, overlay, cmap,
                 figsize, quantity: str = "u") -> FrameFigure:
    """Validate the user's inputs and build a :class:`FrameFigure` (the shared front half of
    :func:`field_player` and :func:`animate`)."""
    if not isinstance(quantity, str) or not quantity:
        raise ValueError(f"Expected quantity as a non-empty string (the value axis label, e.g. 'u'), "
                         f"got {quantity!r}.")
    panels, _ = prepare_panels(fields, grid=grid, component=component, error_of=error_of)
    data = panels[0].data
    space = Space.of(tuple(data.shape[1:]), grid)
    times = Times(data.shape[0], dt, t0)
    return FrameFigure(panels, space, times, shared_scale=shared_scale, overlay=overlay, cmap=cmap,
                       figsize=figsize, quantity=quantity)
