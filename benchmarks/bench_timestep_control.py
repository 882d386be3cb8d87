"""Time of physical fits on data far apart in time: automatic substeps vs substeps set by hand, and
the joint fit of initial states.

* **automatic time-step control**: 1D Burgers (N=128 on [0, 2 pi), nu = 0.1, 2 trajectories x 10
  frames) with frames 5x the explicit limit of one RK3 substep apart; the data are the model's own
  rollout with 50 substeps per frame (time error far below the fit's). The same fit (same start
  0.05, same bounds, so the optimiser sees the same problem) with ``substeps="auto"`` (the model
  chooses ``n`` at every evaluation from the coefficients and states) and with the right
  ``substeps`` set by hand (``n`` at the top of the bounds, stable over the whole range).
  ratio = hand time / auto time (target >= 1 / 1.2: within 1.2x).
* **joint initial states**: evidence scenario (a) at its size (N=64, 4 trajectories x 20 frames,
  10 % noise on every frame): the fit of the viscosity alone and with the 4 x 64 initial-state
  numbers, standard errors included. ratio = plain time / joint time (report).

Run:  .venv/bin/python benchmarks/bench_timestep_control.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np

from hybridkit import GridSpec
from hybridkit.data import add_noise
from hybridkit.physics import Burgers, learnable
from hybridkit.training import PhysicalTrainer


def _timed(fns: dict, repeats: int) -> dict:
    from _common import interleaved
    return {k: statistics.median(v) for k, v in interleaved(fns, repeats).items()}


def auto_vs_hand(repeats: int) -> dict:
    grid = GridSpec((128,), (2 * np.pi,))
    nu, frames = 0.1, 10
    probe = Burgers(grid, viscosity=nu)
    state = probe.random_state(2, seed=3)
    dt = 5 * probe.max_stable_dt(state)
    fine = Burgers(grid, dt=dt, viscosity=nu, substeps=50)
    traj = fine.rollout(state, frames)["velocity"]
    initial, targets = {"velocity": traj.time[0]}, {"velocity": traj.time[1:]}
    bounds = (0.02, 0.12)  # the truth 0.1 inside, not far below the top
    auto = Burgers(grid, dt=dt, viscosity=nu)
    n_hand = Burgers(grid, dt=dt, viscosity=bounds[1]).substeps_for(state)  # stable over the whole range
    hand = Burgers(grid, dt=dt, viscosity=nu, substeps=n_hand)
    cfg = {"num_predict_steps": frames, "max_iterations": 200}
    last = {}

    def run(model, label):
        def fit():
            trainer = PhysicalTrainer(cfg, model, [learnable("viscosity", 0.05, bounds=bounds)])
            last[label] = trainer.fit(initial, targets, progress=False)
        return fit
    times = _timed({"auto": run(auto, "auto"), "hand": run(hand, "hand")}, repeats)
    return {"times": times, "results": last, "n_hand": n_hand, "nu": nu}


def joint_initial_states(repeats: int) -> dict:
    grid = GridSpec((64,), (100.0,))
    model = Burgers(grid, dt=0.1, viscosity=0.5)
    traj = model.rollout(model.random_state(4, seed=0), 20)["velocity"]
    noisy = add_noise(traj, 0.10, seed=1)
    initial, targets = {"velocity": noisy.time[0]}, {"velocity": noisy.time[1:]}
    last = {}

    def run(joint):
        def fit():
            cfg = {"num_predict_steps": 20, "max_iterations": 200, "fit_initial_state": joint, "on_failure": "warn"}
            trainer = PhysicalTrainer(cfg, model, [learnable("viscosity", 2.5)])
            last["joint" if joint else "plain"] = trainer.fit(initial, targets, progress=False)
        return fit
    times = _timed({"plain": run(False), "joint": run(True)}, repeats)
    return {"times": times, "results": last}


def suite(quick: bool = False) -> list:
    """Rows for ``run_all.py``."""
    from _common import Row, ms

    repeats = 3 if quick else 7
    a = auto_vs_hand(repeats)
    ta, th = a["times"]["auto"], a["times"]["hand"]
    ra, rh = a["results"]["auto"], a["results"]["hand"]
    rows = [Row("physical fit, frames 5x the explicit limit apart: substeps='auto'", f"{ms(ta)} ({ra.evaluations} ev)",
                f"substeps={a['n_hand']} by hand {ms(th)} ({rh.evaluations} ev)", th / ta, ">= 0.83 (within 1.2x)",
                th / ta >= 1 / 1.2,
                f"nu error {abs(ra.params['viscosity'] / a['nu'] - 1):.1e} vs {abs(rh.params['viscosity'] / a['nu'] - 1):.1e}"
                f"; auto used {ra.substeps} substeps at the result")]
    j = joint_initial_states(repeats)
    tp, tj = j["times"]["plain"], j["times"]["joint"]
    rp, rj = j["results"]["plain"], j["results"]["joint"]
    rows.append(Row("physical fit with joint initial states (4 x 64 state numbers)", f"{ms(tj)} ({rj.evaluations} ev)",
                    f"viscosity alone {ms(tp)} ({rp.evaluations} ev)", tp / tj, "report", None,
                    f"nu error {abs(rj.params['viscosity'] / 0.5 - 1):.3f} vs {abs(rp.params['viscosity'] / 0.5 - 1):.3f}"
                    " (10 % noise); standard errors included"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    from _common import setup
    setup(1)
    warnings.filterwarnings("ignore")
    for row in suite(args.quick):
        print(f"{row.benchmark}: {row.hybridkit} | {row.reference} | ratio {row.ratio:.2f} | {row.note}")


if __name__ == "__main__":
    main()
