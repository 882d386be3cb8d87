"""Command line: ``python -m hybridkit <command>``.

Commands:
    demo       generate (or reuse) the default 1D Burgers dataset and print what it holds.
    run        run an experiment from a YAML config (physical, synthetic, hybrid or compare mode).
    evidence   run the evidence scenarios (configs/evidence_*.yaml) and print / write the table.
    notebooks  execute notebooks/*.ipynb headless (full mode) into a results folder, with
               self-contained HTML (formulas as MathML, players as animations, nothing from a CDN).

Every command checks what it can before any work. An error the user can fix is one line,
``error: <what> (Fix: <fix>)``, exit 2; a traceback appears only for a bug in hybridkit, and the
line after it says so (exit 1). Ctrl-C / SIGTERM: one line saying what was kept, exit 130 / 143.
Repeated warnings are shown once and counted at the end.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

_DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "burgers1d_default.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hybridkit`` and the ``hybridkit`` script; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m hybridkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    demo = sub.add_parser("demo", help="generate (or reuse) the default dataset and describe it")
    demo.add_argument("--out", type=Path, default=None,
                      help="directory for the dataset (default: $HYBRIDKIT_DATA/datasets or data/datasets)")
    demo.add_argument("--config", type=Path, default=None,
                      help=f"YAML config with a `data` section (default: {_DEFAULT_CONFIG.name} "
                           "when present, else built-in defaults)")
    demo.add_argument("--force", action="store_true", help="regenerate even if an up-to-date file exists")
    demo.set_defaults(run=_demo)

    run = sub.add_parser("run", help="run an experiment from a YAML config")
    run.add_argument("config", type=Path, help="YAML experiment config (see configs/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set hybrid.alpha_synthetic=0.5 (repeatable)")
    run.add_argument("--mode", choices=("physical", "synthetic", "hybrid", "compare"), default=None,
                     help="override the config's mode")
    run.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<name>)")
    run.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    run.add_argument("--fresh", action="store_true",
                     help="ignore checkpoints in the run directory (default: resume from them)")
    run.set_defaults(run=_run)

    ev = sub.add_parser("evidence", help="run the evidence scenarios over several seeds and print the table")
    ev.add_argument("--out", type=Path, default=Path("results") / "evidence",
                    help="where the runs and evidence.json go (default: results/evidence)")
    ev.add_argument("--seeds", type=_seed_list, default=(0, 1, 2, 3, 4), metavar="K,K,...",
                    help="seeds of the data and the network's initial weights (default: 0,1,2,3,4)")
    ev.add_argument("--scenarios", default=None, metavar="NAME,NAME,...",
                    help="only these scenarios (config names without .yaml, e.g. evidence_b_few_trajectories)")
    ev.add_argument("--write-readme", action="store_true", help="replace the table in README.md")
    ev.add_argument("--table", type=Path, default=None, help="also write the table to this markdown file")
    ev.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: these small 1D problems run fastest on one thread, "
                         "and on a busy machine a second thread waiting for its time slice made an "
                         "epoch up to 70x slower in our measurements)")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a value in every scenario (e.g. for a quick check)")
    ev.set_defaults(run=_evidence)

    bd = sub.add_parser("bound", help="the Cramer-Rao bound of a config's scalar coefficients: the smallest "
                                      "error any unbiased estimator can have on its data")
    bd.add_argument("config", type=Path, help="YAML experiment config with noisy data (data.noise > 0)")
    bd.add_argument("--seeds", type=_seed_list, default=(0, 1, 2, 3, 4), metavar="K,K,...",
                    help="data seeds (default: 0,1,2,3,4, as the evidence)")
    bd.add_argument("--initial", choices=("free", "known"), default="free",
                    help="the initial states unknown and observed with noise (free, default) or exact (known)")
    bd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (repeatable)")
    bd.set_defaults(run=_bound)

    nb = sub.add_parser("notebooks", help="execute the notebooks headless and keep them (+ self-contained HTML)")
    nb.add_argument("names", nargs="*", metavar="NAME",
                    help="only these notebooks: a file name or its number, e.g. 03 (default: all)")
    nb.add_argument("--out", type=Path, default=Path("results") / "notebooks", help="where the executed copies go")
    nb.add_argument("--fast", action="store_true", help="fast mode (HYBRIDKIT_FAST=1: small sizes)")
    nb.add_argument("--timeout", type=int, default=1800, help="seconds per cell before giving up")
    nb.add_argument("--no-execute", dest="execute", action="store_false",
                    help="convert the stored outputs as they are (no kernel; seconds)")
    nb.add_argument("--no-html", dest="html", action="store_false", help="write only the .ipynb")
    nb.set_defaults(run=_notebooks)
    args = parser.parse_args(argv)
    from ._console import run_command

    return run_command(lambda: args.run(args))


def _run(args) -> int:
    from .experiment import check_experiment, load_config, run_experiment

    overrides = list(args.overrides) + ([f"mode={args.mode}"] if args.mode else [])
    cfg, _ = load_config(args.config, overrides)
    out = args.out if args.out is not None else Path("runs") / cfg.name
    check_experiment(cfg, out)  # before torch threads, data or training (run_experiment checks again: cheap)
    _set_threads(args.threads)
    run_experiment(cfg, out, progress=sys.stderr.isatty(), resume=not args.fresh,
                   log=lambda m: print(m, flush=True))
    from .training import cleanup_distributed, is_rank_zero

    if is_rank_zero():  # under torchrun: once
        print(f"results in {out}/ (summary.md, metrics.json, figures)")
    cleanup_distributed()
    return 0


def _evidence(args) -> int:
    from .experiment import check_experiment, load_config
    from .experiment._evidence import scenario_configs, run_evidence
    from .experiment._preflight import check_run_dir

    from ._config import ConfigError

    _set_threads(args.threads)
    configs = scenario_configs()
    if args.scenarios:
        wanted = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        known = {p.stem: p for p in configs}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ConfigError(f"Unknown scenario(s) {unknown}. Fix: choose among {sorted(known)}.")
        configs = [known[n] for n in wanted]
    # every scenario checked before the first one runs (minutes in)
    for path in configs:
        cfg, _ = load_config(path, [f"data.seed={args.seeds[0]}", f"synthetic.init_seed={args.seeds[0]}",
                                    *args.overrides, "mode=compare"])
        check_experiment(cfg, args.out / cfg.name)
    check_run_dir(args.out)
    if args.table is not None:
        _check_output_file(args.table, "--table")
    if args.write_readme:
        readme = Path(__file__).resolve().parents[1] / "README.md"
        _check_output_file(readme, "--write-readme (README.md)")
    table = run_evidence(args.out, seeds=args.seeds, overrides=args.overrides, write_readme=args.write_readme,
                         progress=sys.stderr.isatty(), configs=configs)
    print(table)
    if args.table is not None:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(table)
    return 0


def _bound(args) -> int:
    from .experiment import information_bound, load_config

    rows = []
    for seed in args.seeds:
        cfg, _ = load_config(args.config, [*args.overrides, f"data.seed={seed}"])
        for name, b in information_bound(cfg, initial=args.initial).items():
            rows.append((name, seed, b["relative_std"], b["mean_abs_error"]))
    print(f"Cramer-Rao bound of {cfg.name}, initial states {args.initial} "
          "(relative std; smallest expected |relative error| of an unbiased estimator)")
    print("| coefficient | seed | relative std | expected relative error |\n|---|---|---|---|")
    for name, seed, rel, mae in rows:
        print(f"| {name} | {seed} | {rel:.3g} | {mae:.3g} |")
    for name in dict.fromkeys(r[0] for r in rows):
        mean = sum(r[3] for r in rows if r[0] == name) / len(args.seeds)
        print(f"| {name} | mean | | {mean:.3g} |")
    return 0


def _seed_list(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)`` for ``--seeds`` (argparse turns a ValueError into a usage error)."""
    seeds = tuple(int(k) for k in text.split(",") if k.strip())
    if not seeds or any(k < 0 for k in seeds):
        raise ValueError(text)
    return seeds


