"""Run the whole benchmark suite and print one table (``make bench``).

Every benchmark times hybridkit against a reference doing the same work (checked where it can
be: the same step to float32 round-off, the same losses), repeats the timing several times in
alternating order and reports medians:

================================  ===========================================================
``bench_physics_step``            Burgers step (1D, 2D) vs the same scheme in plain torch
``bench_synthetic_trainer``       SyntheticTrainer epoch vs a bare PyTorch loop; the FNO's
                                  and the NeuralField's epochs next to the UNet's
``bench_data_loading``            windows from HDF5 (cached, streaming) vs in memory, alone and
                                  feeding a training epoch
``bench_streaming_memory``        peak resident memory streaming a file larger than the cache
``bench_physical_recovery``       PhysicalTrainer fit vs ``torch.optim.LBFGS`` on the same scheme
``bench_origin_scale``            HYCO at the origin project's size against the 3-minute target
``bench_timestep_control``        a fit with automatic substeps vs the right substeps by hand;
                                  the fit with joint initial states vs the plain one
================================  ===========================================================

``ratio`` is reference time / hybridkit time (higher is better, 1.0 = as fast) except where the
note says otherwise. Benchmarks are not tests: ``make test`` never runs them.

    .venv/bin/python benchmarks/run_all.py                 # full suite (~3 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick         # fewer repeats, smaller cases
    .venv/bin/python benchmarks/run_all.py --only physics trainer
    .venv/bin/python benchmarks/run_all.py --write-readme  # table into README.md between markers
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import Row, setup  # noqa: E402

SUITE = {  # short name -> module
    "physics": "bench_physics_step",
    "trainer": "bench_synthetic_trainer",
    "loading": "bench_data_loading",
    "memory": "bench_streaming_memory",
    "recovery": "bench_physical_recovery",
    "origin": "bench_origin_scale",
    "timestep": "bench_timestep_control",
}
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine(threads: int) -> str:
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU"
    return (f"{datetime.date.today()}, {platform.machine()} with {os.cpu_count()} cores (load average "
            f"{load:.1f} at the start), {dev}, torch {torch.__version__}, {threads} torch thread(s)")


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | hybridkit | reference | ratio | target | met? | note |",
             "|---|---|---|---:|---|:---:|---|"]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.hybridkit} | {r.reference} | {r.ratio:.2f} | {r.target} | {met} | {r.note} |")
    return "\n".join(lines)


def write_readme(text: str, readme: Path) -> None:
    """Replace what lies between the bench markers (or append a section holding them)."""
    old = readme.read_text()
    block = f"{START}\n{text}\n{END}"
    if START in old and END in old:
        new = old[:old.index(START)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n## Benchmarks\n\n" + block + "\n"
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller cases")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1; 0: as is)")
    p.add_argument("--only", nargs="+", choices=sorted(SUITE), help="run only these")
    p.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    setup(args.threads)
    import torch

    header = machine(torch.get_num_threads())
    print(f"hybridkit benchmarks: {header}", flush=True)
    rows: list[Row] = []
    for name in args.only or list(SUITE):
        t0 = time.perf_counter()
        print(f"  running {name} ...", end=" ", flush=True)
        got = importlib.import_module(SUITE[name]).suite(quick=args.quick)
        rows += got
        print(f"{time.perf_counter() - t0:.0f} s", flush=True)
    text = table(rows)
    print()
    print(text)
    missed = [r.benchmark for r in rows if r.met is False]
    print(f"\n{sum(r.met is True for r in rows)} targets met, {len(missed)} missed"
          + (f": {', '.join(missed)}" if missed else ""))
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in asdict(r).items() if k != "extra"} for r in rows], indent=1))
    if args.write_readme:
        mode = "quick run" if args.quick else "full run"
        write_readme(f"Measured {header} ({mode}, `make bench`).\n\n{text}", HERE.parent / "README.md")
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
