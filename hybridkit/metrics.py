"""Errors between predictions and references, per sample and per rollout step.

* :func:`mse` — mean squared error per sample
* :func:`relative_l2` — ``||pred - ref|| / ||ref||`` per sample
* :func:`rollout_errors` — relative L2 of a network's autoregressive rollout, per step

All functions take torch tensors (numpy arrays are converted) with the batch on axis 0.
"""
from __future__ import annotations

from typing import Callable

import torch

from .models import rollout

__all__ = ["mse", "relative_l2", "rollout_errors"]


def _as_tensor(a) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.as_tensor(a)


def _check_same_shape(pred: torch.Tensor, ref: torch.Tensor) -> None:
    if pred.shape != ref.shape:
        raise ValueError(f"Expected pred and ref of the same shape, got {tuple(pred.shape)} and {tuple(ref.shape)}.")


def mse(pred, ref) -> torch.Tensor:
    """Mean squared error per sample.

    Args:
        pred, ref: ``(batch, ...)``, the same shape.

    Returns:
        ``(batch,)``: the mean over all axes but the first.
    """
    pred, ref = _as_tensor(pred), _as_tensor(ref)
    _check_same_shape(pred, ref)
    return (pred - ref).pow(2).flatten(1).mean(1)


def relative_l2(pred, ref, eps: float = 1e-12) -> torch.Tensor:
    """Relative L2 error per sample, ``||pred - ref||_2 / ||ref||_2`` over all axes but the first.

    Args:
        pred, ref: ``(batch, ...)``, the same shape.
        eps: guards the division for a reference that is zero.

    Returns:
        ``(batch,)``.
    """
    pred, ref = _as_tensor(pred), _as_tensor(ref)
    _check_same_shape(pred, ref)
    num = (pred - ref).flatten(1).norm(dim=1)
    return num / ref.flatten(1).norm(dim=1).clamp_min(eps)


@torch.no_grad()
def rollout_errors(model: Callable[[torch.Tensor], torch.Tensor], initial, targets) -> torch.Tensor:
    """Relative L2 error of each step of the network's autoregressive rollout, mean over samples.

    Args:
        model: ``(batch, C_in, *space) -> (batch, C_dyn, *space)`` (see :func:`hybridkit.models.rollout`).
        initial: ``(batch, C_in, *space)``, the start states.
        targets: ``(batch, steps, C_dyn, *space)``, the true states after 1 .. ``steps`` steps.

    Returns:
        ``(steps,)`` on the CPU: entry ``k`` is the error after ``k + 1`` steps.
    """
    initial, targets = _as_tensor(initial), _as_tensor(targets)
    is_module = isinstance(model, torch.nn.Module)
    device = next((p.device for p in model.parameters()), initial.device) if is_module else initial.device
    was_training = is_module and model.training
    if is_module:
        model.eval()
    try:
        pred = rollout(model, initial.to(device), targets.shape[1]).cpu()
    finally:
        if was_training:
            model.train()
    steps = targets.shape[1]
    per_step = relative_l2(pred.transpose(0, 1).reshape(steps * len(pred), -1),
                           targets.cpu().transpose(0, 1).reshape(steps * len(pred), -1))
    return per_step.reshape(steps, -1).mean(1)
