"""Whole trajectories predicted by a trained network next to the truth: what the notebooks show.

* :class:`Rollout` — truth and a network's autoregressive prediction of some trajectories in the
  storage layout ``(sims, time, *space[, vector])`` (frame 0: the shared initial state), with
  relative L2 errors per step and the "nothing moves" baseline
* :func:`rollout_dataset` — a network rolled out from frame 0 of some simulations of a dataset,
  over the frames the dataset holds
* :func:`rollout_solver` — a network and a physical model rolled out from the same initial
  states, for as many steps as wanted (beyond a dataset's time horizon)
* :func:`vorticity` — ``dv/dx - du/dy`` of 2D velocity fields (central differences)

Example::

    r = rollout_dataset(unet, DataManager(path), sim_indices=[28, 29, 30, 31])
    r.errors().mean(0)                 # (steps,): relative L2 after 1 .. steps steps
    compare_rollout(r.truth["velocity"][0], r.prediction["velocity"][0], grid=r.grid, dt=r.dt)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from phi.field import Field

from ._grid import GridSpec
from .convert import split_channels, stack_channels, to_field, to_tensor
from .data import DataManager, HybridDataset
from .models import rollout
from .physics import AbstractPDE

__all__ = ["Rollout", "rollout_dataset", "rollout_solver", "vorticity"]

Network = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Rollout:
    """Truth and prediction of the same trajectories, in the storage layout.

    Attributes:
        truth, prediction: ``name -> (sims, time, *space[, vector])`` float32 numpy arrays of the
            dynamic fields, ``time = steps + 1``; frame 0 is the initial state (the same in both).
        grid: the grid the fields live on.
        dt: time between frames.
        sims: dataset indices of the trajectories (None when they did not come from a dataset).
    """

    truth: dict
    prediction: dict
    grid: GridSpec
    dt: float
    sims: tuple | None = None

    @property
    def num_steps(self) -> int:
        """Predicted steps per trajectory (frames - 1)."""
        return next(iter(self.truth.values())).shape[1] - 1

    def errors(self) -> np.ndarray:
        """Relative L2 error of the prediction per trajectory and step, over all fields together.

        Returns:
            ``(sims, steps)``: entry ``[i, k]`` is ``||pred - truth|| / ||truth||`` of trajectory
            ``i`` after ``k + 1`` steps.
        """
        return _relative_l2(self.prediction, self.truth)

    def baseline_errors(self) -> np.ndarray:
        """The same error for the trivial prediction "the initial state stays as it is".

        A network is only useful where its error is far below this one.

        Returns:
            ``(sims, steps)``, as :meth:`errors`.
        """
        frozen = {k: np.broadcast_to(v[:, :1], v.shape) for k, v in self.truth.items()}
        return _relative_l2(frozen, self.truth)


def rollout_dataset(model: Network, data_manager: DataManager, sim_indices: Sequence[int], *,
                    num_steps: int | None = None, field_names: Sequence[str] | None = None,
                    dynamic_fields: Sequence[str] | None = None,
                    static_fields: Sequence[str] | None = None) -> Rollout:
    """Roll a network out from frame 0 of some simulations and pair it with the stored frames.

    Args:
        model: ``(batch, C_in, *space) -> (batch, C_dyn, *space)``, e.g. a trained UNet (put in
            eval mode for the call, its mode restored after).
        data_manager: the dataset.
        sim_indices: simulations to predict (e.g. the held-out ones).
        num_steps: steps to predict (default: all frames the dataset holds, ``frames - 1``).
        field_names, dynamic_fields, static_fields: the channel layout the network was trained
            with, as for :class:`~hybridkit.data.HybridDataset` (default: all fields, field
            parameters static).

    Returns:
        A :class:`Rollout` of the dynamic fields with ``num_steps + 1`` frames.

    Raises:
        ValueError: ``num_steps`` beyond what the dataset holds (the message says how many it holds).
    """
    frames = data_manager.num_frames
    steps = frames - 1 if num_steps is None else int(num_steps)
    if not 1 <= steps <= frames - 1:
        raise ValueError(
            f"Expected 1 <= num_steps <= {frames - 1} (the dataset holds {frames} frames), got "
            f"{num_steps}. Fix: use rollout_solver(...) to predict beyond the stored frames."
        )
    ds = HybridDataset(data_manager, sim_indices, field_names, num_frames=steps + 1, num_predict_steps=steps,
                       dynamic_fields=dynamic_fields, static_fields=static_fields, use_sliding_window=False)
    initial, targets = (torch.stack(parts) for parts in zip(*(ds[i] for i in range(len(ds)))))
    pred = _predict(model, initial, steps)
    c_dyn = targets.shape[2]
    layout = (ds.dynamic_fields, ds.vector_fields, ds.grid.ndim)
    truth = torch.cat([initial[:, None, :c_dyn], targets], 1)
    prediction = torch.cat([initial[:, None, :c_dyn], pred], 1)
    return Rollout(_storage(truth, *layout), _storage(prediction, *layout), ds.grid, data_manager.dt,
                   tuple(int(s) for s in ds.sim_indices))


def rollout_solver(model: Network, pde: AbstractPDE, initial: Mapping, num_steps: int, *,
                   params: Mapping | None = None) -> Rollout:
    """Roll a network and a physical model out from the same initial states.

    The truth is ``pde.rollout``; the network sees the PDE's fields (in the order of
    ``pde.field_names``) as its input channels, without static channels.

    Args:
        model: ``(batch, C, *space) -> (batch, C, *space)`` trained on the PDE's fields.
        pde: the physical model that produces the truth.
        initial: ``name -> (sims, *space[, vector])`` arrays / tensors, or ``name -> Field``
            with a batch dim ``batch`` (e.g. ``pde.random_state(4, seed=1)``).
        num_steps: steps to predict.
        params: the PDE's parameters for the truth (default: the model's own).

    Returns:
        A :class:`Rollout` of the PDE's fields with ``num_steps + 1`` frames.
    """
    if int(num_steps) < 1:
        raise ValueError(f"Expected num_steps >= 1, got {num_steps}.")
    g, vec = pde.grid, pde.vector_fields
    state = {k: v if isinstance(v, Field) else to_field(_tensor(v), g, vector=k in vec)
             for k, v in initial.items()}
    missing = [k for k in pde.field_names if k not in state]
    if missing:
        raise KeyError(f"Expected initial states of {list(pde.field_names)}, {missing} missing.")
    traj = pde.rollout({k: state[k] for k in pde.field_names}, int(num_steps), params)
    truth = {k: to_tensor(traj[k], ("batch", "time")).detach().cpu().float() for k in pde.field_names}
    initial_channels = stack_channels({k: v[:, 0] for k, v in truth.items()}, pde.field_names, vec, g.ndim)
    pred = _predict(model, initial_channels, int(num_steps))
    prediction = torch.cat([initial_channels[:, None], pred], 1)
    return Rollout({k: v.numpy() for k, v in truth.items()},
                   _storage(prediction, pde.field_names, vec, g.ndim), g, pde.dt)


def vorticity(velocity, grid: GridSpec) -> np.ndarray:
    """Vorticity ``w = dv/dx - du/dy`` of 2D velocity fields, second-order central differences.

    Periodic grids wrap around; on other grids the edges use one-sided differences
    (``numpy.gradient``).

    Args:
        velocity: ``(..., x, y, 2)`` (numpy or torch), components in axis order ``(u, v)``.
        grid: the 2D grid.

    Returns:
        ``(..., x, y)`` numpy array.
    """
    u = _tensor(velocity).detach().cpu().numpy()
    if grid.ndim != 2 or u.shape[-3:] != (*grid.resolution, 2):
        raise ValueError(
            f"Expected 2D velocity of shape (..., {grid.resolution[0]}, {grid.resolution[1]}, 2) on a 2D "
            f"grid, got {u.shape} on a grid {grid.resolution}."
        )
    dx, dy = grid.dx
    if grid.boundary == "periodic":
        dvdx = (np.roll(u[..., 1], -1, -2) - np.roll(u[..., 1], 1, -2)) / (2 * dx)
        dudy = (np.roll(u[..., 0], -1, -1) - np.roll(u[..., 0], 1, -1)) / (2 * dy)
    else:
        dvdx = np.gradient(u[..., 1], dx, axis=-2)
        dudy = np.gradient(u[..., 0], dy, axis=-1)
    return dvdx - dudy


# ---------------------------------------------------------------------- helpers
@torch.no_grad()
def _predict(model: Network, initial: torch.Tensor, steps: int) -> torch.Tensor:
    """``rollout`` on the model's device in eval mode; ``(sims, steps, C_dyn, *space)`` on the CPU."""
    is_module = isinstance(model, torch.nn.Module)
    device = next((p.device for p in model.parameters()), torch.device("cpu")) if is_module else initial.device
    was_training = is_module and model.training
    if is_module:
        model.eval()
    try:
        return rollout(model, initial.to(device), steps).cpu().float()
    finally:
        if was_training:
            model.train()


def _storage(t: torch.Tensor, names, vector_fields, ndim: int) -> dict:
    """``(sims, time, C, *space)`` -> ``name -> (sims, time, *space[, vector])`` numpy."""
    return {k: v.contiguous().numpy() for k, v in split_channels(t, names, vector_fields, ndim).items()}


def _relative_l2(pred: Mapping, truth: Mapping) -> np.ndarray:
    """``(sims, steps)`` relative L2 over all fields, frames 1.. (frame 0 is the initial state)."""
    def flat(d):
        parts = [np.asarray(d[k][:, 1:], np.float64) for k in truth]
        return np.concatenate([a.reshape(a.shape[0], a.shape[1], -1) for a in parts], -1)
    p, t = flat(pred), flat(truth)
    return np.linalg.norm(p - t, axis=-1) / np.maximum(np.linalg.norm(t, axis=-1), 1e-30)


def _tensor(v) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
