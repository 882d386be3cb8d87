"""How well the data determine a fit's numbers: Gauss-Newton (Laplace) standard errors at the optimum.

With residuals ``r(theta)`` over the observed points (``sqrt(w) (prediction - data)``), Gaussian
noise of variance ``sigma^2`` and a flat prior inside the bounds, the posterior near the optimum is
approximately Gaussian with covariance ``sigma^2 (J^T J)^-1`` (``J = dr / dtheta``, the Gauss-Newton
approximation of the Hessian; Laplace). ``sigma^2`` is estimated from the residual,
``sum r^2 / (N - P)`` (``N`` observed points, ``P`` fitted numbers).

* few numbers (scalars, vectors, parametric fields): ``J`` by central differences, one rollout per
  perturbation; the full covariance. With fitted initial states the states' uncertainty is
  accounted for (the Schur complement of their block, each window's states perturbed together in
  one batched rollout), up to :data:`MAX_STATE_COLUMNS` numbers per window (beyond: conditional
  on the fitted states, said in a note).
* free fields (one number per cell): ``diag(J^T J)`` by random probing (``E[(J^T v)^2]``, ``v``
  random signs; :data:`PROBES` backward passes, about 25 % precise), giving each cell's
  *conditional* standard deviation (the other cells held fixed: a lower bound of the marginal one)
  and the cells the data do not constrain.

A number is **not identifiable** when its standard deviation exceeds a quarter of its range (in
``log`` for log parameters): the data then say no more about it than its bounds do; e.g. every
coefficient of a constant state, where the rollout does not depend on it at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from phiml import math
from phiml.math import batch

from ._misfit import predictions

__all__ = ["Uncertainty", "estimate_uncertainty", "PROBES", "MAX_STATE_COLUMNS"]

#: random probes for the diagonal of ``J^T J`` of a free field
PROBES = 16
#: most state numbers per window whose uncertainty is propagated into the coefficients'
MAX_STATE_COLUMNS = 512
#: relative finite-difference step (of the value for log parameters, of the range otherwise)
STEP = 1e-3
#: a standard deviation above this fraction of the range (log range for log parameters): not identifiable
UNIDENTIFIED = 0.25
#: a lag-1 autocorrelation of the residuals above this (and above 4 / sqrt(N)): they are not
#: independent noise (for white noise it is about +-1 / sqrt(N))
CORRELATED = 0.3


@dataclass
class Uncertainty:
    """What :func:`estimate_uncertainty` found (see :class:`~hybridkit.training.FitResult`)."""

    std: dict = field(default_factory=dict)
    field_std: dict = field(default_factory=dict)
    covariance: np.ndarray | None = None
    noise_std: float = float("nan")
    residual_correlation: float = float("nan")
    unidentified: tuple = ()
    unconstrained: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def estimate_uncertainty(fit, values: dict, states: dict | None) -> Uncertainty:
    """Standard errors of the numbers ``values`` (public: ``name -> float / array``) of a fit.

    Args:
        fit: the :class:`~hybridkit.training._fit._Fit` (model, problem, learnables, transforms).
        values: the fitted numbers.
        states: the fitted initial states (tensors), or None when they were not fitted.
    """
    out = Uncertainty()
    learnables = fit.t.learnables
    few = [p for p in learnables if p.kind != "field"]
    fields = [p for p in learnables if p.kind == "field"]
    tensors = {p.name: p.tensor(fit.model, values[p.name]) for p in learnables}
    base = _flat(fit.problem.residuals(tensors, states))
    sse = float(base @ base)
    n_obs = fit.problem.num_observed
    n_par = sum(int(np.size(values[p.name])) for p in learnables)
    if states is not None:
        r0 = _flat(fit.states.residuals(states))
        sse += float(r0 @ r0)
        n_obs += int(fit.states.count if fit.states.weight > 0 else 0)
        n_par += fit.states.num_numbers
    eps = np.finfo(np.float32).eps
    floor = (10 * eps) ** 2 * fit.signal
    out.noise_std = float(np.sqrt(max(sse / max(n_obs - n_par, 1), floor)))
    if n_obs - n_par < 1:
        out.notes.append(f"{n_par} fitted numbers for {n_obs} observed points: the noise level cannot be estimated")
    out.residual_correlation = rho = _lag_one(fit.problem.residuals(tensors, states), fit.model.grid.axes[0])
    if abs(rho) > max(CORRELATED, 4 / np.sqrt(max(n_obs, 1))) and sse > floor * n_obs:
        out.notes.append(f"the residuals are correlated in space (lag-1 autocorrelation {rho:.2f}): they are model "
                         "error or a local minimum rather than noise, and the standard errors, which assume "
                         "independent noise, are too small")
    if few:
        _few_numbers(fit, few, values, tensors, states, base, out)
    for p in fields:
        _free_field(fit, p, values, tensors, states, out)
    if fields and few:
        out.notes.append("the standard errors of the scalars hold the field coefficients fixed")
    return out


# ---------------------------------------------------------------------------- few numbers
def _few_numbers(fit, few, values, tensors, states, base, out: Uncertainty) -> None:
    columns, scales, names = [], [], []
    perturbed = []  # (parameter, flat index, + tensors, - tensors, step width)
    for p in few:
        v = np.atleast_1d(np.asarray(values[p.name], dtype=np.float64)).copy()
        lo, hi = (np.broadcast_to(b, v.shape) for b in fit.transforms[p.name].bounds)
        log = fit.transforms[p.name].log
        for j in range(v.size):
            h = STEP * (v[j] if log else hi[j] - lo[j])
            up, down = min(h, hi[j] - v[j]), min(h, v[j] - lo[j])
            if up + down <= 0:
                up = down = h / 2
            vp, vm = v.copy(), v.copy()
            vp[j] += up
            vm[j] -= down
            shape = np.shape(values[p.name])
            perturbed.append(({**tensors, p.name: p.tensor(fit.model, vp.reshape(shape))},
                              {**tensors, p.name: p.tensor(fit.model, vm.reshape(shape))}, up + down))
            w = np.broadcast_to(fit.transforms[p.name].w, v.shape)[j]
            scales.append(UNIDENTIFIED * w * (v[j] if log else 1.0))  # a quarter range, in the value's units
            names.append(_label(p, j, fit.model, v.size))
    n = max(fit.problem.substeps_needed(t, states) for pair in perturbed for t in pair[:2])
    for plus, minus, width in perturbed:
        columns.append((_flat(fit.problem.residuals(plus, states, n)) -
                        _flat(fit.problem.residuals(minus, states, n))) / width)
    jac = np.stack(columns, axis=1)  # (N, P), natural units
    info = jac.T @ jac
    if states is not None:
        info = info - _state_correction(fit, tensors, states, jac, n, out)
    d = np.asarray(scales)  # theta = d * phi: phi in quarter ranges
    info_phi = d[:, None] * info * d[None, :] / out.noise_std**2
    lam, vec = np.linalg.eigh((info_phi + info_phi.T) / 2)
    tiny = 1e-12 * max(1.0, float(lam.max(initial=0.0)))
    cov_phi = (vec / np.maximum(lam, tiny)) @ vec.T
    cov = d[:, None] * cov_phi * d[None, :]
    std = np.sqrt(np.maximum(np.diag(cov), 0.0))
    out.covariance = cov
    k = 0
    for p in few:
        size = int(np.size(values[p.name]))
        s = std[k:k + size]
        out.std[p.name] = float(s[0]) if np.ndim(values[p.name]) == 0 else s.reshape(np.shape(values[p.name]))
        if p.kind == "parametric":
            out.field_std[p.name] = _field_band(p, values[p.name], cov[k:k + size, k:k + size], fit.model.grid)
        k += size
    unidentified = [name for name, s_phi in zip(names, np.sqrt(np.maximum(np.diag(cov_phi), 0))) if s_phi > 1]
    out.unidentified = tuple(unidentified)


def _state_correction(fit, tensors, states, jac_theta, n, out: Uncertainty) -> np.ndarray:
    """``sum_b B_b^T D_b^-1 B_b``: what the coefficients lose because the initial states are fitted too."""
    s = fit.states
    cols = sum(int(v.shape.non_batch.volume) for v in states.values())
    if cols > MAX_STATE_COLUMNS:
        out.notes.append(f"the standard errors are conditional on the fitted initial states ({cols} numbers per "
                         f"window, more than {MAX_STATE_COLUMNS}): they underestimate the uncertainty")
        return np.zeros((jac_theta.shape[1],) * 2)
    base = fit.problem.residuals(tensors, states, n)
    order = _order(base)
    nb = states[next(iter(states))].shape.get_size("batch")
    per_sample_rows = _flat(base).size // nb
    jac_s = np.zeros((nb, per_sample_rows, cols))
    diag0 = np.zeros((nb, cols))
    c0 = 0
    for k, v in states.items():
        inner = v.shape.non_batch
        m = inner.volume
        h = 1e-3 * s.scale[k]
        eye = math.tensor(np.eye(m).reshape((m,) + tuple(inner.sizes)), batch("col_") & inner)
        plus = {**states, k: v + h * eye}
        minus = {**states, k: v - h * eye}
        diff = {kk: (a - b) / (2 * h) for (kk, a), b in zip(fit.problem.residuals(tensors, plus, n).items(),
                                                           fit.problem.residuals(tensors, minus, n).values())}
        # (batch, col, rest) with the rows of each sample in the order of _flat
        flat = np.concatenate([diff[kk].numpy(["batch", "col_"] + [d for d in order[kk] if d != "batch"])
                               .reshape(nb, m, -1) for kk in sorted(diff)], axis=2)
        jac_s[:, :, c0:c0 + m] = flat.transpose(0, 2, 1)
        w = 1.0 if s.weights is None else math.expand(s.weights, v.shape).numpy(["batch"] + list(inner.names))
        diag0[:, c0:c0 + m] = s.weight * np.broadcast_to(w, (nb,) + tuple(inner.sizes)).reshape(nb, m)
        c0 += m
    jt = jac_theta.reshape(nb, per_sample_rows, -1)
    corr = np.zeros((jac_theta.shape[1],) * 2)
    for b in range(nb):
        d_b = jac_s[b].T @ jac_s[b] + np.diag(diag0[b])
        b_b = jac_s[b].T @ jt[b]
        corr += b_b.T @ np.linalg.lstsq(d_b, b_b, rcond=1e-10)[0]
    return corr


def _field_band(p, theta, cov, grid) -> np.ndarray:
    """Per-cell standard deviation of a parametric field (delta method: ``g^T C g``, ``g = df / dtheta``)."""
    theta = np.asarray(theta, dtype=np.float64)
    par = p.parametrization
    grads = []
    for j in range(theta.size):
        h = 1e-6 * max(abs(theta[j]), 1.0)
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        if par.type_name == "GaussianBumps" and par.component_names(grid)[j].startswith("width_"):
            tm[j] = max(tm[j], 1e-12)
        grads.append(((par.evaluate_numpy(tp, grid) - par.evaluate_numpy(tm, grid)) / (tp[j] - tm[j])).reshape(-1))
    g = np.stack(grads, axis=1)
    var = np.einsum("ci,ij,cj->c", g, cov, g)
    return np.sqrt(np.maximum(var, 0.0)).reshape(tuple(grid.resolution))


# ---------------------------------------------------------------------------- free fields
def _free_field(fit, p, values, tensors, states, out: Uncertainty) -> None:
    """Conditional per-cell standard deviations of a free field from a probed ``diag(J^T J)``."""
    model = fit.model
    value = np.asarray(values[p.name], dtype=np.float64)
    leaf = torch.tensor(value, dtype=torch.float32, requires_grad=True)
    field_t = math.tensor(leaf, model.grid.spatial_shape)
    params = model.prepare_params({**tensors, p.name: field_t})
    n = fit.problem.substeps_needed(tensors, states)
    with torch.enable_grad():
        pred = predictions(model, fit.problem.init if states is None else states, fit.problem.steps, params,
                           min(n, model.max_substeps))
        w = 1.0 if fit.problem.weights is None else math.sqrt(fit.problem.weights)
        res = {k: w * (pred[k] - fit.problem.tgt[k]) for k in fit.problem.tgt}
        rng = np.random.default_rng(0)
        diag = np.zeros(value.shape)
        for i in range(PROBES):
            probe = sum(math.sum(r * math.tensor(rng.choice([-1.0, 1.0], size=r.shape.sizes).astype(np.float32),
                                                 r.shape), r.shape) for r in res.values())
            (g,) = torch.autograd.grad(probe.native(), leaf, retain_graph=i < PROBES - 1)
            diag += g.detach().double().numpy() ** 2
    diag /= PROBES
    std = out.noise_std / np.sqrt(np.maximum(diag, 1e-300))
    out.std[p.name] = out.field_std[p.name] = np.minimum(std, 1e300)
    t = fit.transforms[p.name]
    quarter = UNIDENTIFIED * (t.w * value if t.log else t.w)
    loose = std > np.broadcast_to(quarter, value.shape)
    out.unconstrained[p.name] = loose
    if loose.all():
        out.unidentified = tuple(out.unidentified) + (p.name,)
    elif loose.any():
        out.notes.append(f"{int(loose.sum())} of {loose.size} cells of {p.name!r} are not constrained by the data "
                         "(their standard deviation exceeds a quarter of the range): see FitResult.unconstrained")


# ---------------------------------------------------------------------------- helpers
def _lag_one(res: dict, axis: str) -> float:
    """Lag-1 autocorrelation of the residuals along ``axis`` (unobserved points are 0 and drop out)."""
    num = den = 0.0
    for r in res.values():
        num += float(math.sum(r[{axis: slice(1, None)}] * r[{axis: slice(0, -1)}], r.shape))
        den += float(math.sum(r**2, r.shape))
    return num / den if den > 0 else 0.0



def _order(res: dict) -> dict:
    return {k: list(v.shape.names) for k, v in res.items()}


def _flat(res: dict) -> np.ndarray:
    """The residual vector: every field's values, batch first, in a fixed order."""
    parts = []
    for k in sorted(res):
        v = res[k]
        names = (["batch"] if "batch" in v.shape else []) + [d for d in v.shape.names if d != "batch"]
        parts.append(np.asarray(v.numpy(names), dtype=np.float64).reshape(
            (v.shape.get_size("batch") if "batch" in v.shape else 1), -1))
    return np.concatenate(parts, axis=1).reshape(-1)


def _label(p, j: int, model, size: int) -> str:
    if p.kind == "parametric":
        return f"{p.parametrization.component_names(model.grid)[j]} of {p.name!r}"
    if size == 1:
        return p.name
    return f"{p.name}[{j}]"
