"""Time one Burgers step in hybridkit (phiml on torch) against the same scheme written in torch.

The scheme in both: second-order central differences (skew-symmetric advection in 1D, convective in
2D), a scalar viscosity, SSP-RK3, periodic boundaries (``torch.roll`` in plain torch). Before
timing, the two are checked to agree to float32 round-off, so the comparison is of equal work.

Run:  .venv/bin/python benchmarks/bench_physics_step.py [--quick] [--threads 1]

Prints one row per case: median seconds per step over several repeats for plain torch, hybridkit
with ``jit=True`` and ``jit=False``, and the ratio torch time / hybridkit time (1.0 = as fast as
hand-written torch; 0.1 = ten times slower).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from phiml import math

from _common import interleaved
from hybridkit import GridSpec
from hybridkit.convert import to_tensor
from hybridkit.physics import Burgers

NU, DT = 0.5, 0.1


# ---------------------------------------------------------------------------- plain torch
def _d(u, dim, dx):
    return (torch.roll(u, -1, dim) - torch.roll(u, 1, dim)) / (2 * dx)


def _lap(u, dims, dxs):
    return sum((torch.roll(u, -1, d) - 2 * u + torch.roll(u, 1, d)) / h**2 for d, h in zip(dims, dxs))


def torch_rhs_1d(u, nu, dx):
    """``-(1/3)[(u^2)_x + u u_x] + nu u_xx`` on ``(batch, x)``."""
    return -(_d(u * u, -1, dx) + u * _d(u, -1, dx)) / 3 + nu * _lap(u, (-1,), (dx,))


def torch_rhs_2d(u, nu, dxs):
    """``-(u . grad) u + nu lap u`` on ``(batch, x, y, vector)``."""
    dims = (1, 2)
    comps = []
    for c in range(2):
        uc = u[..., c]
        adv = sum(u[..., a] * _d(uc, dims[a], dxs[a]) for a in range(2))
        comps.append(-adv + nu * _lap(uc, dims, dxs))
    return torch.stack(comps, -1)


def ssp_rk3(rhs, u, h):
    u1 = u + h * rhs(u)
    u2 = 0.75 * u + 0.25 * (u1 + h * rhs(u1))
    return u / 3 + 2 / 3 * (u2 + h * rhs(u2))


# ---------------------------------------------------------------------------- timing
def bench_case(grid: GridSpec, batch_size: int, repeats: int, inner: int) -> dict:
    vector = grid.ndim > 1
    rng = np.random.default_rng(0)
    u0 = Burgers(grid, dt=DT, viscosity=NU).random_state(batch_size, seed=rng)["velocity"]
    native = to_tensor(u0).clone()
    if vector:
        rhs = lambda u: torch_rhs_2d(u, NU, grid.dx)  # noqa: E731
    else:
        rhs = lambda u: torch_rhs_1d(u, NU, grid.dx[0])  # noqa: E731

    models = {jit: Burgers(grid, dt=DT, viscosity=NU, jit=jit) for jit in (True, False)}
    params = models[True].true_params
    values = {"velocity": u0.values}

    # Equal work: one step of each must agree to float32 round-off.
    ref = ssp_rk3(rhs, native, DT)
    for jit, model in models.items():
        got = to_tensor(model.step_values(values, params)["velocity"])
        err = (got - ref).abs().max().item() / ref.abs().max().item()
        assert err < 1e-5, f"hybridkit (jit={jit}) and torch differ by {err:.2e}"

    # Interleaved rounds (torch, jit, eager, then reversed): a load that changes during the run
    # slows all three alike; each round times `inner` steps (eager: fewer, it is slow).
    n_inner = {"torch": inner, "jit": inner, "eager": max(1, inner // 4)}
    step = {"torch": lambda: ssp_rk3(rhs, native, DT),
            "jit": lambda: models[True].step_values(values, params),
            "eager": lambda: models[False].step_values(values, params)}

    def rounds(name):
        def run():
            for _ in range(n_inner[name]):
                step[name]()
        return run

    times = interleaved({k: rounds(k) for k in step}, repeats, warmup=1)
    return {k: statistics.median(t) / n_inner[k] for k, t in times.items()}


def suite(quick: bool = False) -> list:
    """Rows for ``run_all.py``: the issue's two cases, 1D N=128 batch 256 and 2D 64x64 batch 64
    (jit; the eager ratio in the note). Target: at least half as fast as plain torch."""
    from _common import Row, ms

    repeats, inner = (5, 20) if quick else (9, 50)
    rows = []
    with math.precision(32):
        for grid, b, label in ((GridSpec((128,), (100.0,)), 256, "1D N=128, batch 256"),
                               (GridSpec((64, 64), (100.0,)), 64, "2D 64x64, batch 64")):
            r = bench_case(grid, b, repeats, inner)
            ratio = r["torch"] / r["jit"]
            rows.append(Row(f"Burgers step, {label}", ms(r["jit"]), f"plain torch {ms(r['torch'])}", ratio,
                            ">= 0.5", ratio >= 0.5, f"eager phiml: {r['torch'] / r['eager']:.2f}"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller 2D case")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-2d", action="store_true", help="skip the 2D Burgers cases")
    args = parser.parse_args(argv)
    # phiml's jit traces with torch.jit.trace, which torch 2.13 deprecates (noise in the table)
    warnings.filterwarnings("ignore", message=".*torch.jit.trace", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    repeats, inner = (5, 20) if args.quick else (9, 50)

    cases = [(GridSpec((128,), (100.0,)), b) for b in (1, 256)]
    if not args.no_2d:
        n2 = 32 if args.quick else 64
        cases += [(GridSpec((n2, n2), (100.0,)), b) for b in (1, 64)]

    print(f"Burgers step (SSP-RK3, central differences), float32, {args.threads} thread(s), "
          f"median of {repeats} repeats; ratio = torch time / hybridkit time")
    header = f"{'grid':>9} {'batch':>6} {'torch ms':>9} {'jit ms':>9} {'eager ms':>9} {'ratio jit':>10} {'ratio eager':>12}"
    print(header)
    print("-" * len(header))
    with math.precision(32):
        for grid, b in cases:
            r = bench_case(grid, b, repeats, inner)
            res = "x".join(map(str, grid.resolution))
            print(f"{res:>9} {b:>6} {1e3 * r['torch']:9.3f} {1e3 * r['jit']:9.3f} {1e3 * r['eager']:9.3f} "
                  f"{r['torch'] / r['jit']:10.3f} {r['torch'] / r['eager']:12.3f}", flush=True)


if __name__ == "__main__":
    main()
