"""Ctrl-C and SIGTERM: a one-line message, the last completed fit / epoch / cycle kept, exit 130 /
143 within seconds, never a hang.

The physical fit is the hard case: ``phi.math.minimize`` runs SciPy in a worker thread that hands
every point to the main thread through two barriers, and an interrupt that lands outside the loss
used to leave that thread waiting forever (the interpreter then hung at exit). The child process
(``CHILD``) runs ``python -m hybridkit run`` in-process several times and pauses, announcing it on
stdout, at a chosen moment of a fit: while computing the initial loss (before the optimiser
starts), inside the loss the optimiser asks for, inside phiml's gradient computation, with the
main thread waiting at a barrier for SciPy's thread, and between two fits. The test sends the
signal right then, so the moment is exact, not a race.
"""
from __future__ import annotations

import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

DATA = {"pde": "Burgers", "pde_params": {"resolution": [32], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
        "num_train": 2, "num_test": 2, "num_frames": 8}
PHYSICAL = {  # every fit stops after 4 iterations (not converged, warned), so the next one optimises again
    "name": "signals", "mode": "physical", "data": DATA, "evaluate": {"steps": 3},
    "physical": {"initial": {"viscosity": 2.0}, "epochs": 3,
                 "trainer_params": {"num_predict_steps": 5, "max_iterations": 4}},
}
NETWORK = {
    "name": "signals", "cycles": 3, "data": {**DATA, "pde_params": {**DATA["pde_params"], "resolution": [16]}},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 6, "batch_size": 4,
                  "trainer_params": {"num_predict_steps": 1}},
    "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2, "synthetic_trajectories": 2},
    "evaluate": {"steps": 3},
}

# `python -c CHILD RUN_ARGS MOMENT...`: one in-process `main(["run", ...])` per MOMENT; "-" runs
# without pausing; the last run's code is the process' exit code (hybridkit._console.exit_process).
# A moment is "loss:F:N" (the N-th loss of fit F; N=1 is the initial loss, before the optimiser),
# "grad:F:N" (the N-th gradient in phiml's jacobian), "barrier:F:N" (SciPy's thread holds the
# main thread at a barrier), "saved:F" (the checkpoint of fit F was just written), "epoch:E" (a
# batch of epoch E), "cycle-fit:C" (the optimiser's 3rd loss in cycle C's physical fit).
CHILD = r"""
import hashlib, sys, threading, time
import torch
torch.set_num_threads(1)
import hybridkit.training._fit as fit_module
from hybridkit.training import HybridTrainer, PhysicalTrainer, SyntheticTrainer
from hybridkit.__main__ import main
from hybridkit._console import exit_process

state = {"pause": "-", "fit": None, "counts": {}, "cycle": None}

def hold(what):
    print("PAUSED", what, flush=True)
    time.sleep(1.0)  # the signal arrives now; where it is held, the sleep runs out

def count(kind):
    if state["fit"] is None:
        return
    key = (kind, state["fit"])
    state["counts"][key] = n = state["counts"].get(key, 0) + 1
    if state["pause"] == f"{kind}:{state['fit']}:{n}":
        hold(state["pause"])
    if kind == "loss" and n == 3 and state["cycle"] is not None and state["pause"] == f"cycle-fit:{state['cycle']}":
        hold(state["pause"])

run = fit_module._Fit.run
def counted_run(self):
    state["fit"] = self.t.epoch + 1
    try:
        return run(self)
    finally:
        state["fit"] = None
fit_module._Fit.run = counted_run

losses = fit_module._Fit.losses
def counted_losses(self, *a, **k):
    count("loss")
    return losses(self, *a, **k)
fit_module._Fit.losses = counted_losses

grad = torch.autograd.grad
def counted_grad(*a, **k):
    if threading.current_thread() is threading.main_thread():
        count("grad")
    return grad(*a, **k)
torch.autograd.grad = counted_grad

wait = threading.Barrier.wait
def counted_wait(self, *a, **k):
    if threading.current_thread() is not threading.main_thread():
        count("barrier")  # this thread holds back; the main thread waits at the barrier meanwhile
    return wait(self, *a, **k)
threading.Barrier.wait = counted_wait

def announce(kind, number, path):
    print("SAVED", kind, number, hashlib.sha256(open(path, "rb").read()).hexdigest(), flush=True)
    if state["pause"] in (f"saved:{number}",):
        hold(state["pause"])

for cls, attr in ((PhysicalTrainer, "epoch"), (SyntheticTrainer, "epoch"), (HybridTrainer, "cycle")):
    def saver(save, attr=attr, kind=cls.__name__):
        def save_checkpoint(self, path):
            out = save(self, path)
            announce(kind, getattr(self, attr), path)
            return out
        return save_checkpoint
    cls.save_checkpoint = saver(cls.save_checkpoint)

batch_loss = SyntheticTrainer._batch_loss
def counted_batch_loss(self, *a, **k):
    if state["pause"] == f"epoch:{self.epoch + 1}":
        hold(state["pause"])
    return batch_loss(self, *a, **k)
SyntheticTrainer._batch_loss = counted_batch_loss

update = HybridTrainer._update_physical
def counted_update(self, *a, **k):
    state["cycle"] = self.cycle + 1
    try:
        return update(self, *a, **k)
    finally:
        state["cycle"] = None
HybridTrainer._update_physical = counted_update

split = sys.argv.index("--")
args, moments = sys.argv[1:split], sys.argv[split + 1:]
for i, moment in enumerate(moments):
    state.update(pause=moment, counts={})
    code = main(args)
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    print("RETURNED", code, "threads", alive, flush=True)
    if i == len(moments) - 1:
        exit_process(code)
"""


