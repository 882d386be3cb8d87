"""The evidence: every scenario of ``configs/evidence_*.yaml`` in compare mode, over several seeds.

A seed sets the data (initial states of the training and held-out simulations, the noise) and
the network's initial weights (``data.seed`` and ``synthetic.init_seed``). Each (scenario, seed)
is one compare-mode run: physical only, synthetic only and hybrid on the same data and budget.
``evidence.json`` holds one record per scenario, seed and metric; the table gives the mean and
the standard deviation over the seeds of each mode's value and of the paired ratio
``hybrid / best single model`` (the ratio taken seed by seed, then averaged).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .._io import atomic_write
from ._bound import information_bound
from ._config import ConfigError, load_config
from ._modes import run_experiment
from ._report import comparison_rows

__all__ = ["run_evidence", "evidence_records", "evidence_table", "scenario_configs", "DEFAULT_SEEDS"]

_ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- evidence:start -->", "<!-- evidence:end -->"
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


def scenario_configs(directory: Path | None = None) -> list[Path]:
    """The scenario configs, in name order."""
    return sorted((directory or _ROOT / "configs").glob("evidence_*.yaml"))


def run_evidence(out: Path, *, seeds: Sequence[int] = DEFAULT_SEEDS, overrides: Sequence[str] = (),
                 write_readme: bool = False, progress: bool = False, configs: Sequence[Path] | None = None,
                 log=print) -> str:
    """Run every scenario over ``seeds``; write ``out/evidence.json``; return the markdown table.

    Args:
        out: where the runs (``out/<scenario>/seed_<k>/``) and ``evidence.json`` go.
        seeds: the seeds (each sets ``data.seed`` and ``synthetic.init_seed``).
        overrides: ``key=value`` applied to every scenario (after the seed).
        write_readme: replace the table between the evidence markers of README.md.
        configs: scenario files (default :func:`scenario_configs`).
    """
    out = Path(out)
    records, seconds, bounds = [], {}, {}
    total = time.perf_counter()
    for path in configs or scenario_configs():
        t0 = time.perf_counter()
        for seed in seeds:
            cfg, _ = load_config(path, [f"data.seed={int(seed)}", f"synthetic.init_seed={int(seed)}",
                                        *overrides, "mode=compare"])
            log(f"[evidence] {cfg.name} seed {seed}")
            result = run_experiment(cfg, out / cfg.name / f"seed_{int(seed)}", progress=progress, resume=False,
                                    log=log)
            records += evidence_records(cfg.name, int(seed), result)
            bound = scenario_bound(cfg)
            if bound:
                bounds.setdefault(cfg.name, []).append(bound)
        seconds[cfg.name] = time.perf_counter() - t0
    doc = {"seeds": [int(s) for s in seeds], "seconds": seconds, "records": records, "bounds": bounds}
    atomic_write(out / "evidence.json", json.dumps(doc, indent=1))
    table = evidence_table(records, seconds, bounds)
    table += f"\nAll scenarios, {len(seeds)} seeds each: {time.perf_counter() - total:.0f} s on this machine.\n"
    if write_readme:
        write_table(_ROOT / "README.md", table)
    return table


def evidence_records(scenario: str, seed: int, result: dict) -> list[dict]:
    """One record per metric of a compare-mode result (:func:`comparison_rows`): the three
    modes' values (None where a mode has no such metric) and ``hybrid / best baseline``."""
    return [{"scenario": scenario, "seed": seed, "metric": name, "physical": a, "synthetic": s, "hybrid": h,
             "ratio": ratio} for name, a, s, h, ratio in comparison_rows(result)]


def scenario_bound(cfg) -> dict | None:
    """``name -> the smallest expected relative error`` of the scalar coefficients of a noisy
    scenario (:func:`~hybridkit.experiment.information_bound`, initial states unknown); None for
    noiseless data or field coefficients only."""
    try:  # information_bound refuses noiseless data before any work
        return {k: b["mean_abs_error"] for k, b in information_bound(cfg).items()}
    except ConfigError:
        return None


def evidence_table(records: Sequence[dict], seconds: dict | None = None, bounds: dict | None = None) -> str:
    """The markdown table of :func:`evidence_records` over seeds: ``mean ± std`` per mode and of
    the paired ratio, and how many seeds the hybrid was better (ratio < 1); under it a line per
    coefficient with a Cramér-Rao bound (``bounds``: scenario -> one ``name -> error`` per seed)."""
    rows = ["| scenario | metric | physical only | synthetic only | hybrid | hybrid / best single (paired) "
            "| better in |", "|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["scenario"], r["metric"]) for r in records))
    for scenario, metric in keys:
        group = [r for r in records if (r["scenario"], r["metric"]) == (scenario, metric)]
        label = scenario if not seconds or scenario not in seconds else f"{scenario} ({seconds[scenario]:.0f} s)"
        cells = [_spread([r[m] for r in group]) for m in ("physical", "synthetic", "hybrid", "ratio")]
        better = sum(1 for r in group if r["ratio"] < 1)
        rows.append(f"| {label} | {metric} | " + " | ".join(cells) + f" | {better} of {len(group)} |")
    text = "\n".join(rows) + "\n"
    for scenario, per_seed in (bounds or {}).items():
        for name in per_seed[0]:
            v = np.asarray([b[name] for b in per_seed], dtype=np.float64)
            text += (f"\n{scenario}, {name}: the Cramér-Rao bound (initial states unknown) allows a mean relative "
                     f"error of no less than {v.mean():.3g} for an unbiased estimate ({v.min():.3g}-{v.max():.3g} "
                     f"over the {len(v)} seeds; `python -m hybridkit bound`).\n")
    return text


def _spread(values) -> str:
    """``mean ± std`` (3 significant digits), ``-`` when the mode has no such metric."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    a = np.asarray(values, dtype=np.float64)
    return f"{a.mean():.3g} ± {a.std():.2g}" if len(a) > 1 else f"{a[0]:.3g}"


def write_table(readme: Path, table: str) -> None:
    """Replace the text between the evidence markers of ``readme`` by ``table``."""
    text = readme.read_text()
    block = f"{START}\n{table}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## Evidence\n\n{block}\n"
    atomic_write(readme, text)
