"""``SyntheticTrainer``: trains a network to step a PDE forward, by an autoregressive rollout loss."""
from __future__ import annotations

import copy
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._backend import resolve_device
from .._checks import is_integer
from .._config import ConfigError, from_dict, to_dict
from ..models import rollout
from ._base import AbstractTrainer
from ._distributed import all_reduce_sum, barrier, ddp_rollout, is_distributed, is_rank_zero, set_epoch

_CHECKPOINT_FORMAT = "hybridkit.SyntheticTrainer/1"
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
_LR_SCHEDULES = ("constant", "exponential", "step", "cosine")
_ON_NAN = ("raise", "rollback")
_CHECKPOINT_KEYS = ("model_class", "model_config", "model_state", "optimizer_state", "scheduler_state",
                    "epoch", "history", "noise_state", "trainer_config")


class CheckpointError(ValueError):
    """A file is not a checkpoint this trainer can load (damaged, foreign, another model, or
    holding Python objects that loading would have to execute); the message says why and the fix."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss (``on_nan="raise"``, or rollbacks exhausted). The
    trainer is back at the state of the start of the failed epoch."""


class DivergenceWarning(RuntimeWarning):
    """An epoch with a non-finite loss was rolled back and is retried with a lower learning rate."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Options of :class:`SyntheticTrainer`: the ``trainer_params`` section of the seed's config.

    Unknown keys are rejected. ``epochs``, ``batch_size``, ``train_sim`` and ``val_sim`` belong to
    the seed's ``trainer_params`` section but are read by the code that builds the data and calls
    ``train()``: the trainer accepts and ignores them (``train`` takes ``num_epochs`` explicitly).
    """

    learning_rate: float = 1e-3  # initial step size of the optimizer
    num_predict_steps: int = 1  # rollout length of the loss, unless rollout_schedule says otherwise
    # ((epoch, steps), ...): from global epoch `epoch` on (counted over all train() calls), roll out
    # `steps` steps; before the first entry num_predict_steps. E.g. ((0, 1), (20, 4)).
    rollout_schedule: tuple | None = None
    optimizer: str = "adam"  # "adam" or "adamw"
    weight_decay: float = 0.0  # L2 (adam) or decoupled (adamw) weight decay
    lr_schedule: str = "constant"  # "constant", "exponential", "step" or "cosine"; stepped once per epoch
    lr_gamma: float = 0.95  # factor per epoch ("exponential") or per lr_period epochs ("step")
    lr_period: int = 100  # epochs per decay ("step") or of the half cosine down to 0 ("cosine")
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    # std of Gaussian noise added to the dynamic channels of each initial state: teaches the
    # network to correct small errors of its own rollouts (0: off)
    noise_std: float = 0.0
    seed: int = 0  # seeds the noise generator (the model's initial weights are seeded by the caller)
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
    # a non-finite loss in an epoch (divergence): "raise" DivergenceError, or "rollback": restore
    # the state of the epoch's start, multiply the learning rate by nan_lr_factor and retry the
    # epoch (at most nan_retries times, a DivergenceWarning each time). Either way the trainer is
    # left at the last good state; NaN / inf in the data is a ValueError, never retried.
    on_nan: str = "raise"
    nan_lr_factor: float = 0.5  # learning-rate factor per rollback, in (0, 1)
    nan_retries: int = 3  # rollbacks per epoch before giving up with DivergenceError
    epochs: int | None = None  # read by the caller, not by the trainer
    batch_size: int | None = None  # read by the caller (DataLoader), not by the trainer
    train_sim: list | None = None  # read by the caller (which simulations to load), not by the trainer
    val_sim: list | None = None  # read by the caller (validation is external), not by the trainer

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ValueError(f"Expected learning_rate > 0, got {self.learning_rate}.")
        if not is_integer(self.num_predict_steps) or self.num_predict_steps < 1:
            raise ValueError(f"Expected an integer num_predict_steps >= 1, got {self.num_predict_steps!r}.")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"Expected optimizer in {sorted(_OPTIMIZERS)}, got {self.optimizer!r}.")
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(f"Expected lr_schedule in {list(_LR_SCHEDULES)}, got {self.lr_schedule!r}.")
        if int(self.lr_period) < 1 or not self.lr_gamma > 0:
            raise ValueError(f"Expected lr_period >= 1 and lr_gamma > 0, got {self.lr_period}, {self.lr_gamma}.")
        if self.noise_std < 0 or (self.grad_clip is not None and not self.grad_clip > 0):
            raise ValueError(f"Expected noise_std >= 0 and grad_clip > 0 or None, got {self.noise_std}, {self.grad_clip}.")
        if self.on_nan not in _ON_NAN:
            raise ValueError(f"Expected on_nan in {_ON_NAN}, got {self.on_nan!r}.")
        if not 0 < self.nan_lr_factor < 1 or not is_integer(self.nan_retries) or self.nan_retries < 0:
            raise ValueError(f"Expected 0 < nan_lr_factor < 1 and an integer nan_retries >= 0, got "
                             f"{self.nan_lr_factor}, {self.nan_retries!r}.")
        object.__setattr__(self, "rollout_schedule", _parse_schedule(self.rollout_schedule))


