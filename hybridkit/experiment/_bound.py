"""How well *any* estimator could do on an experiment's data: the Cramér-Rao bound of its scalar
coefficients.

With Gaussian noise of standard deviation ``sigma`` on every observed point, the Fisher
information of the unknown numbers ``theta`` is ``J^T J / sigma^2``, ``J`` the sensitivities of
the observed frames to ``theta`` at the truth; no unbiased estimator has a smaller variance than
its inverse (for a Gaussian error, the mean absolute error is then at least ``sqrt(2 / pi)`` of
that standard deviation). Two bounds, for two questions:

* ``initial="known"``: only the coefficients are unknown, every trajectory starts from its clean
  initial state (the optimistic bound; what a fit could reach if the initial states were exact);
* ``initial="free"``: each trajectory's initial state is unknown as well and observed with the same
  noise as every other frame, which is what a fit with ``fit_initial_state`` faces. The
  coefficients' information is the Schur complement of the states' block.

The data are each training simulation over all its frames, as observed (the spatial mask of
``data.observed_region`` / ``observed_stride`` applies), with the noise the experiment adds
(``data.noise`` times the standard deviation of the clean data, per field).
"""
from __future__ import annotations

import math as pymath

import numpy as np
from phiml import math

from ..convert import to_field, to_tensor
from ..data import DataManager
from .._config import ConfigError
from ._config import ExperimentConfig
from ._data import prepare_data

__all__ = ["information_bound"]

#: relative finite-difference step of a coefficient, and absolute step of a state value in units of the noise
STEP = 1e-4
#: most numbers of one trajectory's initial state the free bound propagates (one rollout per number)
MAX_STATE_NUMBERS = 4096


def information_bound(cfg: ExperimentConfig, *, initial: str = "free") -> dict:
    """The Cramér-Rao bound of the scalar coefficients of ``cfg`` on its training simulations.

    Args:
        cfg: an experiment config (its ``data`` section: model, simulations, frames, noise, mask).
        initial: ``"free"`` (the initial states are unknown, observed with noise) or ``"known"``.

    Returns:
        ``name -> {"value", "std", "relative_std", "mean_abs_error"}``: the true value, the bound's
        standard deviation, the same relative to the value, and ``sqrt(2/pi)`` of the latter (the
        smallest mean relative error an unbiased estimator with Gaussian errors can have); inf for a
        coefficient the data do not depend on.

    Raises:
        ConfigError: no noise (the bound is zero), no scalar coefficient, or ``initial`` unknown.
    """
    if initial not in ("free", "known"):
        raise ConfigError(f"Expected initial='free' or 'known', got {initial!r}.")
    if not cfg.data.noise > 0:
        raise ConfigError("The experiment's data have no noise (data.noise = 0): the bound is zero. "
                          "Fix: set data.noise, e.g. 0.1 for 10 %.")
    with math.precision(64):
        data = prepare_data(cfg)
        model = data.model
        scalars = [k for k, v in data.true_params.items() if np.ndim(v) == 0]
        if not scalars:
            raise ConfigError(f"Expected a scalar coefficient among {sorted(data.true_params)}; the bound is "
                              "computed for scalar coefficients only.")
        with DataManager(data.clean) as dm:
            clean = {k: np.stack([dm.load(s, k) for s in data.train_sims]).astype(np.float64)
                     for k in model.field_names}
        sigma = {k: cfg.data.noise * float(np.std(v)) for k, v in clean.items()}
        mask = None if data.observation is None else data.observation.spatial
        truth = {k: float(data.true_params[k]) for k in scalars}
        info = np.zeros((len(scalars), len(scalars)))
        for s in range(next(iter(clean.values())).shape[0]):
            info += _trajectory_information(model, {k: v[s] for k, v in clean.items()}, truth, sigma, mask,
                                            free=initial == "free")
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:  # a coefficient the data do not depend on at all (e.g. constant states)
        cov = np.full_like(info, np.inf)
    out = {}
    for i, k in enumerate(scalars):
        std = float(np.sqrt(cov[i, i]))
        rel = std / max(abs(truth[k]), 1e-300)
        out[k] = {"value": truth[k], "std": std, "relative_std": rel,
                  "mean_abs_error": pymath.sqrt(2 / pymath.pi) * rel}
    return out


