"""``HybridTrainer``: a physical and a synthetic model that train each other (HYCO).

Objectives (``S`` the network, ``P`` the physical model, ``D`` the observed data):

* synthetic: ``L_D(S) + alpha_synthetic * I(S, P)``, where ``I`` is the rollout loss on windows of
  trajectories that ``P`` (with its current parameters) produces from fresh initial states;
* physical: ``L_D(P) + alpha_physical * I(P, S)``, where ``I`` is the misfit to ``S``'s rollouts
  from start states of the data (or fresh ones), counted where the data are missing
  (``interaction_region="unobserved"``) or everywhere (``"all"``).

Schedule: ``warmup_epochs`` of synthetic-only training, then cycles of
(``P`` generates -> ``S`` trains on real + generated) and (``S`` generates -> ``P`` fits real +
generated). An update that makes the loss on the observed data worse is reverted (``revert``):
for ``S`` the network, optimizer, scheduler and epoch counter go back to what they were, for
``P`` the parameters the next fit starts from.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from phiml import math
from tqdm.auto import tqdm

from .._config import ConfigError, from_dict, to_dict
from ..convert import to_field
from ..data._augmented import AugmentedDataset
from ..data._cache import CacheManager, cache_key
from ..data._dataset import HybridDataset
from ..data._generate import generate_dataset, write_trajectories
from ..data._loader import make_loader
from ..data._manager import DataManager
from ..data._observation import ObservationMask
from ..models import rollout
from ._physical import PhysicalTrainer
from ._synthetic import SyntheticTrainer

__all__ = ["HybridConfig", "HybridTrainer"]

_STARTS = ("real", "fresh", "mixed")
_REGIONS = ("unobserved", "all")
_CHECKPOINT_FORMAT = "hybridkit.HybridTrainer/1"


@dataclass(frozen=True)
class HybridConfig:
    """Options of :class:`HybridTrainer` (the ``hybrid`` section of an experiment config)."""

    warmup_epochs: int = 20  # synthetic-only epochs on the real data before the first cycle
    synthetic_epochs: int = 10  # synthetic epochs per cycle (real + P-generated windows)
    physical_epochs: int = 1  # physical fits per cycle (real + S-generated targets)
    batch_size: int = 16  # windows per synthetic batch
    # --- physical -> synthetic
    physical_trajectories: int = 16  # fresh initial states P rolls out per cycle
    physical_frames: int | None = None  # frames per P rollout; None: as many as the real data have
    alpha_synthetic: float = 1.0  # w_S: weight of a P-generated window relative to a real one
    generated_per_real: float | None = None  # count-based augmentation; None: every generated window
    # scale w_S by n_real / n_generated so the generated part weighs alpha_synthetic times the real
    # part in total, whatever the counts
    proportional: bool = False
    # --- synthetic -> physical
    synthetic_trajectories: int = 8  # S rollouts per cycle that serve P as targets
    synthetic_start: str = "real"  # where they start: "real" data states, "fresh" random ones, "mixed"
    alpha_physical: float = 1.0  # w_P: weight of the S-generated targets in P's objective
    interaction_region: str = "unobserved"  # where S's predictions count: "unobserved" points or "all"
    # --- safeguards
    revert: bool = True  # undo an update that makes the loss on the observed data worse
    revert_tolerance: float = 0.0  # relative worsening tolerated before reverting
    seed: int = 0  # seeds fresh initial states, draws and loader order (per cycle)

    def __post_init__(self):
        for name in ("warmup_epochs", "synthetic_epochs", "physical_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"Expected {name} >= 0, got {getattr(self, name)}.")
        for name in ("batch_size", "physical_trajectories", "synthetic_trajectories"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Expected {name} >= 1, got {getattr(self, name)}.")
        if self.physical_frames is not None and int(self.physical_frames) < 2:
            raise ValueError(f"Expected physical_frames >= 2 or None, got {self.physical_frames}.")
        for name in ("alpha_synthetic", "alpha_physical", "revert_tolerance"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"Expected {name} >= 0, got {getattr(self, name)}.")
        if self.synthetic_start not in _STARTS:
            raise ValueError(f"Expected synthetic_start in {_STARTS}, got {self.synthetic_start!r}.")
        if self.interaction_region not in _REGIONS:
            raise ValueError(f"Expected interaction_region in {_REGIONS}, got {self.interaction_region!r}.")


class HybridTrainer:
    """Train a :class:`SyntheticTrainer` and a :class:`PhysicalTrainer` cooperatively.

    Both trainers stay usable on their own; this class only feeds each one data made by the other.

    Example::

        hybrid = HybridTrainer(config, synthetic_trainer, physical_trainer, cache=CacheManager(dir))
        history = hybrid.train(real_dataset, num_cycles=5)   # HybridDataset, tensor mode

    Args:
        config: a :class:`HybridConfig`, a dict of its keys, or an experiment config with a
            ``"hybrid"`` section.
        synthetic_trainer: trains the network; its ``num_predict_steps`` must fit the real windows.
        physical_trainer: fits the physical parameters (its ``observation`` mask, if any, says
            where the real data exist; it applies to both models' data losses).
        cache: where generated trajectories go (default: a temporary directory).

    Attributes:
        cycle: cycles completed so far (over all ``train`` calls and resumes).
        history: one dict per cycle, see :meth:`train`.
    """

    def __init__(self, config, synthetic_trainer: SyntheticTrainer, physical_trainer: PhysicalTrainer,
                 *, cache: CacheManager | None = None):
        if not isinstance(synthetic_trainer, SyntheticTrainer):
            raise TypeError(f"Expected a SyntheticTrainer, got {type(synthetic_trainer).__name__}.")
        if not isinstance(physical_trainer, PhysicalTrainer):
            raise TypeError(f"Expected a PhysicalTrainer, got {type(physical_trainer).__name__}.")
        self.config = _hybrid_config(config)
        self.synthetic = synthetic_trainer
        self.physical = physical_trainer
        self.model = physical_trainer.model
        if cache is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hybridkit-cache-")
            cache = CacheManager(self._tmp.name)
        self.cache = cache
        self.cycle = 0
        self.warmed_up = False
        self.history: list[dict] = []

    # ------------------------------------------------------------------ public
    def train(self, real: HybridDataset, num_cycles: int, *, progress: bool = True,
              checkpoint_dir: str | os.PathLike | None = None) -> list[dict]:
        """Warm up (once), then run ``num_cycles`` more cycles.

        Args:
            real: the observed data as a tensor-mode :class:`HybridDataset` (the physical side
                reads the same simulations in field mode).
            num_cycles: cycles to run in this call (>= 0).
            progress: progress bars.
            checkpoint_dir: if given, the whole state is saved there after the warm-up and after
                every cycle (:meth:`save_checkpoint`), so a killed run resumes with
                :meth:`load_checkpoint`.

        Returns:
            The history entries of this call: per cycle ``cycle``, ``synthetic`` and ``physical``
            dicts with ``real_loss_before`` / ``real_loss_after`` (loss on the observed data),
            ``reverted`` and counts, and ``params`` (the physical estimate after the cycle).
        """
        if not isinstance(real, HybridDataset) or real.return_fields:
            raise TypeError("Expected the real data as a HybridDataset in tensor mode (return_fields=False).")
        if int(num_cycles) < 0:
            raise ValueError(f"Expected num_cycles >= 0, got {num_cycles}.")
        if real.grid != self.model.grid:
            raise ValueError(f"The real data's grid {real.grid} differs from the physical model's "
                             f"{self.model.grid}. Fix: use the model the data were made with.")
        real_s = self._with_weights(real)
        real_p = _field_view(real, self.physical.config.num_predict_steps)
        if not self.warmed_up:
            cfg = self.config
            if cfg.warmup_epochs:
                loader = make_loader(real_s, batch_size=cfg.batch_size, seed=_seed(cfg.seed, -1))
                self.synthetic.train(loader, cfg.warmup_epochs, progress=progress)
            self.warmed_up = True
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)
        start = len(self.history)
        for _ in tqdm(range(int(num_cycles)), desc="HYCO cycles", disable=not progress, leave=False):
            self.history.append(self._cycle(real, real_s, real_p, progress))
            self.cycle += 1
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)
        return self.history[start:]

    # ------------------------------------------------------------------ one cycle
    def _cycle(self, real, real_s, real_p, progress) -> dict:
        cfg, c = self.config, self.cycle
        entry = {"cycle": c + 1}

        # physical -> synthetic
        gen_p = self._generate_physical(real)
        gen_ds = HybridDataset(DataManager(gen_p), range(cfg.physical_trajectories), real.field_names,
                               num_predict_steps=real.num_predict_steps, dynamic_fields=real.dynamic_fields,
                               static_fields=real.static_fields)
        weight = cfg.alpha_synthetic
        aug = AugmentedDataset(real_s.real, gen_ds, generated_per_real=cfg.generated_per_real,
                               weight_real=real_s.weight_real, seed=_seed(cfg.seed, c))
        if cfg.proportional:
            weight *= aug.counts["real"] / max(aug.counts["generated"], 1)
        aug.weight_generated = float(weight)
        before = self._synthetic_real_loss(real_s)
        snapshot = self._synthetic_state()
        loader = make_loader(aug, batch_size=cfg.batch_size, seed=_seed(cfg.seed, c))
        if cfg.synthetic_epochs:
            self.synthetic.train(loader, cfg.synthetic_epochs, progress=progress)
        after = self._synthetic_real_loss(real_s)
        reverted = cfg.revert and after > before * (1 + cfg.revert_tolerance)
        if reverted:
            self._restore_synthetic(snapshot)
        entry["synthetic"] = {"real_loss_before": before, "real_loss_after": after, "reverted": bool(reverted),
                              "real_windows": aug.counts["real"], "generated_windows": aug.counts["generated"],
                              "generated_weight": float(weight)}

        # synthetic -> physical
        init, tgt, weights, n_real = self._physical_problem(real_p)
        before = self.physical.data_loss(*_real_part(init, tgt, n_real), None)
        snapshot = self.physical.params
        status = []
        for _ in range(cfg.physical_epochs):
            status.append(self.physical.fit(init, tgt, weights, progress=progress).status)
        after = self.physical.data_loss(*_real_part(init, tgt, n_real), None)
        reverted = cfg.revert and after > before * (1 + cfg.revert_tolerance)
        if reverted:
            self.physical.set_params(snapshot)
        entry["physical"] = {"real_loss_before": before, "real_loss_after": after, "reverted": bool(reverted),
                             "fit_status": status, "real_samples": n_real,
                             "generated_samples": _batch(init) - n_real}
        entry["params"] = _jsonable(self.physical.params)
        return entry

    # ------------------------------------------------------------------ P generates
    def _generate_physical(self, real: HybridDataset) -> Path:
        """Roll out ``P`` with its current parameters from fresh initial states (cached)."""
        cfg, c = self.config, self.cycle
        frames = cfg.physical_frames or real.num_frames
        if frames < real.num_predict_steps + 1:
            raise ValueError(
                f"Expected generated trajectories of at least num_predict_steps + 1 = "
                f"{real.num_predict_steps + 1} frames, got physical_frames={frames}. Fix: raise "
                "physical_frames (a shorter trajectory yields no training window)."
            )
        params = self.physical.params
        seed = _seed(cfg.seed, c)
        key = cache_key(kind="physical", pde=type(self.model).__name__, model=self.model.config(),
                        params=params, n=cfg.physical_trajectories, frames=frames, seed=seed)

        def write(path):
            generate_dataset(self.model, path, num_sims=cfg.physical_trajectories, num_frames=frames,
                             seed=seed, params=params, overwrite=True, progress=False,
                             attrs={"source": "physical", "cycle": c + 1})

        return self.cache.get_or_create(key, write, meta={"source": "physical", "cycle": c + 1})

    # ------------------------------------------------------------------ S generates
    def _physical_problem(self, real_p: HybridDataset):
        """Real windows (field mode) + S's rollouts, stacked along ``batch``, with weights that make
        the physical fit's weighted mean equal to ``(L_D + alpha_physical I) / (1 + alpha_physical)``."""
        cfg = self.config
        items = [real_p[i] for i in _spread(len(real_p), self.physical.config.max_samples)]
        names = self.model.field_names
        init = {k: math.stack([it[0][k].values for it in items], math.batch("batch")) for k in names}
        tgt = {k: math.stack([it[1][k].values for it in items], math.batch("batch")) for k in names}
        n_real = len(items)
        steps = self.physical.config.num_predict_steps
        grid = self.model.grid
        observed = self.physical.observation
        w_obs = (observed.weights(grid, steps) if observed is not None else math.tensor(1.0))
        if cfg.alpha_physical == 0 or (observed is None and cfg.interaction_region == "unobserved"):
            # nothing for S to add: the data cover every point
            return init, tgt, _expand(w_obs, init, tgt), n_real
        g_init, g_tgt = self._generate_synthetic(init, steps)
        region = (1 - w_obs) if cfg.interaction_region == "unobserved" else math.tensor(1.0)
        w_real = _expand(w_obs, init, tgt)
        w_gen = _expand(region, g_init, g_tgt)
        n_obs, n_gen = float(math.sum(w_real, w_real.shape)), float(math.sum(w_gen, w_gen.shape))
        w = math.concat([w_real / n_obs, w_gen * (cfg.alpha_physical / max(n_gen, 1e-30))], "batch")
        init = {k: math.concat([init[k], g_init[k]], "batch") for k in names}
        tgt = {k: math.concat([tgt[k], g_tgt[k]], "batch") for k in names}
        return init, tgt, w, n_real

    @torch.no_grad()
    def _generate_synthetic(self, real_init: dict, steps: int):
        """``synthetic_trajectories`` rollouts of ``S`` from real / fresh start states."""
        cfg, c = self.config, self.cycle
        n = cfg.synthetic_trajectories
        rng = np.random.default_rng(_seed(cfg.seed, c) + 1)
        n_real_avail = _batch(real_init)
        n_fresh = {"real": 0, "fresh": n, "mixed": n // 2}[cfg.synthetic_start]
        starts = []
        if n - n_fresh:
            idx = rng.choice(n_real_avail, size=n - n_fresh, replace=n - n_fresh > n_real_avail)
            starts.append({k: v.batch[list(map(int, idx))] for k, v in real_init.items()})
        if n_fresh:
            fresh = self.model.random_state(n_fresh, seed=rng)
            starts.append({k: v.values for k, v in fresh.items()})
        start = {k: math.concat([s[k] for s in starts], "batch") for k in real_init}
        names, vec, ndim = self.model.field_names, self.model.vector_fields, self.model.grid.ndim
        from ..convert import split_channels, stack_channels, to_tensor

        x = stack_channels({k: to_tensor(start[k], ["batch"]) for k in names}, names, vec, ndim)
        net = self.synthetic.model
        was_training = net.training
        net.eval()
        try:
            pred = rollout(net, x.to(self.synthetic.device), steps).cpu()  # (n, steps, C, *space)
        finally:
            net.train(was_training)
        fields = split_channels(pred, names, vec, ndim)
        targets = {k: to_field(fields[k], self.model.grid, vector=k in vec, batch_names=("batch", "time")).values
                   for k in names}
        return start, targets

    # ------------------------------------------------------------------ S helpers
    def _with_weights(self, real: HybridDataset) -> AugmentedDataset:
        """The real windows with per-point weights from the observation mask (1 where observed)."""
        obs = self.physical.observation
        if obs is None:
            return AugmentedDataset(real, [])
        return AugmentedDataset(real, [], weight_real=obs.point_weights(real.grid, real.num_predict_steps))

    @torch.no_grad()
    def _synthetic_real_loss(self, real_s: AugmentedDataset) -> float:
        """The synthetic loss on the observed real data (eval mode, no input noise)."""
        return self.synthetic.evaluate(make_loader(real_s, batch_size=64, shuffle=False))

    def _synthetic_state(self) -> dict:
        s = self.synthetic
        return copy.deepcopy({"model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
                              "scheduler": s.scheduler.state_dict(), "epoch": s.epoch,
                              "history": s.history, "noise": s._noise.get_state()})

    def _restore_synthetic(self, state: dict) -> None:
        s = self.synthetic
        s.model.load_state_dict(state["model"])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        s.epoch = state["epoch"]
        s.history = state["history"]
        s._noise.set_state(state["noise"])

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, directory: str | os.PathLike) -> Path:
        """Save the whole state (network + optimizer + scheduler, physical parameters, cycle,
        history) to ``directory/cycle_NNNN`` and point ``directory/latest.json`` at it.

        The cycle's folder is written under a temporary name and renamed when complete, and
        ``latest.json`` is replaced atomically afterwards: a run killed at any moment leaves the
        previous complete checkpoint as the latest one.
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        name = f"cycle_{self.cycle:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            self.synthetic.save_checkpoint(tmp / "synthetic.pt")
            self.physical.save_params(tmp / "physical.npz")
            state = {"format": _CHECKPOINT_FORMAT, "cycle": self.cycle, "warmed_up": self.warmed_up,
                     "history": self.history, "config": to_dict(self.config)}
            (tmp / "hybrid.json").write_text(json.dumps(state, indent=1))
            final = root / name
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _atomic_text(root / "latest.json", json.dumps({"format": _CHECKPOINT_FORMAT, "path": name}))
        return root / name

    def load_checkpoint(self, directory: str | os.PathLike) -> bool:
        """Restore the state saved by :meth:`save_checkpoint` (the latest complete one).

        Returns:
            True if a checkpoint was loaded, False if ``directory`` holds none (nothing is loaded
            silently: the caller decides to resume).

        Raises:
            ValueError: the folder holds something that is not a hybridkit checkpoint, or one
                made with another hybrid config.
        """
        root = Path(directory)
        pointer = root / "latest.json"
        if not pointer.exists():
            return False
        latest = json.loads(pointer.read_text())
        name = latest.get("path", "")
        if latest.get("format") != _CHECKPOINT_FORMAT or not name.startswith("cycle_") or "/" in name:
            raise ValueError(f"{pointer} is not a HybridTrainer checkpoint pointer.")
        folder = root / name
        state = json.loads((folder / "hybrid.json").read_text())
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{folder} is not a HybridTrainer checkpoint.")
        if state["config"] != to_dict(self.config):
            diff = {k: (v, getattr(self.config, k)) for k, v in state["config"].items()
                    if getattr(self.config, k, None) != v}
            raise ValueError(f"Checkpoint {folder} was made with another hybrid config (saved, now): "
                             f"{diff}. Fix: resume with the same config or start a new run directory.")
        self.synthetic.load_checkpoint(folder / "synthetic.pt")
        self.physical.load_params(folder / "physical.npz")
        self.cycle = int(state["cycle"])
        self.warmed_up = bool(state["warmed_up"])
        self.history = list(state["history"])
        return True


# ---------------------------------------------------------------------- helpers
def _hybrid_config(config) -> HybridConfig:
    if isinstance(config, HybridConfig) or config is None:
        return from_dict(HybridConfig, config)
    if not isinstance(config, Mapping):
        raise ConfigError(f"Expected a dict or a HybridConfig, got {type(config).__name__}.")
    if "hybrid" in config:
        return from_dict(HybridConfig, config["hybrid"], where="hybrid")
    return from_dict(HybridConfig, config, where="hybrid")


def _seed(seed: int, cycle: int) -> int:
    """A per-cycle seed: cycles draw different data, reruns and resumes the same."""
    return int(np.random.SeedSequence([int(seed), int(cycle) + 1]).generate_state(1)[0])


def _field_view(real: HybridDataset, steps: int) -> HybridDataset:
    """The same simulations in field mode with the physical model's window length."""
    return HybridDataset(real.data_manager, real.sim_indices, real.field_names, num_frames=real.num_frames,
                         num_predict_steps=steps, dynamic_fields=real.dynamic_fields,
                         static_fields=real.static_fields, use_sliding_window=real.use_sliding_window,
                         return_fields=True)


def _spread(size: int, n: int | None) -> list[int]:
    if n is None or n >= size:
        return list(range(size))
    return sorted(set(np.linspace(0, size - 1, n).round().astype(int).tolist()))


def _batch(values: dict) -> int:
    return next(iter(values.values())).shape.get_size("batch")


def _expand(w: math.Tensor, init: dict, tgt: dict) -> math.Tensor:
    """Weights with explicit ``batch`` and ``time`` dims (so they can be concatenated)."""
    b = _batch(init)
    t = next(iter(tgt.values())).shape.get_size("time")
    w = math.expand(w, math.batch(batch=b))
    return math.expand(w, math.batch(time=t))


def _real_part(init: dict, tgt: dict, n_real: int):
    return ({k: v.batch[:n_real] for k, v in init.items()}, {k: v.batch[:n_real] for k, v in tgt.items()})


def _jsonable(params: dict) -> dict:
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()) for k, v in params.items()}


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