def _spawn(config: dict, tmp: Path, moments: list[str], out: Path) -> subprocess.Popen:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HYBRIDKIT_DATA": str(tmp / "data"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", CHILD, "run", str(path), "--out", str(out), "--", *moments]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _lines(proc: subprocess.Popen, timeout: float = 120):
    """The child's stdout lines as they come. Read from the file descriptor, not through a buffered
    file: a ``readline`` that took in two lines at once leaves the second in its buffer, where
    ``select`` does not see it (the test then waited for the child's next output to send a signal
    the child expected a second earlier)."""
    fd, pending = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            deadline = time.monotonic() + timeout
            yield line.decode().strip()
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                if pending:
                    yield pending.decode().strip()
                return
            pending += chunk
    proc.kill()
    raise AssertionError(f"the child gave no output for {timeout} s")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _drive(proc: subprocess.Popen, run: Path, sig=signal.SIGINT) -> tuple[list[tuple[str, float, int, str]], dict]:
    """Send ``sig`` at every PAUSED; returns ``(moment, seconds to return, code, threads)`` per
    interrupted run and ``{kind number: checkpoint sha}`` of what was saved; checks after each
    return that the checkpoint is the last one saved, byte for byte."""
    results, saved, sent = [], {}, None
    last = None
    for line in _lines(proc):
        if line.startswith("SAVED"):
            _, kind, number, sha = line.split()
            saved[f"{kind} {number}"], last = sha, sha
        elif line.startswith("PAUSED"):
            moment, sent = line.split()[1], time.monotonic()
            proc.send_signal(sig)
        elif line.startswith("RETURNED"):
            code, threads = int(line.split()[1]), line.split("threads", 1)[1].strip()
            if sent is not None:
                results.append((moment, time.monotonic() - sent, code, threads))
                assert last is None or _sha(run / "checkpoint.pt") == last, f"checkpoint changed after {moment}"
            sent = None
    return results, saved


@pytest.mark.slow
def test_the_physical_fit_stops_at_once_wherever_sigint_lands(tmp_path):
    """Five interrupts of one run, each resumed by the next: before the optimiser starts, inside its
    loss, inside phiml's gradient, at a barrier with SciPy's thread, and between two fits. Each
    returns exit code 130 within 5 s with no thread left behind and the checkpoint of the last
    completed fit intact; the message is one line naming it; the last rerun finishes."""
    run = tmp_path / "run"
    moments = ["loss:2:1", "loss:2:4", "grad:2:3", "barrier:2:3", "saved:2", "-"]
    proc = _spawn(PHYSICAL, tmp_path, moments, run)
    results, saved = _drive(proc, run)
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert [r[0] for r in results] == moments[:-1], (results, err[-3000:])
    for moment, seconds, code, threads in results:
        assert code == 130 and seconds < 5.0 and threads == "[]", (moment, seconds, code, threads)
    notes = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(notes) == 5 and "Traceback" not in err, err[-3000:]
    assert all(re.fullmatch(r"interrupted by SIGINT: kept .*checkpoint\.pt \(physical, after fit 1\); rerun the "
                            r"same command to resume", n) for n in notes[:4]), notes
    assert "after fit 2" in notes[4]
    assert list(saved) == ["PhysicalTrainer 1", "PhysicalTrainer 2", "PhysicalTrainer 3"]
    state = torch.load(run / "checkpoint.pt", weights_only=True)["state"]
    assert state["epoch"] == 3 and len(state["history"]) == 3