def _trajectory_information(model, u: dict, truth: dict, sigma: dict, mask, *, free: bool) -> np.ndarray:
    """The Fisher information of the scalars from one trajectory ``u`` (name -> (T, *space[, vec]))."""
    steps = next(iter(u.values())).shape[0] - 1
    u0 = {k: v[0] for k, v in u.items()}

    def rollout(states: dict, params: dict) -> np.ndarray:
        """Whitened, masked frames 1..T of a batch of initial states: (batch, observed numbers)."""
        state = {k: to_field(v, model.grid, vector=k in model.vector_fields) for k, v in states.items()}
        traj = model.rollout(state, steps, {n: math.tensor(x) for n, x in params.items()}, check=False)
        rows = [_observed(to_tensor(traj[k], ["batch", "time"]).double().numpy()[:, 1:], mask, time=True) / sigma[k]
                for k in model.field_names]
        return np.concatenate([r.reshape(r.shape[0], -1) for r in rows], axis=1)

    one = {k: v[None] for k, v in u0.items()}
    cols = []
    for name, value in truth.items():
        h = STEP * max(abs(value), 1e-12)
        up = rollout(one, {**truth, name: value + h})
        down = rollout(one, {**truth, name: value - h})
        cols.append(((up - down) / (2 * h))[0])
    j_theta = np.stack(cols, axis=1)  # (observed numbers of frames 1..T, scalars)
    if not free:
        return j_theta.T @ j_theta
    j_state, observe = _state_sensitivities(u0, lambda states: rollout(states, truth), sigma, mask)
    # every observed frame-0 number adds a row: d(u0 - y0)/d(u0) = 1 / sigma, d/d(theta) = 0
    a = np.vstack([j_state, observe])
    j = np.vstack([j_theta, np.zeros((observe.shape[0], j_theta.shape[1]))])
    proj = a @ np.linalg.lstsq(a, j, rcond=None)[0]
    return j.T @ j - j.T @ proj


def _state_sensitivities(u0: dict, rollout, sigma: dict, mask):
    """(d frames 1..T / d u0 for every number of the initial state, the observation rows of u0)."""
    names = list(u0)
    sizes = [u0[k].size for k in names]
    total = sum(sizes)
    if total > MAX_STATE_NUMBERS:
        raise ConfigError(f"Expected at most {MAX_STATE_NUMBERS} numbers per initial state for the free bound, got "
                          f"{total}. Fix: use initial='known', or a smaller grid.")
    cols, observe = [], []
    for k, size in zip(names, sizes):
        h = STEP * sigma[k]
        eye = np.eye(size).reshape(size, *u0[k].shape) * h
        base = {n: np.broadcast_to(v, (size, *v.shape)).copy() for n, v in u0.items()}
        up = rollout({**base, k: base[k] + eye})
        down = rollout({**base, k: base[k] - eye})
        cols.append(((up - down) / (2 * h)).T)  # (observed numbers, size)
        observe.append(_observed(np.eye(size).reshape(size, *u0[k].shape), mask, time=False).T / sigma[k])
    # the observation rows: one block per field, on that field's columns
    rows = np.zeros((total, total))
    c = 0
    for obs, size in zip(observe, sizes):
        rows[c:c + size, c:c + size] = obs
        c += size
    return np.concatenate(cols, axis=1), rows


def _observed(values: np.ndarray, mask, *, time: bool) -> np.ndarray:
    """``values`` (batch[, time], *space[, vec]) times the spatial mask (0 where unobserved: such a row
    adds nothing to the information), as (batch, -1)."""
    if mask is not None:
        m = np.asarray(mask, dtype=np.float64)
        lead = 2 if time else 1
        m = m.reshape((1,) * lead + m.shape + (1,) * (values.ndim - lead - m.ndim))
        values = values * m
    return values.reshape(values.shape[0], -1)
