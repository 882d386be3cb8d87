"""Reporting an experiment: comparison rows, tables, one-line summaries, the figures, summary.md, JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ._data import ExperimentData
from ._evaluate import plain

__all__ = ["comparison_rows", "markdown_row", "summary_table", "one_line", "write_figures", "summary_markdown",
           "mode_rows", "write_json", "RUN_LABELS", "RESULT_FILES", "FIGURE_PATTERNS"]

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


RUN_LABELS = {"physical": "physical-only run", "synthetic": "synthetic-only run", "hybrid": "hybrid run"}
#: files every run directory may hold besides its checkpoints (a fresh start removes them)
RESULT_FILES = ("metrics.json", "config.json", "summary.md")
FIGURE_PATTERNS = ("losses.png", "fits.png", "cycles.png", "rollout_errors.png", "param_*.png", "field_*.png")


def write_figures(result: dict, cfg, data: ExperimentData, run_dir: Path) -> list[tuple[str, str]]:
    """The run directory's figures; returns ``(caption, file name)`` of each, in reading order.

    * ``losses.png`` — the network's training loss per epoch (each run that trained one), the end
      of the warm-up and the cycles' starts marked;
    * ``fits.png`` — each physical fit's objective per loss evaluation, fits marked;
    * ``cycles.png`` — per cycle, each model's loss on the observed data before and after its
      update, reverted updates marked (hybrid);
    * ``param_<name>.png`` — the estimate after each cycle against the truth (hybrid);
    * ``rollout_errors.png`` — rollout error on the held-out simulations against time, one
      labelled curve per model and run, log axis;
    * ``field_<mode>_<name>.png`` — a learned coefficient field against the true one.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from ..viz import plot_cycles, plot_losses, plot_param_field, plot_param_trajectory, plot_rollout_errors

    modes, out = result["modes"], []

    def save(fig, name: str, caption: str) -> None:
        atomic_write(run_dir / name, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
        import matplotlib.pyplot as plt

        plt.close(fig)
        out.append((caption, name))

    losses = {f"network ({RUN_LABELS[m]})": modes[m]["loss"] for m in ("synthetic", "hybrid")
              if m in modes and modes[m].get("loss")}
    if losses:
        fig = plot_losses(losses, ylabel="training loss (rollout MSE)", marks=_epoch_marks(modes.get("hybrid"), cfg),
                          title="the network's training loss per epoch")
        save(fig, "losses.png", "Training loss of the network per epoch")
    fits = {f"physical model ({RUN_LABELS[m]})": _concat(modes[m]["fits"]) for m in ("physical", "hybrid")
            if m in modes and any(f["loss_history"] for f in modes[m].get("fits", []))}
    if fits:
        starts = _fit_starts(modes.get("physical", modes.get("hybrid"))["fits"]) if len(fits) == 1 else None
        fig = plot_losses(fits, xlabel="loss evaluation", ylabel="objective / its initial value",
                          marks={"start of a fit": starts} if starts else None,
                          title="the physical fits' objective per evaluation")
        save(fig, "fits.png", "Objective of each physical fit per loss evaluation")
    cycles = modes.get("hybrid", {}).get("cycles") or []
    if cycles:
        losses = [c[m][k] for c in cycles for m in ("synthetic", "physical")
                  for k in ("real_loss_before", "real_loss_after")]  # a loss of exactly 0: a linear axis
        save(plot_cycles(cycles, log=all(v > 0 for v in losses)), "cycles.png",
             "Loss on the observed data before and after each update, per cycle (reverted updates marked)")
        for name, true in data.true_params.items():
            values = [c["params"].get(name) for c in cycles]
            initial = modes["hybrid"].get("initial_params", {}).get(name)
            if any(v is None for v in values) or np.shape(values[0]) != np.shape(true):
                continue
            fig = plot_param_trajectory(values, true, name=name, initial=initial,
                                        reverted=[bool(c["physical"]["reverted"]) for c in cycles])
            save(fig, f"param_{name}.png", f"The estimate of {name} after each cycle against the truth")
    curves = {}
    for mode, m in modes.items():
        if "synthetic_rollout_error" in m:
            curves[f"network ({RUN_LABELS[mode]})"] = np.asarray(m["synthetic_rollout_error"])
        if "physical_rollout_error" in m:
            curves[f"physical model ({RUN_LABELS[mode]})"] = np.asarray(m["physical_rollout_error"])
    if curves:
        save(plot_rollout_errors(curves, dt=data.model.dt, title="rollout error on the held-out simulations"),
             "rollout_errors.png", "Rollout error on the held-out simulations (relative L2, log axis)")
    for mode, m in modes.items():
        for name, v in m.get("params", {}).items():
            if np.ndim(v) >= 1 and np.ndim(data.true_params[name]) >= 1 and len(np.shape(v)) == data.model.grid.ndim:
                mask = data.observation.spatial if data.observation is not None else None
                fig = plot_param_field(np.asarray(v), np.asarray(data.true_params[name]), grid=data.model.grid,
                                       mask=mask, name=name)
                save(fig, f"field_{mode}_{name}.png", f"Learned against true {name} ({RUN_LABELS[mode]})")
    return out


def _epoch_marks(hybrid: dict | None, cfg) -> dict | None:
    """The end of the warm-up and the first epoch of each cycle in the hybrid network's loss curve
    (a reverted synthetic update takes its epochs out of the curve)."""
    if not hybrid or not hybrid.get("cycles"):
        return None
    h, epoch, starts = cfg.hybrid, cfg.hybrid.warmup_epochs, []
    for c in hybrid["cycles"]:
        starts.append(epoch)
        if not c["synthetic"]["reverted"]:
            epoch += h.synthetic_epochs
    marks = {"end of warm-up": h.warmup_epochs} if h.warmup_epochs else {}
    later = sorted(set(starts[1:]) - {h.warmup_epochs})
    if later:
        marks["start of a cycle"] = later
    return marks or None


def _concat(fits: list[dict]) -> list[float]:
    return [v for f in fits for v in f["loss_history"]]


def _fit_starts(fits: list[dict]) -> list[int]:
    n, starts = 0, []
    for f in fits[:-1]:
        n += len(f["loss_history"])
        starts.append(n)
    return starts


def summary_markdown(result: dict, cfg, figures: list[tuple[str, str]]) -> str:
    """``summary.md``: what was run, the results on the held-out data, the figures embedded."""
    d = cfg.data
    lines = [f"# {cfg.name}", ""]
    if cfg.description:
        lines += [cfg.description, ""]
    region = "everywhere" if d.observed_region is None else f"in {d.observed_region}"
    grid = d.pde_params.get("resolution")
    runs = ", ".join(RUN_LABELS[m] for m in result["modes"])
    lines += [f"- **mode** {cfg.mode} ({runs}); {cfg.cycles} hybrid cycle(s)" if cfg.mode in ("hybrid", "compare")
              else f"- **mode** {cfg.mode} ({runs})",
              f"- **data** {d.pde} on {grid} cells, {d.num_train} observed simulation(s) ({d.noise:g} relative noise, "
              f"observed {region}), {d.num_test} held out, {d.num_frames} frames each",
              "- **files** [config.json](config.json) (the whole config), [metrics.json](metrics.json) (every number)",
              "", "## Results on the held-out simulations", ""]
    if cfg.mode == "compare":
        lines += [summary_table(result)]
    else:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in mode_rows(next(iter(result["modes"].values())))] + [""]
    if figures:
        lines += ["## Figures", ""]
        for caption, name in figures:
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def mode_rows(m: dict) -> list[tuple[str, str]]:
    """One mode's metrics as ``(metric, value)`` rows for a table."""
    rows = []
    for k, v in m.get("param_error", {}).items():
        rows.append((f"{k}: relative error", f"{v:.3g}"))
    for k, v in m.get("param_error_unobserved", {}).items():
        rows.append((f"{k}: error where unobserved", f"{v:.3g}"))
    for key, what in (("synthetic_rollout_error", "network"), ("physical_rollout_error", "physical model")):
        if key in m:
            rows.append((f"{what} rollout error, step {len(m[key])}", f"{m[key][-1]:.3g}"))
    if m.get("cycles"):
        for side in ("synthetic", "physical"):
            n = sum(bool(c[side]["reverted"]) for c in m["cycles"])
            rows.append((f"{side} updates reverted", f"{n} of {len(m['cycles'])}"))
    if m.get("fits"):
        rows.append(("physical fits", ", ".join(f["status"] for f in m["fits"])))
    if "seconds" in m:
        rows.append(("time", f"{m['seconds']:.1f} s"))
    return rows


def write_json(path: Path, doc) -> None:
    """Write ``doc`` as JSON (plain data) atomically."""
    atomic_write(path, json.dumps(plain(doc), indent=1))
