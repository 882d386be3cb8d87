"""Time and accuracy of parameter recovery: hybridkit's PhysicalTrainer vs plain torch + LBFGS.

Two cases, each fitted from clean trajectories:

* **scalar**: 1D Burgers (N=64, L=100, dt=0.1), viscosity 0.5 from an initial guess of 2.5,
  4 trajectories x 10 steps;
* **field**: 1D diffusion (N=64, L=100, dt=0.5) with diffusivity ``sin^2(pi x / L)`` from a
  uniform 0.3, 4 trajectories x 20 steps.

The reference is the same fit written directly in torch: the same scheme (central differences,
face-averaged coefficient, SSP-RK3, ``torch.roll`` for the periodic boundary), the same bounded log
parametrisation and loss normalisation, optimised with ``torch.optim.LBFGS`` (strong Wolfe line
search). Before timing, one rollout of each is checked to agree to float32 round-off.

Run:  .venv/bin/python benchmarks/bench_physical_recovery.py [--quick] [--threads 1]

Prints per case: median wall time over repeats, the recovered error (relative error of the
scalar, relative L2 of the field), iterations, and the ratio torch time / hybridkit time.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

from hybridkit import GridSpec
from hybridkit.convert import to_tensor
from hybridkit.physics import Burgers, Diffusion, learnable
from hybridkit.training import PhysicalTrainer
from hybridkit.training._transform import BoundedTransform as _BoundedTransform

L = 100.0


# ---------------------------------------------------------------------------- plain torch
def _d(u, dx):
    return (torch.roll(u, -1, -1) - torch.roll(u, 1, -1)) / (2 * dx)


def _div_k_grad(u, k, dx):
    """``(k[i+1/2](u[i+1]-u[i]) - k[i-1/2](u[i]-u[i-1])) / dx^2``, ``k`` averaged onto faces."""
    up, um = torch.roll(u, -1, -1), torch.roll(u, 1, -1)
    kp, km = torch.roll(k, -1, -1), torch.roll(k, 1, -1)
    return ((k + kp) * (up - u) - (k + km) * (u - um)) / (2 * dx**2)


def burgers_rhs(u, nu, dx):
    return -(_d(u * u, dx) + u * _d(u, dx)) / 3 + _div_k_grad(u, nu * torch.ones_like(u), dx)


def diffusion_rhs(u, k, dx):
    return _div_k_grad(u, k, dx)


def ssp_rk3(rhs, u, h):
    u1 = u + h * rhs(u)
    u2 = 0.75 * u + 0.25 * (u1 + h * rhs(u1))
    return u / 3 + 2 / 3 * (u2 + h * rhs(u2))


def torch_rollout(rhs, u0, n, dt):
    frames, u = [], u0
    for _ in range(n):
        u = ssp_rk3(rhs, u, dt)
        frames.append(u)
    return torch.stack(frames, 1)  # (batch, time, x)


def torch_fit(rhs_of_value, u0, targets, dt, transform, value0, max_iter, tol):
    """Same objective as PhysicalTrainer (bounded log parameter, MSE normalised to 1 at the start)."""
    lo, w = transform.lo, transform.w
    z = torch.tensor(transform.inverse(value0), dtype=torch.float32, requires_grad=True)
    n = targets.shape[1]

    def value(z):
        return torch.exp(lo + w * torch.sigmoid(4 * z / w))

    def mse(z):
        pred = torch_rollout(lambda u: rhs_of_value(u, value(z)), u0, n, dt)
        return ((pred - targets) ** 2).mean()

    with torch.no_grad():
        scale = mse(z).item()
    opt = torch.optim.LBFGS([z], lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=tol,
                            history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = mse(z) / scale
        loss.backward()
        return loss

    opt.step(closure)
    return value(z).detach().numpy().astype(np.float64), opt.state[opt._params[0]]["n_iter"]


# ---------------------------------------------------------------------------- cases
def scalar_case():
    grid = GridSpec((64,), (L,))
    model = Burgers(grid, dt=0.1, viscosity=0.5, substeps=1)  # the reference takes one RK3 step per dt
    traj = model.rollout(model.random_state(4, seed=0), 10)["velocity"]
    rhs = lambda u, nu: burgers_rhs(u, nu, grid.dx[0])  # noqa: E731
    return dict(name="scalar Burgers nu", model=model, true=0.5, guess=learnable("viscosity", 2.5),
                traj=traj, steps=10, field="velocity", rhs=rhs)


def field_case():
    grid = GridSpec((64,), (L,))
    x = grid.coordinates()[0]
    true = np.sin(np.pi * x / L) ** 2
    model = Diffusion(grid, dt=0.5, diffusivity=true, substeps=1)
    traj = model.rollout(model.random_state(4, seed=1), 20)["temperature"]
    rhs = lambda u, k: diffusion_rhs(u, k, grid.dx[0])  # noqa: E731
    return dict(name="field diffusivity", model=model, true=true,
                guess=learnable("diffusivity", 0.3, kind="field"), traj=traj, steps=20,
                field="temperature", rhs=rhs)


def error(got, true) -> float:
    got, true = np.asarray(got, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return float(np.linalg.norm(got - true) / np.linalg.norm(true))


def run_case(case: dict, repeats: int, max_iter: int, tol: float) -> dict:
    model, traj, n, name = case["model"], case["traj"], case["steps"], case["field"]
    initial, targets = {name: traj.time[0]}, {name: traj.time[1:]}
    u0 = to_tensor(traj.time[0], ["batch"]).float()
    tgt = to_tensor(traj.time[1:], ["batch", "time"]).float()

    # Equal work: the torch rollout reproduces the model's to float32 round-off.
    true_t = torch.as_tensor(np.asarray(case["true"], dtype=np.float32))
    ref = torch_rollout(lambda u: case["rhs"](u, true_t), u0, n, model.dt)
    gap = ((ref - tgt).abs().max() / tgt.abs().max()).item()
    assert gap < 1e-5, f"torch and hybridkit rollouts differ by {gap:.2e}"

    cfg = {"num_predict_steps": n, "max_iterations": max_iter, "abs_tol": tol}

    def hk():
        trainer = PhysicalTrainer(cfg, model, [case["guess"]])
        r = trainer.fit(initial, targets, progress=False)
        return trainer.params[case["guess"].name], r.iterations, r.status

    lp = case["guess"].resolve(model)
    # the same bounds as the trainer's fit (its upper bound may be lowered to the stability limit)
    lo, hi = PhysicalTrainer(cfg, model, [lp]).fit(initial, targets, progress=False).bounds[lp.name]
    transform = _BoundedTransform(lo, hi, log=True)

    def ref_fit():
        return torch_fit(case["rhs"], u0, tgt, model.dt, transform, lp.value, max_iter, tol)

    fns = {"hybridkit": hk, "torch": ref_fit}
    for fn in fns.values():
        fn()  # warm-up (jit tracing)
    times, last = {k: [] for k in fns}, {}
    for _ in range(repeats):  # interleaved, so that both see the same machine load
        for label, fn in fns.items():
            t0 = time.perf_counter()
            last[label] = fn()
            times[label].append(time.perf_counter() - t0)
    out = {}
    for label, res in last.items():
        out[label] = dict(seconds=statistics.median(times[label]), error=error(res[0], case["true"]),
                          iterations=int(res[1]), status=res[2] if len(res) > 2 else "")
    return out


def suite(quick: bool = False) -> list:
    """Rows for ``run_all.py``: time of each fit against ``torch.optim.LBFGS`` on the same scheme.

    The issue sets no target here; the ratio is reported and the gap explained in the README.
    """
    from _common import Row, ms

    rows = []
    for case in (scalar_case(), field_case()):
        r = run_case(case, 3 if quick else 5, max_iter=500, tol=1e-8)
        h, t = r["hybridkit"], r["torch"]
        rows.append(Row(f"physical fit: {case['name']}", f"{ms(h['seconds'])} ({h['iterations']} it)",
                        f"torch LBFGS {ms(t['seconds'])} ({t['iterations']} it)", t["seconds"] / h["seconds"],
                        "report", None, f"error {h['error']:.1e} vs {t['error']:.1e}; {h['status']}"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*torch.jit.trace", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    print(f"Parameter recovery, float32, {args.threads} thread(s), median of {repeats} repeats; "
          "ratio = torch time / hybridkit time")
    header = (f"{'case':>18} {'hk s':>7} {'hk err':>9} {'hk it':>6} {'torch s':>8} {'torch err':>10} "
              f"{'torch it':>9} {'ratio':>6}  hk status")
    print(header)
    print("-" * len(header))
    for case in (scalar_case(), field_case()):
        r = run_case(case, repeats, max_iter=500, tol=1e-8)
        h, t = r["hybridkit"], r["torch"]
        print(f"{case['name']:>18} {h['seconds']:7.3f} {h['error']:9.2e} {h['iterations']:6d} "
              f"{t['seconds']:8.3f} {t['error']:10.2e} {t['iterations']:9d} {t['seconds'] / h['seconds']:6.2f}"
              f"  {h['status']}", flush=True)


if __name__ == "__main__":
    main()
