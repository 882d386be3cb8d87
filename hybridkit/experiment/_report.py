"""Reporting an experiment: comparison rows, the markdown table, one-line summaries, plots, JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ._data import ExperimentData
from ._evaluate import plain

__all__ = ["comparison_rows", "markdown_row", "summary_table", "one_line", "write_plots", "write_json"]

def comparison_rows(result: dict) -> list[tuple]:
    """The metrics of a comparison as ``(metric, physical only, synthetic only, hybrid, ratio)``:
    parameter errors (and where unobserved), then each model's rollout error at the last step.
    A baseline that does not have the metric is None; ratio = hybrid / best baseline."""
    m = result["modes"]
    rows = []
    for p in sorted(m["physical"].get("param_error", {})):
        rows.append((f"{p}: relative error", m["physical"]["param_error"][p], None, m["hybrid"]["param_error"][p]))
        if p in m["hybrid"].get("param_error_unobserved", {}):
            rows.append((f"{p}: error where unobserved", m["physical"]["param_error_unobserved"][p], None,
                         m["hybrid"]["param_error_unobserved"][p]))
    steps = len(m["synthetic"]["synthetic_rollout_error"])
    rows.append((f"network rollout error, step {steps}", None, m["synthetic"]["synthetic_rollout_error"][-1],
                 m["hybrid"]["synthetic_rollout_error"][-1]))
    rows.append((f"physical rollout error, step {steps}", m["physical"]["physical_rollout_error"][-1], None,
                 m["hybrid"]["physical_rollout_error"][-1]))
    return [(name, a, s, h, h / max(min(v for v in (a, s) if v is not None), 1e-30)) for name, a, s, h in rows]


def markdown_row(*cells) -> str:
    """``| a | b | ... |`` with numbers as 3 significant digits, None as ``-``, the last as a ratio."""
    *cells, ratio = cells
    fmt = lambda v: "-" if v is None else (v if isinstance(v, str) else f"{v:.3g}")  # noqa: E731
    return "| " + " | ".join(fmt(c) for c in cells) + f" | {ratio:.2f} |"


def summary_table(result: dict) -> str:
    """A markdown table of a comparison: parameter and rollout errors of each mode."""
    rows = ["| metric | physical only | synthetic only | hybrid | hybrid / best baseline |", "|---|---|---|---|---|"]
    rows += [markdown_row(*r) for r in comparison_rows(result)]
    return "\n".join(rows) + "\n"


def one_line(m: dict) -> str:
    """A mode's metrics in one log line."""
    parts = []
    if "param_error" in m:
        parts.append("param error " + ", ".join(f"{k} {v:.3g}" for k, v in m["param_error"].items()))
    for key in ("synthetic_rollout_error", "physical_rollout_error"):
        if key in m:
            parts.append(f"{key.split('_')[0]} rollout error (last step) {m[key][-1]:.3g}")
    return "; ".join(parts)


def write_plots(result: dict, data: ExperimentData, run_dir: Path) -> None:
    """The run directory's figures: rollout errors of every mode, learned vs true fields."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from ..viz import plot_param_field, plot_rollout_errors

    curves = {}
    for mode, m in result["modes"].items():
        for key in ("synthetic_rollout_error", "physical_rollout_error"):
            if key in m:
                curves[f"{mode}: {key.split('_')[0]}"] = np.asarray(m[key])
    if curves:
        fig = plot_rollout_errors(curves, dt=data.model.dt)
        fig.savefig(run_dir / "rollout_errors.png", dpi=100)
    for mode, m in result["modes"].items():
        for name, v in m.get("params", {}).items():
            if np.ndim(v) >= 1 and np.ndim(data.true_params[name]) >= 1 and len(np.shape(v)) == data.model.grid.ndim:
                mask = data.observation.spatial if data.observation is not None else None
                fig = plot_param_field(np.asarray(v), np.asarray(data.true_params[name]), grid=data.model.grid,
                                       mask=mask, name=name)
                fig.savefig(run_dir / f"{mode}_{name}.png", dpi=100)


def write_json(path: Path, doc) -> None:
    """Write ``doc`` as JSON (plain data) atomically."""
    atomic_write(path, json.dumps(plain(doc), indent=1))
