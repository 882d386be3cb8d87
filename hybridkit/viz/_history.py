"""Figures of a hybrid run's history, cycle by cycle: real-data losses, the parameter estimate.

Inputs are plain: a cycle is any object or dict with the fields named below (a history record
dataclass, or the dicts ``HybridTrainer.history`` holds), so these figures do not depend on the
trainer classes.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ._inputs import to_numpy, with_units
from ._panels import new_figure
from ._params import relative_l2

MODEL_LABELS = {"synthetic": "synthetic model (network)", "physical": "physical model (PDE)"}
BEFORE = {"marker": "o", "ms": 7, "mfc": "white", "mec": "C0", "ls": "none"}
AFTER = {"marker": "o", "ms": 5, "color": "C0", "ls": "none"}
REVERTED = {"marker": "x", "ms": 11, "mew": 2.2, "color": "C3", "ls": "none"}


def _field(entry, key: str, *, where: str):
    """``entry[key]`` or ``entry.key``."""
    if isinstance(entry, Mapping):
        if key in entry:
            return entry[key]
        known = list(entry)
    else:
        if hasattr(entry, key):
            return getattr(entry, key)
        known = [k for k in getattr(entry, "__dict__", {}) if not k.startswith("_")]
    raise ValueError(f"Expected {where} with a field {key!r} (a key or an attribute), got "
                     f"{type(entry).__name__} with {known}. Fix: pass the run's history records / "
                     "dicts, e.g. HybridTrainer.history.")


def _loss(value, what: str) -> float:
    v = np.asarray(to_numpy(value, what=what))
    if v.size != 1 or not np.isfinite(v.item()):
        raise ValueError(f"Expected {what} as one finite number, got {value!r}.")
    return float(v.item())


def plot_cycles(cycles: Sequence, *, models: Sequence[str] = ("synthetic", "physical"),
                labels: Mapping[str, str] | None = None, log: bool = True, title: str | None = None,
                figsize=None):
    """Per-cycle losses on the observed (real) data of each model, before and after its update,
    with the reverted updates marked: one panel per model.

    Args:
        cycles: one entry per cycle (a record or a dict) with a field per model (``models``),
            each holding ``real_loss_before``, ``real_loss_after`` and ``reverted``; an optional
            field ``cycle`` numbers the entry (else ``1, 2, ...``).
        models: the fields of a cycle to plot, one panel each.
        labels: panel titles per model (default "synthetic model (network)", "physical model
            (PDE)").
        log: logarithmic loss axes.

    Returns:
        A matplotlib ``Figure``. In each panel the hollow circles ("before the update") and the
        filled ones ("after the update") are joined per cycle; a red cross ("reverted (update
        undone)") sits on every update that was undone; the panel title counts them.

    Raises:
        ValueError: no cycles, or an entry without the fields above.
    """
    if isinstance(cycles, Mapping) or not isinstance(cycles, Sequence) or len(cycles) == 0:
        raise ValueError(f"Expected a non-empty list of cycle records, got {type(cycles).__name__}"
                         f"{'' if not isinstance(cycles, Sequence) else ' of length ' + str(len(cycles))}. "
                         "Fix: pass the run's per-cycle history (one entry per cycle).")
    if not models:
        raise ValueError("Expected at least one model to plot, got models=(). Fix: e.g. ('synthetic',).")
    labels = {**MODEL_LABELS, **(labels or {})}
    numbers = [_field(c, "cycle", where="a cycle") if _has(c, "cycle") else i + 1
               for i, c in enumerate(cycles)]
    x = np.asarray(numbers, dtype=float)
    fig, axes = new_figure(len(models), width=4.6, height=3.8, figsize=figsize)
    for ax, model in zip(axes, models):
        parts = [_field(c, model, where=f"cycle {n}") for c, n in zip(cycles, numbers)]
        before = np.array([_loss(_field(p, "real_loss_before", where=f"cycle {n} {model}"),
                                 f"cycle {n} {model} real_loss_before") for p, n in zip(parts, numbers)])
        after = np.array([_loss(_field(p, "real_loss_after", where=f"cycle {n} {model}"),
                                f"cycle {n} {model} real_loss_after") for p, n in zip(parts, numbers)])
        reverted = np.array([bool(_field(p, "reverted", where=f"cycle {n} {model}"))
                             for p, n in zip(parts, numbers)])
        for xi, b, a, r in zip(x, before, after, reverted):
            ax.plot([xi - 0.15, xi + 0.15], [b, a], color="C3" if r else "0.5", lw=1.2,
                    ls=":" if r else "-")
        ax.plot(x - 0.15, before, label="before the update", **BEFORE)
        ax.plot(x + 0.15, after, label="after the update", **AFTER)
        ax.plot(x[reverted] + 0.15, after[reverted], label="reverted (update undone)", **REVERTED)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("cycle")
        ax.set_ylabel("loss on the observed data")
        ax.set_xticks(x if len(x) <= 12 else np.unique(np.linspace(x[0], x[-1], 12).round()))
        ax.grid(alpha=0.3, which="both" if log else "major")
        ax.set_title(f"{labels.get(model, model)}\n{int(reverted.sum())} of {len(x)} updates reverted",
                     fontsize="medium")
    fig.legend(handles=axes[0].get_lines()[-3:], loc="outside lower center", ncols=3, fontsize="small",
               frameon=False)
    fig.suptitle(title if title is not None else "each update's effect on the loss on the observed data")
    return fig


def _has(entry, key: str) -> bool:
    return key in entry if isinstance(entry, Mapping) else hasattr(entry, key)


def plot_param_trajectory(values_per_cycle: Sequence, true_value, *, name: str = "parameter",
                          initial=None, reverted: Sequence[bool] | None = None, title: str | None = None,
                          figsize=None):
    """The physical parameter's estimate after each cycle against the truth.

    A scalar gets two panels: the value per cycle with the true value as a line, and its
    relative error ``|value - true| / |true|`` on a log axis (so 1e-8 and 1e-1 both show). A field
    gets one panel: the relative L2 error ``||value - true|| / ||true||`` per cycle (log axis).

    Args:
        values_per_cycle: the estimate after cycle ``1, 2, ...``: numbers, or arrays of one shape.
        true_value: the true value (a number, or an array of that shape).
        name: the parameter's name, for labels.
        initial: the estimate before the first cycle, drawn at cycle 0.
        reverted: per cycle, whether the physical update was undone (a red cross).
        title: default ``"<name> per cycle"``.

    Returns:
        A matplotlib ``Figure``; on its last axis (log scale) the curve labelled "relative
        error ..." holds the error per cycle (an exact 0 drawn at a floor, which the label names).

    Raises:
        ValueError: empty values, shapes that differ from ``true_value``, or ``reverted`` of
            another length.
    """
    if isinstance(values_per_cycle, Mapping) or not isinstance(values_per_cycle, Sequence) \
            or len(values_per_cycle) == 0:
        raise ValueError(f"Expected the estimate after each cycle as a non-empty list, got "
                         f"{type(values_per_cycle).__name__}. Fix: e.g. [record.params['{name}'] "
                         "for record in history].")
    true = to_numpy(true_value, what=f"true {name}")
    series = ([] if initial is None else [initial]) + list(values_per_cycle)
    values = [to_numpy(v, what=f"{name} estimate") for v in series]
    bad = [i for i, v in enumerate(values) if v.shape != true.shape]
    if bad:
        raise ValueError(f"Expected every {name} estimate of the true value's shape {true.shape}, got "
                         f"{values[bad[0]].shape} (entry {bad[0]}). Fix: pass one parameter at a time.")
    x = np.arange(len(values), dtype=float) + (0 if initial is not None else 1)
    errors = np.array([relative_l2(v, true) if true.ndim else _rel(v, true) for v in values])
    flags = _reverted(reverted, len(values_per_cycle), initial is not None)
    scalar = true.ndim == 0
    fig, axes = new_figure(2 if scalar else 1, width=4.6, height=3.8, figsize=figsize)
    if scalar:
        ax = axes[0]
        ax.axhline(float(true), color="k", lw=2.0, ls="--", label=f"true {name}")
        ax.plot(x, [float(v) for v in values], color="C1", marker="o", ms=4, lw=1.6,
                label=f"estimated {name}")
        _mark(ax, x, np.array([float(v) for v in values]), flags)
        ax.set_xlabel("cycle")
        ax.set_ylabel(with_units(name))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    ax = axes[-1]
    zero = errors == 0  # exact: a log axis cannot show it, so it is drawn at a floor and said so
    floor = min(1e-16, errors[errors > 0].min() / 10) if (errors > 0).any() else 1e-16
    label = "relative error" + (f" (exactly 0 drawn at {floor:.0e})" if zero.any() else "")
    shown = np.where(zero, floor, errors)
    ax.plot(x, shown, color="C1", marker="o", ms=4, lw=1.6, label=label)
    _mark(ax, x, shown, flags)
    ax.set_yscale("log")
    ax.set_xlabel("cycle")
    ax.set_ylabel("relative error" if scalar else "relative L2 error")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.suptitle(title if title is not None else f"{name} per cycle")
    return fig


def _rel(v: np.ndarray, true: np.ndarray) -> float:
    err = abs(float(v) - float(true))
    return err / abs(float(true)) if float(true) != 0 else err


def _reverted(reverted, cycles: int, has_initial: bool) -> np.ndarray:
    if reverted is None:
        return np.zeros(cycles + has_initial, dtype=bool)
    flags = np.asarray(reverted, dtype=bool)
    if flags.shape != (cycles,):
        raise ValueError(f"Expected reverted with one flag per cycle ({cycles}), got shape {flags.shape}.")
    return np.concatenate([[False] * has_initial, flags]).astype(bool)


def _mark(ax, x, y, flags) -> None:
    if flags.any():
        ax.plot(x[flags], y[flags], label="physical update reverted", **REVERTED)
