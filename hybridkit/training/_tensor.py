"""``TensorTrainer``: a torch model with its optimizer, LR schedule, device and random generator."""
from __future__ import annotations

import torch
from torch import nn

from .._backend import resolve_device
from .._config import to_dict
from ._base import AbstractTrainer
from ._checkpoint import CheckpointError, require
from ._configs import TensorConfig

__all__ = ["TensorTrainer"]

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
_STATE_KEYS = ("model_class", "model_config", "model", "optimizer", "scheduler", "generator", "config")


class TensorTrainer(AbstractTrainer):
    """The torch half of the trainer hierarchy: what a network trainer needs besides its loss.

    Creates the optimizer (:meth:`_create_optimizer`) and the learning-rate scheduler once, so a
    second ``train()`` continues with their state; places the model on the configured device;
    owns a seeded ``torch.Generator`` for any randomness of training (e.g. input noise); and
    makes all of it one ``state_dict()``.

    Args:
        config: a :class:`~hybridkit.training.TensorConfig` (or a subclass).
        model: the network, moved to ``config.device`` (``"auto"``: CUDA when present).

    Attributes:
        model, optimizer, scheduler, device, generator, config.
    """

    def __init__(self, config: TensorConfig, model: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected a torch.nn.Module as model, got {type(model).__name__}.")
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module  # trainers wrap what needs wrapping themselves (see _distributed.py)
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.optimizer = self._create_optimizer()
        self.scheduler = self._create_scheduler()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(config.seed))

    def _create_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of ``config.optimizer`` over the model's parameters."""
        cfg = self.config
        return _OPTIMIZERS[cfg.optimizer](self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def _create_scheduler(self):
        """The LR scheduler of ``config.lr_schedule``, stepped once per epoch."""
        cfg, s = self.config, torch.optim.lr_scheduler
        if cfg.lr_schedule == "exponential":
            return s.ExponentialLR(self.optimizer, gamma=cfg.lr_gamma)
        if cfg.lr_schedule == "step":
            return s.StepLR(self.optimizer, step_size=cfg.lr_period, gamma=cfg.lr_gamma)
        if cfg.lr_schedule == "cosine":
            return s.CosineAnnealingLR(self.optimizer, T_max=cfg.lr_period)
        return s.ExponentialLR(self.optimizer, gamma=1.0)  # constant; one scheduler type keeps states uniform

    @property
    def _map_location(self):
        return self.device

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Epoch, history, model weights (with the model's class and config), optimizer,
        scheduler, random generator and the trainer config."""
        return {**super().state_dict(), "model_class": type(self.model).__name__,
                "model_config": _model_config(self.model), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(), "config": to_dict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        require(state, _STATE_KEYS, "the state", type(self).__name__)
        self._check_architecture(state)
        saved = state["config"] if isinstance(state["config"], dict) else {}
        for key in ("optimizer", "lr_schedule"):
            if saved.get(key) != getattr(self.config, key):
                raise CheckpointError(
                    f"It was trained with {key}={saved.get(key)!r}, this trainer uses {getattr(self.config, key)!r}. "
                    f"Fix: build the trainer with {key}={saved.get(key)!r}.")
        bad = [k for k, v in state["model"].items() if torch.is_tensor(v) and v.is_floating_point()
               and not bool(torch.isfinite(v).all())]
        if bad:
            raise CheckpointError(f"Its weights are not finite ({len(bad)} tensor(s), e.g. {bad[:3]}): a diverged "
                                  "model. Fix: use an earlier checkpoint, or start fresh.")
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"].cpu())

    def _check_architecture(self, state: dict) -> None:
        if not isinstance(state["model"], dict) or not all(torch.is_tensor(v) for v in state["model"].values()):
            raise CheckpointError("Its model weights are malformed (expected a dict of tensors). Fix: use "
                                  "another checkpoint, or start fresh.")
        mine = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in state["model"].items()}
        if state["model_class"] == type(self.model).__name__ and state["model_config"] == _model_config(
                self.model) and mine == theirs:
            return
        diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        raise CheckpointError(
            f"It holds a {state['model_class']} with config {state['model_config']}; this trainer's model is "
            f"a {type(self.model).__name__} with config {_model_config(self.model)} ({len(diff)} parameter(s) "
            f"differ, e.g. {diff[:3]}). Fix: build the model with the checkpoint's class and config before loading."
        )

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate (after schedule and rollbacks)."""
        return float(self.optimizer.param_groups[0]["lr"])


def _model_config(model: nn.Module) -> dict | None:
    cfg = getattr(model, "config", None)
    try:
        return to_dict(cfg)
    except TypeError:  # not a dataclass: the state dict's shapes still identify the architecture
        return None
