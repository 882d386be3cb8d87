"""The evidence table: each scenario of ``configs/evidence_*.yaml`` run in compare mode."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

from ._config import load_config
from ._modes import run_experiment
from ._report import comparison_rows, markdown_row

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
    """Table rows of one comparison (:func:`comparison_rows`), labelled with the scenario."""
    label = f"{name} ({seconds:.0f} s)"
    return [markdown_row(label, *row) for row in comparison_rows(result)]


def write_table(readme: Path, table: str) -> None:
    """Replace the text between the evidence markers of ``readme`` by ``table``."""
    text = readme.read_text()
    block = f"{START}\n{table}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## Evidence\n\n{block}\n"
    readme.write_text(text)
