"""Plots for the notebooks: interactive players, animations and static figures.

Trajectories come in the storage layout, ``(time, *space)`` for a scalar field and
``(time, *space, vector)`` for a vector field (drawn as its magnitude, or one ``component``), as
numpy arrays, torch tensors or PhiFlow fields; a ``GridSpec`` puts the axes in physical units and
``dt`` labels time. Nothing here calls ``plt.show()``: functions return a figure or a widget, and
figures are closed in pyplot so that Jupyter shows them once, as the value of the cell.

Interactive (need ``ipywidgets``; render in plain JupyterLab, no ipympl):

* :func:`field_player` — a play button and a time slider over fields side by side
  (1D lines, 2D images with one colour scale), optionally with an error panel
* :func:`compare_rollout` — truth vs prediction vs error with a time slider
* :class:`FieldPlayer` — the widget both return (``.slider``, ``.play``, ``.figure``, ``.artists``)

Where widgets do not render (HTML export, nbval):

* :func:`animate` — the player's figure as a matplotlib ``FuncAnimation``
* :func:`to_html` — an animation as self-contained HTML (``to_jshtml``)

Static figures:

* :func:`spacetime` — x-t images of 1D trajectories side by side
* :func:`plot_param_field` — learned vs true parameter field, observed region marked,
  relative L2 error in the title
* :func:`plot_losses` — loss curves of one or several runs
* :func:`plot_rollout_errors` — error against rollout step, one curve per model
"""
from ._animate import animate, to_html
from ._curves import plot_losses, plot_rollout_errors
from ._params import plot_param_field
from ._spacetime import spacetime

__all__ = [
    "FieldPlayer",
    "animate",
    "compare_rollout",
    "field_player",
    "plot_losses",
    "plot_param_field",
    "plot_rollout_errors",
    "spacetime",
    "to_html",
]

_WIDGETS = ("FieldPlayer", "field_player", "compare_rollout")


def __getattr__(name: str):
    # ipywidgets is an optional dependency (extras "notebooks", "dev"): import the player only
    # when asked for, so that the static figures work in a plain install.
    if name in _WIDGETS:
        try:
            from . import _player
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"hybridkit.viz.{name} needs ipywidgets ({exc}). "
                "Fix: pip install 'hybridkit[notebooks]' (or pip install ipywidgets)."
            ) from exc
        return getattr(_player, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