def _check_output_file(path: Path, what: str) -> None:
    from ._config import ConfigError
    from .experiment._preflight import check_writable_dir

    if path.is_dir():
        raise ConfigError(f"{what} names the directory {path}, not a file. Fix: give a file name, e.g. "
                          f"{path / 'table.md'}.")
    check_writable_dir(path.parent, f"{what}: the directory", "choose a writable place")


def _set_threads(n: int | None) -> None:
    if n is None:
        return
    from ._checks import check_count
    from ._config import ConfigError

    try:
        n = check_count(n, "--threads", minimum=1, fix="e.g. --threads 1.")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    import torch

    torch.set_num_threads(n)


def _notebooks(args) -> int:
    import os

    from ._config import ConfigError
    from .experiment._preflight import check_writable_dir

    try:
        from nbclient.exceptions import CellExecutionError

        from .viz import export_notebook
    except ImportError as e:
        raise ConfigError(f"python -m hybridkit notebooks needs the notebooks extra ({e}). Fix: pip install "
                          "'hybridkit[notebooks]' (make venv installs it).") from None
    if args.timeout < 1:
        raise ConfigError(f"Expected --timeout >= 1 (seconds per cell), got {args.timeout}. Fix: e.g. --timeout 1800.")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file. Fix: give a directory (it is created if missing).")
    check_writable_dir(args.out, "--out", "choose a writable directory")

    source = Path(__file__).resolve().parents[1] / "notebooks"
    paths = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        wanted = [p for p in paths if any(p.name.startswith(n) or p.stem == n for n in args.names)]
        missing = [n for n in args.names if not any(p.name.startswith(n) or p.stem == n for p in paths)]
        if missing:
            print(f"error: no notebook matches {missing} in {source} (there are: "
                  f"{', '.join(p.stem for p in paths)}). Fix: pass a number like 03 or a file name.",
                  file=sys.stderr)
            return 2
        paths = wanted
    if not paths:
        print(f"error: no notebooks in {source}", file=sys.stderr)
        return 2
    os.environ["HYBRIDKIT_FAST"] = "1" if args.fast else "0"  # the kernels inherit it

    def _size(path: Path) -> str:
        return f"{path.stat().st_size / 1e6:.2f} MB"

    problems = 0
    for path in paths:
        try:
            done = export_notebook(path, args.out, execute=args.execute, html=args.html,
                                   timeout=args.timeout, cwd=source)
        except CellExecutionError as e:
            print(f"error: {path.name}: a cell raised (outputs so far in {args.out / path.name}):\n"
                  f"{str(e)[-2000:]}", file=sys.stderr)
            return 1
        line = f"{path.name}: executed in {done.execute_s:.0f} s -> {done.notebook} ({_size(done.notebook)})"
        if done.html is not None:
            line += (f", HTML in {done.export_s:.1f} s -> {done.html.name} ({_size(done.html)}, "
                     f"{done.animations} animation{'s' * (done.animations != 1)})")
        print(line, flush=True)
        for url in done.remote:
            print(f"warning: {done.html.name} loads {url} from the network", file=sys.stderr)
        for failure in done.math_failures:
            print(f"warning: {path.name}: {failure} (kept as LaTeX source)", file=sys.stderr)
        problems += len(done.remote) + len(done.math_failures)
    return 1 if problems else 0