def _parse_schedule(schedule) -> tuple | None:
    if schedule is None:
        return None
    try:
        entries = tuple((int(e), int(s)) for e, s in schedule)
    except (TypeError, ValueError):
        entries = None
    epochs = [e for e, _ in entries or ()]
    if not entries or any(e < 0 or s < 1 for e, s in entries) or epochs != sorted(set(epochs)):
        raise ValueError(
            f"Expected rollout_schedule as [(epoch, steps), ...] with strictly increasing epochs >= 0 "
            f"and steps >= 1, got {schedule!r}. Example: [(0, 1), (20, 4)]."
        )
    return entries


def _trainer_config(config) -> SyntheticConfig:
    """The trainer's options from a ``SyntheticConfig``, the seed's whole experiment config (its
    ``trainer_params`` section is read, nothing else), the section alone, or None (defaults)."""
    if config is None or isinstance(config, SyntheticConfig):
        return from_dict(SyntheticConfig, config)
    if not isinstance(config, Mapping):
        raise ConfigError(f"Expected a dict or a SyntheticConfig, got {type(config).__name__}.")
    if "trainer_params" in config:
        return from_dict(SyntheticConfig, config["trainer_params"], where="trainer_params")
    if {"model", "data", "run_params"} & set(config):
        raise ConfigError(
            "The experiment config has no 'trainer_params' section. Fix: add trainer_params: "
            "{learning_rate: ..., num_predict_steps: ...}, or pass a SyntheticConfig."
        )
    return from_dict(SyntheticConfig, config, where="trainer_params")


