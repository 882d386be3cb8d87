"""Run an experiment: build the models and trainers, train in one mode (or compare all three)."""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

import torch

from ..data import AugmentedDataset, CacheManager, HybridDataset, coefficient, make_loader, parametric_spec
from ..models import ModelRegistry
from ..physics import learnable
from ..training import (HybridTrainer, PhysicalTrainer, SyntheticTrainer, barrier, distributed_loader, init_distributed,
                        is_distributed)
from ._config import ExperimentConfig, experiment_config
from ._data import ExperimentData, prepare_data, real_dataset
from ._evaluate import evaluate_run, plain
from ._report import one_line, summary_table, write_json, write_plots

__all__ = ["run_experiment", "build_network", "build_trainers"]

CHECKPOINT = "checkpoint.pt"  # in every mode's run directory: resumed by a rerun


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

    ``run_dir`` receives ``metrics.json``, ``config.json``, plots (PNG) and ``checkpoint.pt``; in
    ``compare`` mode one sub-folder per mode and a ``summary.md``. Rerunning the same command
    resumes from the last completed epoch / fit / cycle (said in the log) unless ``resume=False``.

    Under ``torchrun`` (``torchrun --nproc_per_node=N -m hybridkit run CONFIG``) the synthetic and
    hybrid modes train data-parallel (``batch_size`` is the global batch); rank 0 prepares the
    data first, logs and writes the results. Every rank runs every mode in the same order (each
    builds its trainers, and a network's DDP wrapper is a collective); the physical-only fit is
    deterministic, so every rank computes the same one.

    Returns:
        The metrics (also in ``metrics.json``).
    """
    cfg = experiment_config(cfg)
    rank0 = init_distributed().is_rank_zero  # a no-op (rank 0 of 1) unless started by torchrun
    if not rank0:
        progress, log = False, (lambda *_: None)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank0:
        write_json(run_dir / "config.json", asdict(cfg))
    else:
        barrier()  # rank 0 simulates (or finds) the data first; the others then read its cache
    data = prepare_data(cfg, progress=progress)
    if rank0:
        barrier()
    modes = ("physical", "synthetic", "hybrid") if cfg.mode == "compare" else (cfg.mode,)
    metrics = {}
    for mode in modes:
        sub = run_dir / mode if cfg.mode == "compare" else run_dir
        sub.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        metrics[mode] = _RUNNERS[mode](cfg, data, sub, progress=progress, resume=resume, log=log)
        metrics[mode]["seconds"] = time.perf_counter() - t0
        log(f"[{mode}] {one_line(metrics[mode])}")
    result = {"name": cfg.name, "mode": cfg.mode, "modes": metrics, "true_params": plain(data.true_params)}
    if not rank0:
        return result
    write_json(run_dir / "metrics.json", result)
    if cfg.mode == "compare":
        (run_dir / "summary.md").write_text(summary_table(result))
    write_plots(result, data, run_dir)
    return result


def _resume(trainer, path: Path, resume: bool, log, label: str) -> None:
    """Load the run directory's checkpoint into ``trainer`` when resuming and there is one."""
    if resume and path.exists():
        trainer.load_checkpoint(path)
        where = f"after cycle {trainer.cycle}" if isinstance(trainer, HybridTrainer) else f"at epoch {trainer.epoch}"
        log(f"[{label}] resuming from {path} {where}")


def _save(path: Path):
    return lambda trainer, record: trainer.save_checkpoint(path)


def _run_physical(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    _, physical = build_trainers(cfg, data, probe)
    real_p = real_dataset(data, physical.config.num_predict_steps, fields=True)
    epochs = max(cfg.physical.epochs if cfg.mode != "compare" else cfg.cycles * cfg.hybrid.physical_epochs, 1)
    ckpt = run_dir / CHECKPOINT
    _resume(physical, ckpt, resume, log, "physical")
    try:
        if physical.epoch < epochs:
            physical.train(real_p, epochs - physical.epoch, progress=progress, callbacks=[_save(ckpt)])
    finally:
        probe.data_manager.close()
        real_p.data_manager.close()
    physical.save_params(run_dir / "physical.npz")
    return {**evaluate_run(cfg, data, physical_params=physical.coefficients), "fit_status": physical.history["status"]}


def _run_synthetic(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    synthetic, _ = build_trainers(cfg, data, probe)
    real = real_dataset(data, synthetic.config.max_rollout_steps)
    h = cfg.hybrid
    epochs = cfg.synthetic.epochs if cfg.mode != "compare" else h.warmup_epochs + cfg.cycles * h.synthetic_epochs
    windows = AugmentedDataset.observed(real, data.observation)
    if is_distributed():  # each rank its share of every global batch; the order: seed + epoch
        loader = distributed_loader(windows, cfg.synthetic.batch_size, seed=cfg.data.seed)
    else:  # the order depends on (seed, epoch) only: a resumed run sees the batches of an unbroken one
        loader = make_loader(windows, batch_size=cfg.synthetic.batch_size, seed=cfg.data.seed, epoch_keyed=True)
    ckpt = run_dir / CHECKPOINT
    _resume(synthetic, ckpt, resume, log, "synthetic")
    try:
        if synthetic.epoch < epochs:
            synthetic.train(loader, epochs - synthetic.epoch, progress=progress, callbacks=[_save(ckpt)])
    finally:
        probe.data_manager.close()
        real.data_manager.close()
    return {**evaluate_run(cfg, data, network=synthetic.model), "loss": synthetic.history["loss"]}


def _run_hybrid(cfg, data, run_dir, *, progress, resume, log) -> dict:
    probe = real_dataset(data, 1)
    synthetic, physical = build_trainers(cfg, data, probe)
    real = real_dataset(data, synthetic.config.max_rollout_steps)
    hybrid = HybridTrainer(cfg.hybrid, synthetic, physical, cache=CacheManager(run_dir / "cache"))
    ckpt = run_dir / CHECKPOINT
    _resume(hybrid, ckpt, resume, log, "hybrid")
    try:
        hybrid.train(real, max(cfg.cycles - hybrid.cycle, 0), progress=progress, checkpoint=ckpt)
    finally:
        probe.data_manager.close()
        real.data_manager.close()
    out = evaluate_run(cfg, data, network=synthetic.model, physical_params=physical.coefficients)
    return {**out, "cycles": hybrid.history.to_list(), "loss": synthetic.history["loss"]}


_RUNNERS = {"physical": _run_physical, "synthetic": _run_synthetic, "hybrid": _run_hybrid}
