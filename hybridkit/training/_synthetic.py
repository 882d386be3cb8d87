"""``SyntheticTrainer``: trains a network to step a PDE forward, by an autoregressive rollout loss."""
from __future__ import annotations

import copy
import warnings
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data import check_network_matches
from ..models import rollout
from ._configs import SyntheticConfig, trainer_config
from ._distributed import all_reduce_sum, ddp_rollout, is_distributed, set_epoch
from ._records import EpochRecord
from ._tensor import TensorTrainer

__all__ = ["SyntheticTrainer", "DivergenceError", "DivergenceWarning", "rollout_mse"]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss (``on_nan="raise"``, or rollbacks exhausted). The
    trainer is back at the state of the start of the failed epoch."""


class DivergenceWarning(RuntimeWarning):
    """An epoch with a non-finite loss was rolled back and is retried with a lower learning rate."""


def rollout_mse(pred: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None):
    """The rollout loss of a batch and the batch's weight in an epoch mean.

    Args:
        pred, targets: ``(B, S, C, *space)``.
        weight: None, per sample ``(B,)``, or per point broadcasting to ``targets`` (e.g. an
            observation mask ``(B, S, 1, *space)``).

    Returns:
        ``(loss, n)``: the mean squared error (weighted mean per sample or per point), and the
        batch's weight in units of whole samples.
    """
    err2 = (pred - targets).pow(2)
    if weight is None:
        per_sample = err2.flatten(1).mean(1)
        return per_sample.mean(), torch.tensor(float(len(per_sample)), device=pred.device)
    weight = weight.to(pred.device, err2.dtype)
    if weight.ndim == 1:
        per_sample = err2.flatten(1).mean(1)
        total_weight = weight.sum()
        return (weight * per_sample).sum() / total_weight.clamp_min(1e-30), total_weight
    weight = weight[:, :err2.shape[1]].expand_as(err2)
    total = weight.sum()
    return (weight * err2).sum() / total.clamp_min(1e-30), total / err2[0].numel()


class SyntheticTrainer(TensorTrainer):
    """Trains ``model`` so that its rollout from each initial state matches the target states.

    Loss per batch, for ``S`` rollout steps (``num_predict_steps`` or the rollout schedule):

    .. math:: L = \\frac{1}{S} \\sum_{s=1}^{S} \\mathrm{MSE}(\\hat u_s, u_s),
              \\quad \\hat u_{s} = \\mathrm{model}([\\hat u_{s-1}, c]),\\ \\hat u_0 = u_0 (+ \\text{noise})

    where ``c`` are the static channels, fed back unchanged; gradients flow through the whole
    rollout (:func:`rollout_mse`: per-sample or per-point weights).

    Args:
        config: a :class:`SyntheticConfig`, its keys as a dict, or an experiment config with a
            ``trainer_params`` section (keys of the physical trainer there are ignored).
        model: ``(batch, C_in, *space) -> (batch, C_dyn, *space)``; moved to the trainer's device.

    Data (``train(data_source, num_epochs)``): an iterable of batches (e.g. a ``DataLoader`` over a
    ``HybridDataset``), each ``(initial, targets)`` or ``(initial, targets, weight)`` with
    ``initial (B, C_in, *space)`` (dynamic channels first), ``targets (B, T, C_dyn, *space)``,
    ``T >=`` the rollout length, and ``weight`` as in :func:`rollout_mse`.

    Attributes:
        epoch: epochs trained so far over all ``train()`` calls.
        history: one :class:`~hybridkit.training.EpochRecord` per epoch (``loss``, ``lr``,
            ``rollout_steps``); ``history["loss"]`` is the loss curve.
    """

    record_type = EpochRecord

    def __init__(self, config: Mapping[str, Any] | SyntheticConfig | None, model: nn.Module):
        super().__init__(trainer_config(SyntheticConfig, config), model)
        # Under torchrun (a process group is initialised): the rollout wrapped in DDP, which
        # averages the gradients over the ranks; None in a single process
        self._ddp = ddp_rollout(self.model, self.device)
        self._noise_off = False  # evaluate() computes the loss without input noise
        self._layout = None  # the dataset of the last data trained on (the retained attributes)

    # ---------------------------------------------------------------- the original design's attributes
    @property
    def num_predict_steps(self) -> int:
        """Rollout length of the loss (before any rollout schedule)."""
        return self.config.num_predict_steps

    @property
    def loss_fn(self):
        """The batch loss, :func:`rollout_mse`."""
        return rollout_mse

    @property
    def field_names(self) -> tuple | None:
        """Fields of the last dataset trained on (None before training or for plain batches)."""
        return None if self._layout is None else tuple(self._layout.field_names)

    @property
    def dynamic_fields(self) -> tuple | None:
        """The predicted fields of the last dataset trained on."""
        return None if self._layout is None else tuple(self._layout.dynamic_fields)

    @property
    def static_fields(self) -> tuple | None:
        """The fields fed as constant input channels in the last dataset trained on."""
        return None if self._layout is None else tuple(self._layout.static_fields)

    @property
    def channel_map(self) -> dict | None:
        """``field name -> slice`` of its channels in ``initial`` (last dataset trained on)."""
        return None if self._layout is None else self._layout.channel_map

    def rollout_steps(self, epoch: int | None = None) -> int:
        """Rollout length of the loss at global epoch ``epoch`` (default: the next epoch)."""
        epoch = self.epoch if epoch is None else epoch
        steps = self.config.num_predict_steps
        for start, s in self.config.rollout_schedule or ():
            if epoch >= start:
                steps = s
        return int(steps)

    # ---------------------------------------------------------------- one epoch: policy around the loop
    def _train_epoch_with_data(self, data_source) -> EpochRecord:
        if isinstance(data_source, Dataset) and not isinstance(data_source, DataLoader):
            raise TypeError(
                f"Expected batches, got the dataset {type(data_source).__name__} itself. Fix: wrap it, "
                "e.g. hybridkit.data.make_loader(dataset, batch_size=32) or torch DataLoader(dataset, ...)."
            )
        self._layout = getattr(getattr(data_source, "dataset", None), "layout", self._layout)
        check_network_matches(self._layout, self.model)  # channels / ndim of the data vs the network
        steps = self.rollout_steps()
        set_epoch(data_source, self.epoch)  # an epoch-keyed sampler's permutation depends on the epoch
        start = copy.deepcopy(self.state_dict())  # the last good state: what a non-finite epoch goes back to
        cfg = self.config
        for attempt in range(cfg.nan_retries + 1):
            lr = self.learning_rate
            loss, bad_batches = self._run_epoch(data_source, steps)
            if loss is not None:
                break
            self.load_state_dict(start)
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
                f"{cfg.nan_retries}).", DivergenceWarning, stacklevel=5)
        self.scheduler.step()
        return EpochRecord(epoch=self.epoch + 1, loss=loss, lr=lr, rollout_steps=steps)

    def _run_epoch(self, data_source, steps: int) -> tuple[float | None, list[int]]:
        """One pass over ``data_source``: ``(mean loss, [])``, or ``(None, indices of batches with
        non-finite data)`` when the loss is not finite."""
        self.model.train()
        total = torch.zeros((), device=self.device)  # summed on the device: no sync per batch
        count = torch.zeros((), device=self.device)
        finite = []  # per batch, whether its data are finite (looked at only when the loss is not)
        for batch in data_source:
            loss, n = self._step(batch, steps)
            finite.append(_finite(batch))
            total += loss * n
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

    def _step(self, batch, steps: int):
        """One optimisation step on one batch; returns its (detached) loss and weight."""
        loss, n = self._batch_loss(batch, steps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach(), n

    def _batch_loss(self, batch, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rollout loss of one batch (:func:`rollout_mse`), and the batch's weight in the epoch mean."""
        initial, targets, weight = _unpack(batch, steps)
        initial = initial.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        if self.config.noise_std > 0 and not self._noise_off:
            c_dyn = targets.shape[2]
            noise = torch.randn(initial[:, :c_dyn].shape, generator=self.generator, device=self.device,
                                dtype=initial.dtype)
            initial = torch.cat([initial[:, :c_dyn] + self.config.noise_std * noise, initial[:, c_dyn:]], 1)
        if self._ddp is not None and torch.is_grad_enabled():
            pred = self._ddp(initial, steps)  # gradients are averaged over the ranks in backward
        else:
            pred = rollout(self.model, initial, steps)
        return rollout_mse(pred, targets[:, :steps], weight)

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