class SyntheticTrainer(AbstractTrainer):
    """Trains ``model`` so that its rollout from each initial state matches the target states.

    Loss per batch, for ``S`` rollout steps (``num_predict_steps`` or the rollout schedule):

    .. math:: L = \\frac{1}{S} \\sum_{s=1}^{S} \\mathrm{MSE}(\\hat u_s, u_s),
              \\quad \\hat u_{s} = \\mathrm{model}([\\hat u_{s-1}, c]),\\ \\hat u_0 = u_0 (+ \\text{noise})

    where ``c`` are the static channels, fed back unchanged; gradients flow through the whole
    rollout. With per-sample weights the batch loss is ``sum_b w_b L_b / sum_b w_b``.

    The optimizer and LR scheduler are created once: a second :meth:`train` continues with their
    state (and with the global epoch counter that the rollout schedule uses).

    Args:
        config: the seed's experiment config (only its ``trainer_params`` section is read), that
            section alone, or a :class:`SyntheticConfig`.
        model: ``(batch, C_in, *space) -> (batch, C_dyn, *space)``; moved to the trainer's device.

    Data (``train(data_source, num_epochs)``): an iterable of batches (e.g. a ``DataLoader`` over a
    ``HybridDataset``), each ``(initial, targets)`` or ``(initial, targets, weight)`` with
    ``initial (B, C_in, *space)`` (dynamic channels first), ``targets (B, T, C_dyn, *space)``,
    ``T >=`` the rollout length, and ``weight`` non-negative: ``(B,)`` per sample, or per point
    ``(B, T, 1 | C_dyn, *space)`` (e.g. an observation mask; the loss is then the weighted mean
    over all points).

    Attributes:
        epoch: epochs trained so far over all ``train()`` calls.
        history: per epoch ``loss`` (mean over samples), ``lr`` and ``rollout_steps``.
    """

    def __init__(self, config: Mapping[str, Any] | SyntheticConfig | None, model: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected a torch.nn.Module as model, got {type(model).__name__}.")
        self.config = _trainer_config(config)
        self.device = resolve_device(self.config.device)
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module  # the trainer wraps the rollout itself (see _distributed.py)
        self.model = model.to(self.device)
        # Under torchrun (a process group is initialised): the rollout wrapped in DDP, which
        # averages the gradients over the ranks; None in a single process
        self._ddp = ddp_rollout(self.model, self.device)
        cfg = self.config
        self.optimizer = _OPTIMIZERS[cfg.optimizer](self.model.parameters(), lr=cfg.learning_rate,
                                                    weight_decay=cfg.weight_decay)
        self.scheduler = _make_scheduler(cfg, self.optimizer)
        self._noise = torch.Generator(device=self.device)
        self._noise.manual_seed(cfg.seed)
        self._noise_off = False  # evaluate() computes the loss without input noise
        self.history.update(lr=[], rollout_steps=[])

    # ---------------------------------------------------------------- training
    def train(self, data_source, num_epochs: int, *, progress: bool = True) -> dict:
        """Train ``num_epochs`` epochs on ``data_source`` (see :meth:`AbstractTrainer.train`).

        Under ``torchrun`` pass a :func:`~hybridkit.training.distributed_loader`: each rank trains
        on its share of every global batch; the progress bar shows on rank 0 only and the returned
        losses are means over all ranks' samples (the same on every rank).
        """
        return super().train(data_source, num_epochs, progress=progress and is_rank_zero())

    def rollout_steps(self, epoch: int | None = None) -> int:
        """Rollout length of the loss at global epoch ``epoch`` (default: the next epoch)."""
        epoch = self.epoch if epoch is None else epoch
        steps = self.config.num_predict_steps
        for start, s in self.config.rollout_schedule or ():
            if epoch >= start:
                steps = s
        return int(steps)

    def _train_epoch_with_data(self, data_source) -> float:
        if isinstance(data_source, Dataset) and not isinstance(data_source, DataLoader):
            raise TypeError(
                f"Expected batches, got the dataset {type(data_source).__name__} itself. Fix: wrap it, "
                "e.g. hybridkit.data.make_loader(dataset, batch_size=32) or torch DataLoader(dataset, ...)."
            )
        steps = self.rollout_steps()
        set_epoch(data_source, self.epoch)  # a DistributedSampler's permutation depends on the epoch
        start = self._snapshot()  # the last good state: what a non-finite epoch goes back to
        cfg = self.config
        for attempt in range(cfg.nan_retries + 1):
            lr = self.optimizer.param_groups[0]["lr"]
            loss, bad_batches = self._run_epoch(data_source, steps)
            if loss is not None:
                break
            self._restore(start)
            if bad_batches:
                raise ValueError(
                    f"Expected finite data, got NaN or inf in batch(es) {bad_batches[:8]} of epoch "
                    f"{self.epoch + 1} (initial states, targets or weights). The trainer is back at the "
                    "start of the epoch. Fix: check the dataset (np.isfinite) and leave the bad "
                    "simulations out."
                )
            if cfg.on_nan == "raise" or attempt == cfg.nan_retries:
                tried = "" if cfg.on_nan == "raise" else f" after {attempt} rollback(s)"
                raise DivergenceError(
                    f"The loss of epoch {self.epoch + 1} is not finite (training diverged at lr={lr:.3g}"
                    f"{tried}). The trainer is back at the start of the epoch. Fix: lower learning_rate, "
                    "set grad_clip, or set on_nan='rollback' to retry with a lower learning rate."
                )
            for group in self.optimizer.param_groups:
                group["lr"] *= cfg.nan_lr_factor
            warnings.warn(
                f"Epoch {self.epoch + 1}: non-finite loss at lr={lr:.3g}; rolled back to the start of the "
                f"epoch, retrying with lr={lr * cfg.nan_lr_factor:.3g} (rollback {attempt + 1} of "
                f"{cfg.nan_retries}).", DivergenceWarning, stacklevel=4)
        self.history["lr"].append(lr)
        self.history["rollout_steps"].append(steps)
        self.scheduler.step()
        return loss

    def _run_epoch(self, data_source, steps: int) -> tuple[float | None, list[int]]:
        """One pass over ``data_source``: ``(mean loss, [])``, or ``(None, indices of batches with
        non-finite data)`` when the loss is not finite."""
        self.model.train()
        total = torch.zeros((), device=self.device)  # summed on the device: no sync per batch
        count = torch.zeros((), device=self.device)
        finite = []  # per batch, whether its data are finite (looked at only when the loss is not)
        for batch in data_source:
            loss, n = self._batch_loss(batch, steps)
            finite.append(_finite(batch))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            total += loss.detach() * n
            count += n
        if is_distributed():  # the epoch loss over every rank's samples
            total, count = all_reduce_sum(total), all_reduce_sum(count)
        if not count.item() > 0:
            raise ValueError(
                "data_source yielded no batches (or only zero weights). Fix: check that the dataset "
                "is not empty (frames > num_predict_steps) and that drop_last does not drop everything."
            )
        if bool(torch.isfinite(total)):
            return float(total / count), []
        bad = [i for i, ok in enumerate(finite) if not bool(ok)]
        if is_distributed():  # every rank takes the same branch: data error or divergence
            if not int(all_reduce_sum(torch.tensor(float(len(bad)), device=self.device))):
                bad = []
            elif not bad:
                bad = [-1]  # another rank's batch
        return None, bad

    def _snapshot(self) -> dict:
        """Copies of everything an epoch changes (weights, optimizer, noise generator)."""
        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "noise": self._noise.get_state()}

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._noise.set_state(state["noise"])

    def _batch_loss(self, batch, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean rollout MSE of one batch, and the batch's weight in the epoch mean."""
        initial, targets, weight = _unpack(batch, steps)
        initial = initial.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        if self.config.noise_std > 0 and not self._noise_off:
            c_dyn = targets.shape[2]
            noise = torch.randn(initial[:, :c_dyn].shape, generator=self._noise, device=self.device,
                                dtype=initial.dtype)
            initial = torch.cat([initial[:, :c_dyn] + self.config.noise_std * noise, initial[:, c_dyn:]], 1)
        if self._ddp is not None and torch.is_grad_enabled():
            pred = self._ddp(initial, steps)  # gradients are averaged over the ranks in backward
        else:
            pred = rollout(self.model, initial, steps)
        err2 = (pred - targets[:, :steps]).pow(2)
        if weight is None:
            per_sample = err2.flatten(1).mean(1)
            return per_sample.mean(), torch.tensor(float(len(per_sample)), device=self.device)
        weight = weight.to(self.device, err2.dtype)
        if weight.ndim == 1:
            per_sample = err2.flatten(1).mean(1)
            total_weight = weight.sum()
            return (weight * per_sample).sum() / total_weight.clamp_min(1e-30), total_weight
        # per-point weights (e.g. an observation mask): the weighted mean over all points; the
        # batch counts in the epoch mean as its weight in units of whole samples
        weight = weight[:, :steps].expand_as(err2)
        total = weight.sum()
        return (weight * err2).sum() / total.clamp_min(1e-30), total / err2[0].numel()

    @torch.no_grad()
    def evaluate(self, data_source) -> float:
        """The training loss on ``data_source`` without updating anything (eval mode, no input
        noise, the current rollout length): the mean over samples, weighted like in training.

        A model whose predictions are not finite scores ``inf`` (so comparisons of losses stay
        meaningful); NaN / inf in the data is a ValueError."""
        was_training = self.model.training
        self.model.eval()
        steps = self.rollout_steps()
        total = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        self._noise_off = True
        finite = []
        try:
            for batch in data_source:
                loss, n = self._batch_loss(batch, steps)
                finite.append(_finite(batch))
                total += loss * n
                count += n
        finally:
            self._noise_off = False
            self.model.train(was_training)
        if not count.item() > 0:
            raise ValueError("data_source yielded no batches (or only zero weights).")
        if bool(torch.isfinite(total)):
            return float(total / count)
        bad = [i for i, ok in enumerate(finite) if not bool(ok)]
        if bad:
            raise ValueError(f"Expected finite data, got NaN or inf in batch(es) {bad[:8]}. Fix: check the "
                             "dataset (np.isfinite) and leave the bad simulations out.")
        return float("inf")  # a diverged model: worse than any finite loss (reversion compares)

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write model, optimizer, scheduler, epoch counter, history and noise-generator state.

        The file is written to a temporary name next to ``path`` and renamed (atomic: a reader never
        sees half a checkpoint). Returns the path written. Under ``torchrun`` rank 0 writes (the
        plain module's weights, loadable without DDP) and every rank waits until it has.
        """
        path = Path(path)
        if is_rank_zero():
            self._write_checkpoint(path)
        barrier()
        return path

    def _write_checkpoint(self, path: Path) -> None:
        """The write itself, in this process, without waiting for other ranks."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": _CHECKPOINT_FORMAT,
            "model_class": type(self.model).__name__,
            "model_config": _model_config(self.model),
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": {k: list(v) for k, v in self.history.items()},
            "noise_state": self._noise.get_state(),
            "trainer_config": to_dict(self.config),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` into this trainer and its model;
        the next :meth:`train` continues exactly where the saved trainer stopped.

        The file is read with ``torch.load(weights_only=True)``: tensors and plain data only, so a
        crafted file cannot run code; one that holds other objects is refused. Nothing of the
        trainer changes unless the whole checkpoint loads.

        Raises:
            FileNotFoundError: no file at ``path``.
            CheckpointError (a ValueError): the file is damaged (e.g. truncated), not such a
                checkpoint, holds objects other than tensors and plain data, or holds another
                architecture or optimizer / LR schedule than this trainer's.
        """
        ckpt = _read_checkpoint(Path(path), self.device)
        _check_architecture(path, ckpt, self.model)
        saved_cfg = ckpt["trainer_config"]
        for key in ("optimizer", "lr_schedule"):
            if saved_cfg.get(key) != getattr(self.config, key):
                raise CheckpointError(
                    f"Checkpoint {path} was trained with {key}={saved_cfg.get(key)!r}, this trainer uses "
                    f"{getattr(self.config, key)!r}. Fix: build the trainer with {key}={saved_cfg.get(key)!r}."
                )
        before = (self._snapshot(), self.scheduler.state_dict(), self.epoch, self.history)
        try:
            self.model.load_state_dict(ckpt["model_state"])
            self.optimizer.load_state_dict(ckpt["optimizer_state"])
            self.scheduler.load_state_dict(ckpt["scheduler_state"])
            self.epoch = int(ckpt["epoch"])
            self.history = {k: list(v) for k, v in ckpt["history"].items()}
            self._noise.set_state(ckpt["noise_state"].cpu())
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as e:
            self._restore(before[0])
            self.scheduler.load_state_dict(before[1])
            self.epoch, self.history = before[2], before[3]
            raise CheckpointError(f"Checkpoint {path} does not fit this trainer ({e}). Fix: load a file written "
                                  "by SyntheticTrainer.save_checkpoint for this model and config.") from None


def _read_checkpoint(path: Path, device) -> dict:
    """The checkpoint's dict, read without executing anything, with its keys checked."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as e:
        # the weights-only unpickler names a blocked GLOBAL when the file wants to build objects;
        # other unpickling errors (bad opcodes) are just damaged bytes
        lines = [ln for ln in str(e).splitlines() if "GLOBAL" in ln]
        if not lines:
            raise CheckpointError(_damaged(path, e)) from None
        raise CheckpointError(
            f"Refused to load {path}: it holds Python objects other than tensors and plain data, and "
            f"unpickling them could execute code (torch.load(weights_only=True) stopped: "
            f"{lines[0].split('. Please')[0].strip()[:200]}). Fix: load only checkpoints written by "
            "SyntheticTrainer.save_checkpoint; never load this file with weights_only=False unless you "
            "trust whoever made it."
        ) from None
    except Exception as e:  # noqa: BLE001  (torch raises many types for damaged files)
        raise CheckpointError(_damaged(path, e)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a SyntheticTrainer checkpoint (expected format "
                              f"{_CHECKPOINT_FORMAT!r}). Fix: pass a file written by save_checkpoint.")
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt]
    bad = [k for k in ("model_state", "history", "trainer_config") if k not in missing and not isinstance(ckpt[k], dict)]
    if missing or bad or not all(torch.is_tensor(v) for v in ckpt.get("model_state", {}).values()):
        raise CheckpointError(f"{path} claims to be a SyntheticTrainer checkpoint but lacks {missing} or has "
                              f"malformed {bad or ['model_state']}. Fix: use another checkpoint, or start fresh.")
    return ckpt


def _damaged(path: Path, e: Exception) -> str:
    return (f"Expected a checkpoint written by SyntheticTrainer.save_checkpoint, but {path} cannot be "
            f"read ({type(e).__name__}: {str(e)[:200]}): it is damaged (e.g. truncated) or not a torch "
            "file. Fix: use the previous checkpoint, or start fresh.")


def _finite(batch) -> torch.Tensor | bool:
    """Whether every tensor of a batch is finite (a 0-d bool tensor on the batch's device: no sync)."""
    ok = True
    for t in batch:
        if torch.is_tensor(t) and t.is_floating_point():
            ok = torch.isfinite(t).all() & ok
    return ok


def _unpack(batch, steps: int):
    """``(initial, targets[, weight])`` with the shapes checked against each other."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(
            "Expected each batch as (initial, targets) or (initial, targets, weight), got "
            f"{type(batch).__name__}{'' if not isinstance(batch, (tuple, list)) else f' of length {len(batch)}'}."
        )
    initial, targets = batch[0], batch[1]
    weight = batch[2] if len(batch) == 3 else None
    if (targets.ndim != initial.ndim + 1 or targets.shape[0] != initial.shape[0]
            or targets.shape[3:] != initial.shape[2:] or targets.shape[2] > initial.shape[1]):
        raise ValueError(
            f"Expected initial (B, C_in, *space) and targets (B, T, C_dyn <= C_in, *space), got "
            f"{tuple(initial.shape)} and {tuple(targets.shape)}. Fix: use HybridDataset in tensor mode "
            "(return_fields=False) batched by a DataLoader."
        )
    if targets.shape[1] < steps:
        raise ValueError(
            f"The rollout needs {steps} target steps, the batch has {targets.shape[1]}. Fix: build the "
            f"dataset with num_predict_steps >= {steps} (the longest rollout of the schedule)."
        )
    if weight is not None:
        per_point = weight.ndim > 1 and weight.shape[0] == initial.shape[0] and weight.ndim == targets.ndim
        if not (weight.shape == (initial.shape[0],) or per_point) or bool((~(weight >= 0)).any()):
            raise ValueError(
                f"Expected weight of shape ({initial.shape[0]},) (per sample) or broadcasting to the "
                f"targets {tuple(targets.shape)} (per point, e.g. (B, T, 1, *space)), all >= 0 and not "
                f"NaN, got {tuple(weight.shape)} with values in [{weight.min():.3g}, {weight.max():.3g}]."
            )
    return initial, targets, weight


def _make_scheduler(cfg: SyntheticConfig, optimizer):
    s = torch.optim.lr_scheduler
    if cfg.lr_schedule == "exponential":
        return s.ExponentialLR(optimizer, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "step":
        return s.StepLR(optimizer, step_size=cfg.lr_period, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=cfg.lr_period)
    return s.ExponentialLR(optimizer, gamma=1.0)  # constant; one scheduler type keeps checkpoints uniform


def _model_config(model: nn.Module) -> dict | None:
    cfg = getattr(model, "config", None)
    try:
        return to_dict(cfg)
    except TypeError:  # not a dataclass: the state dict's shapes still identify the architecture
        return None


def _check_architecture(path, ckpt: dict, model: nn.Module) -> None:
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt["model_state"].items()}
    same_class = ckpt["model_class"] == type(model).__name__
    if same_class and ckpt["model_config"] == _model_config(model) and mine == theirs:
        return
    diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    raise CheckpointError(
        f"Checkpoint {path} holds a {ckpt['model_class']} with config {ckpt['model_config']}; this "
        f"trainer's model is a {type(model).__name__} with config {_model_config(model)} "
        f"({len(diff)} parameter(s) differ, e.g. {diff[:3]}). Fix: build the model with the "
        "checkpoint's class and config before loading."
    )