def _demo(args) -> int:
    from .data import DataManager, DatasetConfig, data_dir, ensure_dataset, load_dataset_config

    if args.config is not None:
        cfg, source = load_dataset_config(args.config), str(args.config)
    elif _DEFAULT_CONFIG.is_file():
        cfg, source = load_dataset_config(_DEFAULT_CONFIG), str(_DEFAULT_CONFIG)
    else:
        cfg, source = DatasetConfig(), "built-in defaults"
    directory = args.out if args.out is not None else data_dir() / "datasets"
    from ._config import ConfigError
    from .experiment._preflight import check_writable_dir

    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--out {directory} is a file. Fix: give a directory for the dataset (created if missing).")
    check_writable_dir(directory, "The dataset directory", "pass --out with a writable directory, or set "
                                                          "HYBRIDKIT_DATA")
    if args.force:
        (directory / f"{cfg.name}.h5").unlink(missing_ok=True)
    t0 = time.perf_counter()
    path, generated = ensure_dataset(cfg, directory=directory, progress=sys.stderr.isatty())
    took = time.perf_counter() - t0
    with DataManager(path, cache_mb=0) as dm:
        _describe(dm, path, source, f"generated in {took:.2f} s" if generated else "reused, up to date")
    return 0


def _describe(dm, path: Path, source: str, how: str) -> None:
    import numpy as np

    g, meta = dm.grid, dm.metadata
    extent = " x ".join(f"[0, {s:g})" for s in g.domain_size)
    print(f"dataset  {path}  ({how}; {path.stat().st_size / 1024:.1f} KiB on disk)")
    print(f"config   {source}")
    print(f"pde      {meta['pde']}  dt={dm.dt:g}  substeps={meta['model_config'].get('substeps', 1)}")
    print(f"grid     resolution {g.resolution} on {extent} ({g.boundary}), dx={', '.join(f'{d:g}' for d in g.dx)}")
    print(f"sims     {dm.num_sims} simulations x {dm.num_frames} frames (t = 0 .. {(dm.num_frames - 1) * dm.dt:g}), seed {meta['seed']}")
    for name in dm.field_names:
        lo, hi = np.inf, -np.inf
        for sim in range(dm.num_sims):  # one trajectory at a time: bounded memory on big files
            u = dm.load(sim, name)
            lo, hi = min(lo, float(u.min())), max(hi, float(u.max()))
        dims = ("sims", "time") + g.axes + (("vector",) if name in dm.vector_fields else ())
        shape = (dm.num_sims, dm.field_frames(name)) + g.resolution + ((g.ndim,) if name in dm.vector_fields else ())
        print(f"field    {name}: float32 {shape} ({', '.join(dims)}), range [{lo:.4g}, {hi:.4g}]")
    for name, kind in dm.param_kinds.items():
        p = dm.params(name)
        print(f"param    {name} ({kind}): {p.shape}, range [{p.min():.4g}, {p.max():.4g}]")
    print("read     hybridkit.data.DataManager(path); HybridDataset(dm, sim_indices, field_names)")


def cli() -> None:
    """``python -m hybridkit``: :func:`main`, then the process ends with its exit code (at once
    after an interrupt, see :func:`hybridkit._console.exit_process`)."""
    from hybridkit._console import exit_process

    exit_process(main())


if __name__ == "__main__":
    cli()
