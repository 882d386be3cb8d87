"""The rollout of a synthetic model: the one loop that training and evaluation share."""
from __future__ import annotations

from typing import Callable

import torch

from ._neural_field import AbstractNeuralField


def rollout(model: Callable[[torch.Tensor], torch.Tensor], initial: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Apply ``model`` ``n_steps`` times, feeding each prediction back as the next input.

    A neural field (:class:`AbstractNeuralField`) is not composed: its rollout is
    ``model.predict(initial, [1, ..., n_steps])``, its own prediction at those times. The input holds the dynamic channels first and the static ones after them; the model returns
    the next dynamic channels. The static channels of ``initial`` are appended unchanged at every
    step: ``x_{t+1} = cat(model(x_t), static)``. Differentiable (no ``no_grad`` here: training
    back-propagates through the whole rollout).

    Args:
        model: ``(batch, C_in, *space) -> (batch, C_dyn, *space)`` with ``C_dyn <= C_in``.
        initial: ``(batch, C_in, *space)``.
        n_steps: number of steps (>= 1).

    Returns:
        ``(batch, n_steps, C_dyn, *space)``: the predicted states after 1, ..., ``n_steps`` steps.

    Raises:
        ValueError: if the model's output does not fit its input (shape or channel count).
    """
    if int(n_steps) < 1:
        raise ValueError(f"Expected n_steps >= 1, got {n_steps}.")
    if isinstance(model, AbstractNeuralField):
        times = torch.arange(1, int(n_steps) + 1, dtype=initial.dtype, device=initial.device)
        return model.predict(initial, times)
    x, static, preds = initial, None, []
    for _ in range(int(n_steps)):
        y = model(x)
        if static is None:  # first step: the output fixes the number of dynamic channels
            _check_output(y, initial)
            static = initial[:, y.shape[1]:]
        preds.append(y)
        x = torch.cat([y, static], dim=1) if static.shape[1] else y
    return torch.stack(preds, dim=1)


def _check_output(y: torch.Tensor, x: torch.Tensor) -> None:
    if y.ndim != x.ndim or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:] or y.shape[1] > x.shape[1]:
        raise ValueError(
            f"Expected the model to map (batch, C_in, *space) = {tuple(x.shape)} to "
            f"(batch, C_dyn <= C_in, *space), got {tuple(y.shape)}. Fix: build the network with "
            "out_channels = number of dynamic channels and in_channels = dynamic + static channels."
        )
