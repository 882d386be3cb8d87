"""Judging an experiment's models on the held-out simulations that no model saw."""
from __future__ import annotations

import numpy as np
import torch

from .._backend import resolve_device
from ..convert import stack_channels, to_field, to_tensor
from ..data import DataManager, HybridDataset
from ..metrics import relative_l2, rollout_errors
from ._config import ExperimentConfig
from ._data import ExperimentData

__all__ = ["param_error", "evaluate_run"]


def param_error(learned, true) -> float:
    """Relative error of a scalar, relative L2 error of a field / vector."""
    learned, true = np.asarray(learned, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return float(np.linalg.norm(learned - true) / max(np.linalg.norm(true), 1e-30))


@torch.no_grad()
def evaluate_run(cfg: ExperimentConfig, data: ExperimentData, *, network=None, physical_params=None) -> dict:
    """Errors on the held-out simulations (never observed): per-step relative L2 of the rollouts
    from frame 0 (network and / or physical model) and the parameter errors."""
    steps = int(cfg.evaluate.steps)
    with DataManager(data.clean) as dm:
        test = HybridDataset(dm, data.test_sims, data.model.field_names, num_frames=steps + 1,
                             num_predict_steps=steps)
        initial = torch.stack([test[i][0] for i in range(len(test))])
        targets = torch.stack([test[i][1] for i in range(len(test))])
        first = {k: np.stack([dm.load(s, k, 0, 1)[0] for s in data.test_sims]) for k in data.model.field_names}
    out = {}
    if network is not None:
        errors = rollout_errors(network.to(resolve_device("auto")), initial, targets)
        out["synthetic_rollout_error"] = errors.tolist()
    if physical_params is not None:
        model, names = data.model, data.model.field_names
        state = {k: to_field(first[k], model.grid, vector=k in model.vector_fields) for k in names}
        traj = model.rollout(state, steps, physical_params, check=False)
        pred = stack_channels({k: to_tensor(traj[k], ["batch", "time"]) for k in names}, names,
                              model.vector_fields, model.grid.ndim)[:, 1:].float()
        per_step = [relative_l2(pred[:, t], targets[:, t]).mean().item() for t in range(steps)]
        out["physical_rollout_error"] = [float(e) if np.isfinite(e) else float("inf") for e in per_step]
        out["params"] = plain(physical_params)
        out["param_error"] = {k: param_error(physical_params[k], data.true_params[k]) for k in physical_params}
        if data.observation is not None and data.observation.spatial is not None:
            m = data.observation.spatial
            out["param_error_unobserved"] = {
                k: param_error(np.asarray(v)[~m], np.asarray(data.true_params[k])[~m])
                for k, v in physical_params.items() if np.ndim(v) == len(m.shape)}
    return out


def plain(value):
    """``value`` as JSON-able plain data (arrays -> lists, numpy scalars -> Python numbers)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
