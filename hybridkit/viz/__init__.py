"""Plots for the notebooks and run directories: interactive players, animations, static figures,
and notebook export that reads well offline.

Trajectories come in the storage layout, ``(time, *space)`` for a scalar field and
``(time, *space, vector)`` for a vector field (drawn as its magnitude, or one ``component``), as
numpy arrays, torch tensors or PhiFlow fields; a ``GridSpec`` puts the axes in physical units and
``dt`` labels time. hybridkit's PDEs are nondimensional, and the labels say so ("x (nondim.)",
"t (nondim.)", "u (nondim.)"; ``quantity=`` names the field). Nothing here calls
``plt.show()``: functions return a figure or a widget, and figures are closed in pyplot so that
Jupyter shows them once, as the value of the cell.

Interactive (need ``ipywidgets``; render in plain JupyterLab, no ipympl):

* :func:`field_player` — a play button and a time slider over fields side by side
  (1D lines in distinct styles, 2D images with one colour scale), optionally with error panels
* :func:`compare_rollout` — truth vs prediction vs error with a time slider
* :class:`FieldPlayer` — the widget both return (``.slider``, ``.play``, ``.figure``, ``.artists``).
  Its display also carries a self-contained animation, shown where no kernel runs the widget
  (a stored notebook, its HTML export, GitHub).

Where widgets do not render:

* :func:`animate` — the player's figure as a matplotlib ``FuncAnimation``
* :func:`to_html` — an animation as self-contained HTML (``to_jshtml`` without CDN icons)

Static figures:

* :func:`spacetime` — x-t images of 1D trajectories side by side
* :func:`plot_param_field` — learned vs true parameter field, observed region marked,
  relative L2 error in the title; in 1D optionally a 95 % uncertainty band (``band=`` std)
* :func:`plot_losses` — loss curves of one or several runs, phase boundaries marked
* :func:`plot_rollout_errors` — error against rollout step, one distinct curve per model (log axis)
* :func:`plot_spread` — a metric per case (e.g. observed fraction) over seeds: mean with error
  bars, one curve per model
* :func:`plot_cycles` — a hybrid run's per-cycle real-data losses before / after each update,
  reverted updates marked
* :func:`plot_param_trajectory` — the parameter estimate per cycle against the truth

Notebook export (needs ``nbconvert``, in the ``notebooks`` extra):

* :func:`export_notebook` — execute a notebook and write it with self-contained HTML (what
  ``python -m hybridkit notebooks`` does), returning a :class:`NotebookExport`
* :func:`offline_html` — a notebook as HTML with MathML formulas and no CDN scripts
* :func:`remote_assets` — URLs an HTML page would load from the network
* :func:`count_animations` — the self-contained animations an HTML page holds
* :func:`strip_widgets` — drop widget views / state from a notebook, keep their fallbacks
"""
from ._animate import animate, to_html
from ._curves import plot_losses, plot_rollout_errors, plot_spread
from ._history import plot_cycles, plot_param_trajectory
from ._params import plot_param_field
from ._spacetime import spacetime

__all__ = [
    "FieldPlayer",
    "NotebookExport",
    "animate",
    "compare_rollout",
    "count_animations",
    "export_notebook",
    "field_player",
    "offline_html",
    "plot_cycles",
    "plot_losses",
    "plot_param_field",
    "plot_param_trajectory",
    "plot_rollout_errors",
    "plot_spread",
    "remote_assets",
    "spacetime",
    "strip_widgets",
    "to_html",
]

# Optional dependencies (extras "notebooks", "dev"): imported only when asked for, so that the
# static figures work in a plain install.
_LAZY = {
    "FieldPlayer": ("_player", "ipywidgets"),
    "field_player": ("_player", "ipywidgets"),
    "compare_rollout": ("_player", "ipywidgets"),
    "NotebookExport": ("_export", "nbconvert and latex2mathml"),
    "count_animations": ("_export", "nbconvert and latex2mathml"),
    "export_notebook": ("_export", "nbconvert and latex2mathml"),
    "offline_html": ("_export", "nbconvert and latex2mathml"),
    "remote_assets": ("_export", "nbconvert and latex2mathml"),
    "strip_widgets": ("_export", "nbconvert and latex2mathml"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, needs = _LAZY[name]
        try:
            from importlib import import_module

            mod = import_module(f".{module}", __name__)
        except ModuleNotFoundError as exc:
            raise ImportError(
                f"hybridkit.viz.{name} needs {needs} ({exc}). "
                "Fix: pip install 'hybridkit[notebooks]'."
            ) from exc
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
