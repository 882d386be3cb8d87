"""Run an experiment: build the models and trainers, train in one mode (or compare all three)."""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

import torch
from tqdm.auto import tqdm

from .._io import atomic_write
from ..data import AugmentedDataset, CacheManager, HybridDataset, coefficient, make_loader, parametric_spec
from ..models import ModelRegistry
from ..physics import learnable
from ..training import (CheckpointError, HybridTrainer, PhysicalTrainer, SyntheticTrainer, barrier, distributed_loader,
                        init_distributed, is_distributed)
from ._config import ExperimentConfig, experiment_config
from ._data import ExperimentData, prepare_data, real_dataset
from ._evaluate import evaluate_run, plain
from ._preflight import check_experiment, uses
from ._provenance import (CHECKPOINT, RECORD, beyond, check_record, clear_run, data_digest, drop_unused_record,
                          unrecorded, write_record)
from ._report import (FIGURE_PATTERNS, RESULT_FILES, one_line, summary_markdown, write_figures, write_json)

__all__ = ["run_experiment", "build_network", "build_trainers"]


# ---------------------------------------------------------------------- models and trainers
def build_network(cfg: ExperimentConfig, real: HybridDataset) -> torch.nn.Module:
    """The synthetic model, seeded, with channels and dimension taken from the data."""
    torch.manual_seed(int(cfg.synthetic.init_seed))
    options = {"in_channels": real.in_channels, "out_channels": real.out_channels, "ndim": real.grid.ndim,
               "periodic": real.grid.boundary == "periodic", **dict(cfg.synthetic.model_params)}
    return ModelRegistry.get_synthetic_model(cfg.synthetic.model, options)


def build_trainers(cfg: ExperimentConfig, data: ExperimentData, real: HybridDataset):
    """``(SyntheticTrainer, PhysicalTrainer)`` configured from ``cfg``."""
    synthetic = SyntheticTrainer(cfg.synthetic.trainer_params, build_network(cfg, real))
    params = []
    for name, value in cfg.physical.initial.items():
        bounds = cfg.physical.bounds.get(name)
        bounds = tuple(bounds) if bounds is not None else None
        if isinstance(value, Mapping):  # {parametrization: {...}, theta: [...]}: a few numbers make the field
            par, theta = parametric_spec(value, data.model.grid)
            params.append(learnable(name, theta, parametrization=par, bounds=bounds))
        else:
            params.append(learnable(name, coefficient(value, data.model.grid), bounds=bounds))
    physical = PhysicalTrainer(cfg.physical.trainer_params, data.model, params, observation=data.observation)
    return synthetic, physical


# ---------------------------------------------------------------------- modes
def run_experiment(cfg, run_dir: str | os.PathLike, *, progress: bool = True, resume: bool = True,
                   log=print) -> dict:
    """Run ``cfg`` (an :class:`ExperimentConfig` or dict) and write results to ``run_dir``.

    ``run_dir`` receives ``metrics.json``, ``config.json``, ``summary.md`` (what was run, the
    results, the figures embedded), the figures (PNG: loss per epoch, per-cycle losses, parameter
    trajectories, rollout errors) and per mode ``checkpoint.pt`` with ``checkpoint.json`` (the
    config and data it came from); in ``compare`` mode one sub-folder per mode.

    Everything that can be checked without simulating is checked first
    (:func:`~hybridkit.experiment._preflight.check_experiment`). Rerunning the same config
    resumes from the last completed epoch / fit / cycle (said in the log), also with more cycles
    or epochs; a checkpoint made with a config or data that give other results is refused
    (:class:`~hybridkit.experiment.StaleRunError`: start over with ``resume=False`` / ``--fresh``,
    which first removes the old checkpoints and results, or use another directory). A run that
    fails leaves no results and no record without a checkpoint behind; an interrupted one
    (Ctrl-C, SIGTERM under the command line) keeps its checkpoints, and the exception carries a
    note saying what was kept.

    Under ``torchrun`` (``torchrun --nproc_per_node=N -m hybridkit run CONFIG``) the synthetic and
    hybrid modes train data-parallel (``batch_size`` is the global batch); rank 0 prepares the
    data first, logs and writes the results. Every rank runs every mode in the same order (each
    builds its trainers, and a network's DDP wrapper is a collective); the physical-only fit is
    deterministic, so every rank computes the same one.

    Returns:
        The metrics (also in ``metrics.json``).

    Raises:
        ConfigError: a value that cannot run (before any work); StaleRunError (a ConfigError):
            the run directory holds another config's checkpoint.
    """
    cfg = experiment_config(cfg)
    run_dir = Path(run_dir)
    check_experiment(cfg, run_dir)  # before any work
    rank0 = init_distributed().is_rank_zero  # a no-op (rank 0 of 1) unless started by torchrun
    if not rank0:
        progress, log = False, (lambda *_: None)
    subs = {mode: run_dir / mode if cfg.mode == "compare" else run_dir for mode in uses(cfg)}
    if resume:
        for mode, sub in subs.items():
            check_record(sub, cfg, mode)  # a stale checkpoint is refused before the data are made
    created = not run_dir.exists()
    try:
        return _run(cfg, run_dir, subs, progress=progress, resume=resume, log=log, rank0=rank0)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM (hybridkit._signals.Interrupted): keep the checkpoints
        if rank0:
            for sub in subs.values():
                drop_unused_record(sub)
            e.add_note(_kept(subs))
        raise
    except BaseException:
        if rank0:
            for sub in subs.values():
                drop_unused_record(sub)
            if created:
                _remove_empty(run_dir)
        raise


