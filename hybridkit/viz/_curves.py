"""Curves over epochs, rollout steps and cases: loss histories, rollout errors of several models,
a metric per case over seeds."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ._inputs import to_numpy, with_units
from ._panels import line_style, new_figure

MARK_STYLES = ({"color": "0.25", "ls": "--"}, {"color": "0.45", "ls": ":"}, {"color": "C3", "ls": "-."})


def plot_losses(history, *, log: bool = True, xlabel: str = "epoch", ylabel: str = "loss",
                marks: Mapping | None = None, title: str | None = None, figsize=None):
    """Loss curves, several runs on one axis with labels, phase boundaries marked.

    Args:
        history: one of
            * a sequence of losses (one per epoch);
            * ``name -> sequence``, e.g. a trainer's ``history`` (``{"loss": [...]}``) or
              ``{"synthetic": [...], "hybrid": [...]}``;
            * ``run -> history``, e.g. ``{"synthetic": trainer_s.history, "hybrid":
              trainer_h.history}``; a curve is labelled ``run`` when its history holds one
              sequence, else ``run: key``.
        log: logarithmic loss axis (linear when a curve has values <= 0, which a log axis hides;
            the axis label then says so).
        xlabel, ylabel: what one step of a curve is, and what is plotted.
        marks: ``label -> n`` or ``label -> [n, ...]``: a vertical line after ``n`` steps (between
            step ``n`` and ``n + 1``), one line style per label, e.g. ``{"end of warm-up": 5,
            "cycle start": [5, 10, 15]}``.
        title: default ``"<ylabel> per <xlabel>"``.

    Returns:
        A matplotlib ``Figure``; epoch ``k`` of a curve is drawn at ``x = k + 1``.

    Raises:
        ValueError: when nothing is given, a curve is not a 1D sequence of numbers, or a mark is
            not a number of steps.
    """
    curves = _curves(history)
    marks = _marks(marks)
    fig, (ax,) = new_figure(1, width=6.0, height=3.8, figsize=figsize)
    for k, (label, values) in enumerate(curves.items()):
        style = line_style(k, len(values)) if len(curves) > 1 else {"lw": 1.8, "color": "C0"}
        if len(values) < 20 and "marker" not in style:
            style.update(marker="o", ms=3)
        ax.plot(np.arange(1, len(values) + 1), values, label=label, **style)
    for k, (label, steps) in enumerate(marks.items()):
        for i, n in enumerate(steps):
            ax.axvline(n + 0.5, lw=1.2, label=label if i == 0 else None, **MARK_STYLES[k % len(MARK_STYLES)])
    positive = all(np.all(v[np.isfinite(v)] > 0) for v in curves.values())
    if log and positive:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if positive or not log else f"{ylabel} (linear axis: values <= 0)")
    ax.grid(alpha=0.3, which="both" if log and positive else "major")
    if len(curves) > 1 or next(iter(curves)) != "loss" or marks:
        ax.legend(fontsize="small")
    ax.set_title(title if title is not None else f"{ylabel} per {xlabel}")
    return fig


def _marks(marks) -> dict[str, list[float]]:
    if marks is None:
        return {}
    if not isinstance(marks, Mapping):
        raise ValueError(f"Expected marks as a dict label -> number of steps (or a list of them), got "
                         f"{type(marks).__name__}. Fix: e.g. marks={{'end of warm-up': 5}}.")
    out = {}
    for label, steps in marks.items():
        values = np.atleast_1d(np.asarray(steps, dtype=object))
        try:
            numbers = [float(v) for v in values if not isinstance(v, bool)]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) != len(values) or not all(np.isfinite(numbers)):
            raise ValueError(f"Expected mark {label!r} as a number of steps or a list of them, got "
                             f"{steps!r}. Fix: e.g. {{'{label}': [5, 10]}}.")
        out[str(label)] = numbers
    return out


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


def plot_rollout_errors(errors_by_model, *, dt: float | None = None, log: bool = True,
                        ylabel: str = "relative L2 error", title: str | None = None, figsize=None):
    """Error against rollout step, one curve per model, each in its own colour, line style and
    markers (a curve that lies on another stays visible).

    Args:
        errors_by_model: ``label -> (steps,)`` errors, or ``(samples, steps)`` for several
            trajectories: then the mean is drawn with a band from the 25th to the 75th percentile.
            Entry ``k`` is the error after ``k + 1`` steps. The labels are the legend: say which
            model of which run, e.g. ``"physical model (hybrid run)"``.
        dt: time per step, to put time (nondim.) on the horizontal axis (else the step number).
        log: logarithmic error axis (errors of very different sizes, e.g. 1e-8 and 0.1, stay
            apart). A curve that is 0 everywhere cannot be drawn on it: its label says so.
        title: default ``"rollout error against time"`` (or "... against step").

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
        label = str(model)
        if log and not np.any(mean > 0):
            label += " (0 at every step: not drawn on the log axis)"
        style = line_style(k, len(x))
        if len(x) < 20 and "marker" not in style:
            style.update(marker="o", ms=3)
        ax.plot(x, mean, label=label, **style)
        if e.ndim == 2 and e.shape[0] > 1:
            lo, hi = np.nanpercentile(e, [25, 75], axis=0)
            ax.fill_between(x, lo, hi, color=style["color"], alpha=0.15, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("rollout step" if dt is None else f"rollout {with_units('time t')}")
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else f"rollout error against {'step' if dt is None else 'time'}")
    return fig