@pytest.mark.slow
def test_sigterm_during_synthetic_training_exits_143_and_keeps_the_last_epoch(tmp_path):
    run = tmp_path / "run"
    proc = _spawn({**NETWORK, "mode": "synthetic"}, tmp_path, ["epoch:3"], run)
    results, saved = _drive(proc, run, signal.SIGTERM)
    t0 = time.monotonic()
    err = proc.stderr.read()
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5.0
    assert proc.returncode == 143 and results[0][2] == 143 and results[0][1] < 5.0, (results, err[-3000:])
    assert err.strip().splitlines()[-1] == (f"interrupted by SIGTERM: kept {run / 'checkpoint.pt'} (synthetic, after "
                                            "epoch 2); rerun the same command to resume"), err[-3000:]
    assert "Traceback" not in err
    assert list(saved) == ["SyntheticTrainer 1", "SyntheticTrainer 2"]
    assert _sha(run / "checkpoint.pt") == saved["SyntheticTrainer 2"]
    assert (run / "checkpoint.json").exists() and not (run / "metrics.json").exists()


@pytest.mark.slow
def test_sigint_during_a_hybrid_cycle_keeps_the_cycle_before_and_the_rerun_resumes(tmp_path):
    """Interrupted inside the physical fit of cycle 2: exit 130, the checkpoint after cycle 1 stands;
    the same command then resumes after cycle 1 and finishes."""
    run = tmp_path / "run"
    # the network's predictions count everywhere with a fixed weight (the skill weighting drops them
    # here: the physics is exact), so every cycle's fit has something new to optimise
    config = {**NETWORK, "mode": "hybrid",
              "hybrid": {**NETWORK["hybrid"], "interaction_region": "all", "target_weighting": "fixed"}}
    proc = _spawn(config, tmp_path, ["cycle-fit:2", "-"], run)
    results, saved = _drive(proc, run)
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    (moment, seconds, code, threads), = results
    assert code == 130 and seconds < 5.0 and threads == "[]", results
    assert f"interrupted by SIGINT: kept {run / 'checkpoint.pt'} (hybrid, after cycle 1)" in err
    assert "HybridTrainer 1" in saved and "HybridTrainer 3" in saved, saved
    state = torch.load(run / "checkpoint.pt", weights_only=True)["state"]
    assert state["cycle"] == 3 and [c["cycle"] for c in state["history"]] == [1, 2, 3]
    assert (run / "metrics.json").exists() and (run / "summary.md").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_maps_signals_to_the_shells_exit_codes(sig, code):
    from hybridkit._signals import Interrupted

    e = Interrupted(sig)
    assert isinstance(e, KeyboardInterrupt) and e.exit_code == code and e.name == signal.Signals(sig).name


def test_deferred_signals_wait_for_the_block_and_act_at_once_inside_immediate():
    """A SIGINT inside deferred_interrupts only sets ``pending`` and is raised when the block ends;
    inside ``immediate()`` it raises at once; handlers are restored afterwards."""
    from hybridkit._signals import deferred_interrupts

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts() as d:
            signal.raise_signal(signal.SIGINT)
            assert d.pending == signal.SIGINT  # still running: held
            reached = True
    assert reached and signal.getsignal(signal.SIGINT) is before
    with deferred_interrupts() as d:
        with pytest.raises(KeyboardInterrupt):
            with d.immediate():
                signal.raise_signal(signal.SIGINT)
        assert d.pending is None
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_whose_handler_does_not_raise_never_passes_a_cut_fit_off_as_converged():
    """A SIGINT handler that only logs (called when the optimiser has ended): the fit the signal cut
    short is 'not_converged', and says why."""
    import numpy as np

    import hybridkit.training._fit as fit_module
    from hybridkit import GridSpec
    from hybridkit.physics import Burgers, learnable
    from hybridkit.training import PhysicalTrainer

    model = Burgers(GridSpec((16,), (100.0,)), dt=0.2, viscosity=2.0)
    traj = model.rollout(model.random_state(2, seed=0), 3, model.true_params)
    init, tgt = {k: v.time[0] for k, v in traj.items()}, {k: v.time[1:] for k, v in traj.items()}
    trainer = PhysicalTrainer({"num_predict_steps": 3, "on_failure": "warn"}, model, [learnable("viscosity", 4.0)])
    seen, grad, calls = [], torch.autograd.grad, []

    def grad_then_signal(*a, **k):  # in phiml's gradient code, outside the loss: the signal is held
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return grad(*a, **k)

    before = signal.signal(signal.SIGINT, lambda s, f: seen.append(s))
    try:
        torch.autograd.grad = grad_then_signal
        with pytest.warns(fit_module.FitWarning, match="stopped early by signal 2"):
            result = trainer.fit(init, tgt, progress=False)
    finally:
        torch.autograd.grad = grad
        signal.signal(signal.SIGINT, before)
    assert seen == [signal.SIGINT] and result.status == "not_converged" and np.isfinite(result.final_loss)