def _run(cfg: ExperimentConfig, run_dir: Path, subs: dict, *, progress, resume, log, rank0) -> dict:
    if not resume and rank0:
        removed = _clear(run_dir, subs)
        if removed:
            log(f"starting fresh in {run_dir} (resume off, --fresh): removed {', '.join(removed)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not rank0:
        barrier()  # rank 0 simulates (or finds) the data first; the others then read its cache
    data = prepare_data(cfg, progress=progress)
    if rank0:
        barrier()
    digests = data_digest(*dict.fromkeys([data.clean, data.observed]))
    metrics = {}
    for mode, sub in subs.items():
        sub.mkdir(parents=True, exist_ok=True)
        has_checkpoint = resume and check_record(sub, cfg, mode, digests)
        if rank0 and not has_checkpoint:
            write_record(sub, cfg, mode, digests)  # before the first checkpoint: what it will come from
        t0 = time.perf_counter()
        metrics[mode] = _RUNNERS[mode](cfg, data, sub, progress=progress, resume=resume, log=log)
        metrics[mode]["seconds"] = time.perf_counter() - t0
        log(f"[{mode}] {one_line(metrics[mode])}")
    result = {"name": cfg.name, "mode": cfg.mode, "modes": metrics, "true_params": plain(data.true_params)}
    if not rank0:
        return result
    figures = write_figures(result, cfg, data, run_dir)
    write_json(run_dir / "metrics.json", result)
    write_json(run_dir / "config.json", asdict(cfg))
    atomic_write(run_dir / "summary.md", summary_markdown(result, cfg, figures))
    return result


def _clear(run_dir: Path, subs: dict) -> list[str]:
    """A fresh start: the modes' checkpoints and the old results go (nothing else is touched)."""
    removed = []
    for sub in dict.fromkeys(subs.values()):
        removed += [str((sub / n).relative_to(run_dir)) for n in clear_run(sub)]
    for name in RESULT_FILES:
        if (run_dir / name).is_file():
            (run_dir / name).unlink()
            removed.append(name)
    for pattern in FIGURE_PATTERNS:
        for path in sorted(run_dir.glob(pattern)):
            path.unlink()
            removed.append(path.name)
    return removed


def _remove_empty(directory: Path) -> None:
    """Remove ``directory`` if nothing but empty folders is in it (a failed first run)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(directory.iterdir()):
        directory.rmdir()


def _kept(subs: dict) -> str:
    """What an interrupted run kept, for the message."""
    kept = []
    for mode, sub in subs.items():
        path = sub / CHECKPOINT
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["state"]
            where = (f"after cycle {state['cycle']}" if "cycle" in state else
                     f"after {'fit' if 'params' in state else 'epoch'} {state['epoch']}")
        except Exception:  # noqa: BLE001  (a note must not hide the interrupt)
            where = "state unknown"
        kept.append(f"{path} ({mode}, {where})")
    if not kept:
        return "nothing was kept: no epoch, fit or cycle had completed"
    return f"kept {'; '.join(kept)}; rerun the same command to resume"


def _resume(trainer, path: Path, resume: bool, log, label: str, target: int, key: str) -> None:
    """Load the run directory's checkpoint into ``trainer`` when resuming and there is one;
    refuse one without a record of its config or one that went further than ``target``."""
    if not (resume and path.exists()):
        return
    try:
        trainer.load_checkpoint(path)  # refuses what is not a checkpoint of this trainer first
    except CheckpointError as e:
        raise CheckpointError(f"{e} In a run directory: --fresh (resume=False) starts over there, --out runs "
                              "elsewhere.") from None
    if not (path.parent / RECORD).exists():
        raise unrecorded(path.parent)
    hybrid = isinstance(trainer, HybridTrainer)
    done = trainer.cycle if hybrid else trainer.epoch
    unit = "cycle" if hybrid else ("epoch" if isinstance(trainer, SyntheticTrainer) else "fit")
    if done > target:
        raise beyond(path.parent, done, target, f"{unit}(s)", key)
    log(f"[{label}] resuming from {path} {'after cycle ' + str(done) if hybrid else f'at epoch {done}'}")


class _Bar:
    """The run's progress bar over epochs / fits / cycles; also a training callback."""

    def __init__(self, enabled: bool, total: int, done: int, desc: str, unit: str):
        self.bar = tqdm(total=total, initial=done, desc=desc, unit=unit, disable=not enabled, leave=True,
                        dynamic_ncols=True)

    def __call__(self, trainer, record) -> None:
        self.bar.update(1)
        loss = getattr(record, "loss", None)
        if loss is None and hasattr(record, "synthetic"):
            loss = record.synthetic.real_loss
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.3e}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _save(path: Path):
    return lambda trainer, record: trainer.save_checkpoint(path)