def plot_spread(values_by_model, *, xlabel: str = "case", ylabel: str = "relative L2 error", log: bool = True,
                title: str | None = None, figsize=None):
    """A metric per case (e.g. per observed fraction), one curve per model: the mean over repeats
    (seeds) with error bars of one standard deviation, and each repeat as a faint dot.

    The cases are categories, placed at ``0, 1, 2, ...`` in the order of the first model; each
    model's points are shifted a little sideways so that equal values stay visible, and curves
    differ in colour, line style and markers.

    Args:
        values_by_model: ``model label -> {case label -> values}``, ``values`` a number or a
            sequence of them (one per seed); every model has the same cases.
        xlabel, ylabel: what the cases are and what is plotted.
        log: logarithmic value axis (linear when a value is <= 0, which a log axis hides; the
            axis label then says so). On the log axis a bar whose mean - std would be <= 0 stops
            at the smallest repeat.
        title: default ``"<ylabel> per <xlabel>"``.

    Returns:
        A matplotlib ``Figure``; the mean curve of model ``k`` is ``axes[0].get_lines()[k]``.

    Raises:
        ValueError: when nothing is given, the models' cases differ, or a case has no finite value.
    """
    table = _spread_table(values_by_model)
    cases = list(next(iter(table.values())))
    positive = all(np.all(v > 0) for per in table.values() for v in per.values())
    log = log and positive
    fig, (ax,) = new_figure(1, width=6.0, height=3.8, figsize=figsize)
    x = np.arange(len(cases), dtype=float)
    shift = 0.06 * (np.arange(len(table)) - (len(table) - 1) / 2)
    for k, (model, per) in enumerate(table.items()):
        mean = np.array([per[c].mean() for c in cases])
        std = np.array([per[c].std() for c in cases])
        low = np.array([per[c].min() for c in cases])
        lower = np.where(log & (mean - std <= 0), mean - low, std)
        style = line_style(k, len(cases))
        style.setdefault("marker", "o")
        style.pop("markevery", None)
        xs = x + shift[k]
        ax.plot(xs, mean, label=str(model), **style)
        ax.errorbar(xs, mean, yerr=[lower, std], fmt="none", ecolor=style["color"], elinewidth=1.4, capsize=4)
        for i, c in enumerate(cases):
            ax.plot(np.full(per[c].size, xs[i]), per[c], ls="none", marker=".", ms=5, alpha=0.35,
                    color=style["color"])
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x, [str(c) for c in cases])
    ax.set_xlim(-0.5, len(cases) - 0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if log or not positive else f"{ylabel} (linear axis: values <= 0)")
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else f"{ylabel} per {xlabel}")
    return fig


def _spread_table(values_by_model) -> dict[str, dict[str, np.ndarray]]:
    if not isinstance(values_by_model, Mapping) or not values_by_model:
        raise ValueError(f"Expected a dict model label -> {{case -> values}}, got {values_by_model!r:.80}. Fix: e.g. "
                         "{'physical only': {'full': [0.01, 0.02], 'half': [0.3, 0.2]}}.")
    table, cases = {}, None
    for model, per in values_by_model.items():
        if not isinstance(per, Mapping) or not per:
            raise ValueError(f"Expected the values of {model!r} as a dict case -> values, got {per!r:.80}. Fix: "
                             "e.g. {'full': [0.01, 0.02], 'half': [0.3, 0.2]}.")
        if cases is not None and list(per) != cases:
            raise ValueError(f"Expected every model to have the cases {cases}, got {list(per)} for {model!r}. "
                             "Fix: give each model a value for each case, in the same order.")
        cases = list(per)
        table[str(model)] = {}
        for case, values in per.items():
            v = to_numpy(values, what=f"values of {model!r} at {case!r}").astype(np.float64).ravel()
            v = v[np.isfinite(v)]
            if v.size == 0:
                raise ValueError(f"Expected at least one finite value of {model!r} at {case!r}, got {values!r:.80}. "
                                 "Fix: pass the metric's value for each seed.")
            table[str(model)][str(case)] = v
    return table
