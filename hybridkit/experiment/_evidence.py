"""The evidence table: each scenario of ``configs/evidence_*.yaml`` run in compare mode."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

from ._config import load_config
from ._run import run_experiment

_ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- evidence:start -->", "<!-- evidence:end -->"


def scenario_configs(directory: Path | None = None) -> list[Path]:
    """The scenario configs, in name order."""
    return sorted((directory or _ROOT / "configs").glob("evidence_*.yaml"))


def run_evidence(out: Path, *, overrides: Sequence[str] = (), write_readme: bool = False,
                 progress: bool = False, configs: Sequence[Path] | None = None, log=print) -> str:
    """Run every scenario (compare mode) and return the markdown table (optionally into README)."""
    rows = ["| scenario | metric | physical only | synthetic only | hybrid | hybrid / best baseline |",
            "|---|---|---|---|---|---|"]
    total = time.perf_counter()
    for path in configs or scenario_configs():
        cfg, _ = load_config(path, list(overrides) + ["mode=compare"])
        t0 = time.perf_counter()
        result = run_experiment(cfg, Path(out) / cfg.name, progress=progress, resume=False, log=log)
        rows += scenario_rows(cfg.name, result, time.perf_counter() - t0)
    table = "\n".join(rows) + "\n"
    table += f"\nAll scenarios: {time.perf_counter() - total:.0f} s on this machine.\n"
    if write_readme:
        write_table(_ROOT / "README.md", table)
    return table


def scenario_rows(name: str, result: dict, seconds: float) -> list[str]:
    """Table rows of one comparison: parameter errors, then rollout errors of both models."""
    m = result["modes"]
    label = f"{name} ({seconds:.0f} s)"
    rows = []
    for p in sorted(m["physical"].get("param_error", {})):
        a, h = m["physical"]["param_error"][p], m["hybrid"]["param_error"][p]
        rows.append(_row(label, f"{p}: relative error", a, None, h))
        if p in m["hybrid"].get("param_error_unobserved", {}):
            a = m["physical"]["param_error_unobserved"][p]
            h = m["hybrid"]["param_error_unobserved"][p]
            rows.append(_row(label, f"{p}: error where unobserved", a, None, h))
    steps = len(m["synthetic"]["synthetic_rollout_error"])
    rows.append(_row(label, f"network rollout error, step {steps}", None,
                     m["synthetic"]["synthetic_rollout_error"][-1], m["hybrid"]["synthetic_rollout_error"][-1]))
    rows.append(_row(label, f"physical rollout error, step {steps}", m["physical"]["physical_rollout_error"][-1],
                     None, m["hybrid"]["physical_rollout_error"][-1]))
    return rows


def _row(label, metric, phys, synth, hybrid) -> str:
    best = min(v for v in (phys, synth) if v is not None)
    fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
    return f"| {label} | {metric} | {fmt(phys)} | {fmt(synth)} | {fmt(hybrid)} | {hybrid / max(best, 1e-30):.2f} |"


def write_table(readme: Path, table: str) -> None:
    """Replace the text between the evidence markers of ``readme`` by ``table``."""
    text = readme.read_text()
    block = f"{START}\n{table}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## Evidence\n\n{block}\n"
    readme.write_text(text)
