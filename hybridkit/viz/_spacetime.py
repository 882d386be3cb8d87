"""Space-time (x-t) images of 1D trajectories side by side."""
from __future__ import annotations

from .._grid import GridSpec
from ._inputs import Space, Times, prepare_panels, with_units
from ._panels import draw_images, new_figure


def spacetime(
    fields,
    *,
    grid: GridSpec | None = None,
    dt: float | None = None,
    t0: float = 0.0,
    component=None,
    error_of: tuple[str, str] | str | None = None,
    shared_scale: bool = True,
    cmap: str = "viridis",
    quantity: str = "u",
    figsize=None,
):
    """x-t images of 1D trajectories side by side: x to the right, time upwards.

    Args:
        fields: ``name -> (time, x)`` (or ``(time, x, 1)`` for a 1D vector field), same shapes.
        grid, dt, t0, component, error_of, shared_scale, cmap, quantity, figsize: as in
            :func:`field_player`; pixel ``(k, i)`` is centred at time ``t0 + k * dt`` and at the
            centre of cell ``i``; the colorbars are labelled ``quantity`` (nondim.) and the error.

    Returns:
        A matplotlib ``Figure``; ``fig.axes[i].images[0]`` holds panel ``i`` as ``(time, x)``.

    Raises:
        ValueError: for 2D fields (use :func:`field_player` or :func:`animate`) and bad shapes.
    """
    panels, ndim = prepare_panels(fields, grid=grid, component=component, error_of=error_of)
    if ndim != 1:
        raise ValueError(
            f"Expected 1D trajectories (time, x) for a space-time image, got "
            f"{panels[0].data.shape} (2D fields). Fix: use field_player(...) or animate(...)."
        )
    count, nx = panels[0].data.shape
    space = Space.of((nx,), grid)
    times = Times(count, dt, t0)
    t = times.values
    step = times.dt or 1.0
    extent = [*space.edges[0], t[0] - step / 2, t[-1] + step / 2]
    fig, axes = new_figure(len(panels), width=3.8, height=3.8, figsize=figsize)
    draw_images(fig, axes, panels, [p.data for p in panels], extent=extent,
                shared_scale=shared_scale, cmap=cmap, aspect="auto", label=with_units(quantity))
    for ax in axes:
        ax.set_xlabel(space.labels[0])
        ax.set_ylabel(times.label)
    return fig