def _fits(trainer) -> list[dict]:
    # std: the fitted numbers' standard errors (Gauss-Newton), noise_std: the noise level they assume
    keep = ("epoch", "status", "iterations", "evaluations", "initial_loss", "final_loss", "message", "loss_history",
            "std", "noise_std")
    return [{k: f.to_dict()[k] for k in keep} for f in trainer.history]


def _run_physical(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    _, physical = build_trainers(cfg, data, probe)
    initial = physical.params
    real_p = real_dataset(data, physical.config.num_predict_steps, fields=True)
    compare = cfg.mode == "compare"
    epochs = max(cfg.physical.epochs if not compare else cfg.cycles * cfg.hybrid.physical_epochs, 1)
    ckpt = run_dir / CHECKPOINT
    key = "cycles x hybrid.physical_epochs" if compare else "physical.epochs"
    _resume(physical, ckpt, resume, log, "physical", epochs, key)
    bar = _Bar(progress, epochs, physical.epoch, "[physical] fits", "fit")
    try:
        if physical.epoch < epochs:
            physical.train(real_p, epochs - physical.epoch, progress=False, callbacks=[_save(ckpt), bar])
    finally:
        bar.close()
        probe.data_manager.close()
        real_p.data_manager.close()
    physical.save_params(run_dir / "physical.npz")
    return {**evaluate_run(cfg, data, physical_params=physical.coefficients), "fit_status": physical.history["status"],
            "fits": _fits(physical), "initial_params": plain(initial)}


def _run_synthetic(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    synthetic, _ = build_trainers(cfg, data, probe)
    real = real_dataset(data, synthetic.config.max_rollout_steps)
    h, compare = cfg.hybrid, cfg.mode == "compare"
    epochs = cfg.synthetic.epochs if not compare else h.warmup_epochs + cfg.cycles * h.synthetic_epochs
    windows = AugmentedDataset.observed(real, data.observation)
    if is_distributed():  # each rank its share of every global batch; the order: seed + epoch
        loader = distributed_loader(windows, cfg.synthetic.batch_size, seed=cfg.data.seed)
    else:  # the order depends on (seed, epoch) only: a resumed run sees the batches of an unbroken one
        loader = make_loader(windows, batch_size=cfg.synthetic.batch_size, seed=cfg.data.seed, epoch_keyed=True)
    ckpt = run_dir / CHECKPOINT
    key = "hybrid.warmup_epochs + cycles x hybrid.synthetic_epochs" if compare else "synthetic.epochs"
    _resume(synthetic, ckpt, resume, log, "synthetic", epochs, key)
    bar = _Bar(progress, epochs, synthetic.epoch, "[synthetic] epochs", "epoch")
    try:
        if synthetic.epoch < epochs:
            synthetic.train(loader, epochs - synthetic.epoch, progress=False, callbacks=[_save(ckpt), bar])
    finally:
        bar.close()
        probe.data_manager.close()
        real.data_manager.close()
    return {**evaluate_run(cfg, data, network=synthetic.model), "loss": synthetic.history["loss"]}


def _run_hybrid(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    synthetic, physical = build_trainers(cfg, data, probe)
    initial = physical.params
    real = real_dataset(data, synthetic.config.max_rollout_steps)
    hybrid = HybridTrainer(cfg.hybrid, synthetic, physical, cache=CacheManager(run_dir / "cache"))
    ckpt = run_dir / CHECKPOINT
    _resume(hybrid, ckpt, resume, log, "hybrid", cfg.cycles, "cycles")
    bar = None
    try:
        if not hybrid.warmed_up:  # the warm-up alone first, with the network's bar over its epochs
            hybrid.train(real, 0, progress=progress, checkpoint=ckpt)
        bar = _Bar(progress, cfg.cycles, hybrid.cycle, "[hybrid] cycles", "cycle")
        hybrid.train(real, cfg.cycles - hybrid.cycle, progress=False, checkpoint=ckpt, callbacks=[bar])
    finally:
        if bar is not None:
            bar.close()
        probe.data_manager.close()
        real.data_manager.close()
    out = evaluate_run(cfg, data, network=synthetic.model, physical_params=physical.coefficients)
    return {**out, "cycles": hybrid.history.to_list(), "loss": synthetic.history["loss"], "fits": _fits(physical),
            "initial_params": plain(initial)}


_RUNNERS = {"physical": _run_physical, "synthetic": _run_synthetic, "hybrid": _run_hybrid}
