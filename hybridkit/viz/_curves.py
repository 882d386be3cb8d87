"""Curves over epochs and rollout steps: loss histories, rollout errors of several models."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ._inputs import to_numpy
from ._panels import new_figure


def plot_losses(history, *, log: bool = True, xlabel: str = "epoch", title: str | None = None,
                figsize=None):
    """Loss curves, several runs on one axis with labels.

    Args:
        history: one of
            * a sequence of losses (one per epoch);
            * ``name -> sequence``, e.g. a trainer's ``history`` (``{"loss": [...]}``) or
              ``{"synthetic": [...], "hybrid": [...]}``;
            * ``run -> history``, e.g. ``{"synthetic": trainer_s.history, "hybrid":
              trainer_h.history}``; a curve is labelled ``run`` when its history holds one
              sequence, else ``run: key``.
        log: logarithmic loss axis.
        xlabel: what one step of a curve is.

    Returns:
        A matplotlib ``Figure``; epoch ``k`` of a curve is drawn at ``x = k + 1``.

    Raises:
        ValueError: when nothing is given or a curve is not a 1D sequence of numbers.
    """
    curves = _curves(history)
    fig, (ax,) = new_figure(1, width=6.0, height=3.8, figsize=figsize)
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.8, label=label,
                marker="o" if len(values) < 20 else None, ms=3)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, which="both" if log else "major")
    if len(curves) > 1 or next(iter(curves)) != "loss":
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def _curves(history) -> dict[str, np.ndarray]:
    if not isinstance(history, Mapping):
        history = {"loss": history}
    curves = {}
    for run, value in history.items():
        if isinstance(value, Mapping):
            for key, inner in value.items():
                curves[str(run) if len(value) == 1 else f"{run}: {key}"] = _curve(inner, f"{run}/{key}")
        else:
            curves[str(run)] = _curve(value, str(run))
    if not curves or all(c.size == 0 for c in curves.values()):
        raise ValueError(
            "Expected at least one non-empty loss curve, got none. Fix: pass e.g. trainer.history "
            "after training, or {'run': [loss per epoch]}."
        )
    return curves


def _curve(values, what: str) -> np.ndarray:
    try:
        a = to_numpy(values, what=what)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Expected a sequence of numbers for curve {what!r}: {exc}") from None
    if a.ndim != 1:
        raise ValueError(f"Expected a 1D sequence of losses for curve {what!r}, got shape {a.shape}.")
    return a


def plot_rollout_errors(errors_by_model, *, dt: float | None = None, log: bool = False,
                        ylabel: str = "relative L2 error", title: str | None = None, figsize=None):
    """Error against rollout step, one curve per model.

    Args:
        errors_by_model: ``model name -> (steps,)`` errors, or ``(samples, steps)`` for several
            trajectories: then the mean is drawn with a band from the 25th to the 75th percentile.
            Entry ``k`` is the error after ``k + 1`` steps.
        dt: time per step, to put time on the horizontal axis (else the step number).
        log: logarithmic error axis.

    Returns:
        A matplotlib ``Figure``.

    Raises:
        ValueError: when empty or an entry is not ``(steps,)`` / ``(samples, steps)``.
    """
    if not isinstance(errors_by_model, Mapping) or not errors_by_model:
        raise ValueError(
            "Expected a dict model name -> errors per step, got "
            f"{type(errors_by_model).__name__}. Fix: e.g. {{'UNet': errors}}."
        )
    fig, (ax,) = new_figure(1, width=6.0, height=3.8, figsize=figsize)
    for k, (model, errors) in enumerate(errors_by_model.items()):
        e = to_numpy(errors, what=f"errors of {model!r}")
        if e.ndim not in (1, 2) or e.shape[-1] == 0:
            raise ValueError(
                f"Expected errors of {model!r} of shape (steps,) or (samples, steps), got {e.shape}."
            )
        steps = np.arange(1, e.shape[-1] + 1, dtype=float)
        x = steps if dt is None else steps * dt
        mean = e if e.ndim == 1 else np.nanmean(e, axis=0)
        ax.plot(x, mean, lw=1.8, color=f"C{k}", label=str(model),
                marker="o" if len(x) < 20 else None, ms=3)
        if e.ndim == 2 and e.shape[0] > 1:
            lo, hi = np.nanpercentile(e, [25, 75], axis=0)
            ax.fill_between(x, lo, hi, color=f"C{k}", alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("rollout step" if dt is None else "rollout time")
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
