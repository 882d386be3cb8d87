"""Interruptions: a run killed (SIGKILL) at any moment leaves no half-written file that is later
read as valid, and the same command resumes from the last completed epoch / cycle with a result
bit-identical to an uninterrupted run. Concurrent writers of one dataset do not corrupt it.

The child process is ``python -m hybridkit run`` wrapped by a few lines (``CHILD``) that announce
what it is doing on stdout and, when asked, pause at a chosen moment: in the middle of writing the
data set, in the middle of an epoch, or halfway through writing a checkpoint (half of the bytes
are on disk). The test kills the child with SIGKILL right there, so the moment is exact, not a
race.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hybridkit.data import CacheManager, DataManager

CONFIG = {
    "name": "interrupt",
    "cycles": 2,
    "data": {"pde": "Burgers", "pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2,
                                              "viscosity": 0.5},
             "num_train": 2, "num_test": 2, "num_frames": 6},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 6, "batch_size": 4,
                  "trainer_params": {"num_predict_steps": 1, "noise_std": 0.01}},
    "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 2}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2,
               "synthetic_trajectories": 2},
    "evaluate": {"steps": 3},
}

# The wrapper: `python -c CHILD PAUSE args...`. PAUSE is "", "generate", "epoch:K" (second batch
# of epoch K), "save:K" (half of the checkpoint of epoch K written) or "hybrid-save:C" (half of the
# checkpoint after cycle C written).
CHILD = r"""
import io, os, sys, time
import torch
torch.set_num_threads(1)
import hybridkit.data._generate as gen
from hybridkit.training import HybridTrainer, PhysicalTrainer, SyntheticTrainer

pause, argv = sys.argv[1], sys.argv[2:]

def hold(what):
    print("PAUSED", what, flush=True)
    time.sleep(600)

simulate = gen._simulate
def slow_simulate(*a, **k):
    out = simulate(*a, **k)
    if pause == "generate":
        hold("generate")  # the temporary file exists, its data are not written yet
    return out
gen._simulate = slow_simulate

batches = {}
batch_loss = SyntheticTrainer._batch_loss
def counted_batch_loss(self, *a, **k):
    epoch = self.epoch + 1
    batches[epoch] = batches.get(epoch, 0) + 1
    if pause == f"epoch:{epoch}" and batches[epoch] == 2:
        hold(pause)
    return batch_loss(self, *a, **k)
SyntheticTrainer._batch_loss = counted_batch_loss

save = torch.save
def half_save(obj, f, *a, **k):
    state = obj.get("state", {}) if isinstance(obj, dict) else {}
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if (kind == "SyntheticTrainer" and pause == f"save:{state.get('epoch')}") or (
            kind == "HybridTrainer" and pause == f"hybrid-save:{state.get('cycle')}"):
        buf = io.BytesIO()
        save(obj, buf, *a, **k)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        hold(pause)
    return save(obj, f, *a, **k)
torch.save = half_save

save_checkpoint = SyntheticTrainer.save_checkpoint
def announced_save(self, path):
    out = save_checkpoint(self, path)
    print("saved epoch", self.epoch, flush=True)
    return out
SyntheticTrainer.save_checkpoint = announced_save

from hybridkit.__main__ import main
sys.exit(main(argv))
"""


def _spawn(pause: str, config: Path, out: Path, data: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "HYBRIDKIT_DATA": str(data), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", CHILD, pause, "run", str(config), "--mode", mode, "--out", str(out)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _kill_when_paused(proc: subprocess.Popen, timeout: float = 120) -> list[str]:
    """Read the child's stdout until it says PAUSED, then SIGKILL it; returns the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:  # the child ended without pausing
            proc.wait()
            raise AssertionError(f"child exited ({proc.returncode}) before pausing: {lines}\n{proc.stderr.read()[-3000:]}")
        lines.append(line.strip())
        if line.startswith("PAUSED"):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            proc.stdout.close()
            proc.stderr.close()
            return lines
    proc.kill()
    raise AssertionError(f"child did not pause within {timeout} s: {lines}")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def _checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _metrics(run: Path, mode: str) -> dict:
    m = json.loads((run / "metrics.json").read_text())["modes"][mode]
    m.pop("seconds")
    return m


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "interrupt.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.mark.slow
def test_synthetic_run_killed_anywhere_resumes_to_the_same_result(tmp_path, config):
    """Killed while writing the data, in the middle of epoch 3, and halfway through writing the
    checkpoint of epoch 5; each rerun resumes after the last completed epoch (at most one lost)
    and the final weights, optimizer state and metrics equal an uninterrupted run bit for bit."""
    mode = "synthetic"
    reference = _spawn("", config, tmp_path / "reference", tmp_path / "data_ref", mode)  # in parallel
    run, data = tmp_path / "run", tmp_path / "data"

    # 1. during data generation: the cache holds no entry, only a temporary file nobody reads
    _kill_when_paused(_spawn("generate", config, run, data, mode))
    cache = CacheManager(data / "cache")
    assert cache.entries() == [] and not list((data / "cache").glob("*.h5"))
    assert list((data / "cache").glob(".*.tmp")), "the kill should have left the writer's temporary file"

    # 2. in the middle of epoch 3: the checkpoint on disk is the complete one of epoch 2
    lines = _kill_when_paused(_spawn("epoch:3", config, run, data, mode))
    assert "saved epoch 2" in lines and "saved epoch 3" not in lines
    assert _checkpoint(run / "checkpoint.pt")["state"]["epoch"] == 2

    # 3. halfway through writing the checkpoint of epoch 5: the old checkpoint (epoch 4) stands,
    #    the half-written bytes sit in a temporary file that torch cannot read
    lines = _kill_when_paused(_spawn("save:5", config, run, data, mode))
    assert any("resuming" in line and "at epoch 2" in line for line in lines), lines
    assert _checkpoint(run / "checkpoint.pt")["state"]["epoch"] == 4
    partial = list(run.glob(".checkpoint.pt.*.tmp"))
    assert len(partial) == 1
    with pytest.raises(Exception):
        torch.load(partial[0], weights_only=True)

    # 4. the same command again finishes the run
    out = _finish(_spawn("", config, run, data, mode))
    assert "resuming from" in out and "at epoch 4" in out
    _finish(reference)

    a = _checkpoint(tmp_path / "reference" / "checkpoint.pt")["state"]
    b = _checkpoint(run / "checkpoint.pt")["state"]
    assert a["epoch"] == b["epoch"] == CONFIG["synthetic"]["epochs"]
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["optimizer"]["state"][i][s], b["optimizer"]["state"][i][s])
               for i in a["optimizer"]["state"] for s in a["optimizer"]["state"][i])
    assert torch.equal(a["generator"], b["generator"]) and a["history"] == b["history"]
    assert _metrics(tmp_path / "reference", mode) == _metrics(run, mode)
    # the datasets the two runs made are byte-identical (the killed writer left no trace in them)
    ref_files = sorted(p.read_bytes() for p in (tmp_path / "data_ref" / "cache").glob("*.h5"))
    assert ref_files == sorted(p.read_bytes() for p in (data / "cache").glob("*.h5"))


@pytest.mark.slow
def test_hybrid_run_killed_while_saving_a_cycle_resumes_to_the_same_result(tmp_path, config):
    """Killed halfway through writing the checkpoint after cycle 2: the one of cycle 1 stands; the
    rerun resumes after cycle 1 and ends where an uninterrupted run ends."""
    mode = "hybrid"
    reference = _spawn("", config, tmp_path / "reference", tmp_path / "data_ref", mode)
    run, data = tmp_path / "run", tmp_path / "data"
    _kill_when_paused(_spawn("hybrid-save:2", config, run, data, mode))
    assert _checkpoint(run / "checkpoint.pt")["state"]["cycle"] == 1
    assert len(list(run.glob(".checkpoint.pt.*.tmp"))) == 1
    out = _finish(_spawn("", config, run, data, mode))
    assert "after cycle 1" in out
    _finish(reference)
    a, b = _metrics(tmp_path / "reference", mode), _metrics(run, mode)
    assert a["params"] == b["params"] and a["synthetic_rollout_error"] == b["synthetic_rollout_error"]
    assert a["cycles"] == b["cycles"] and a["loss"] == b["loss"]


WRITER = r"""
import sys, time
from pathlib import Path
from hybridkit import GridSpec
from hybridkit.data import generate_dataset
from hybridkit.physics import Burgers

go, shared, exclusive = map(Path, sys.argv[1:4])
model = Burgers(GridSpec((32,), (100.0,)), dt=0.1, viscosity=0.5)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
generate_dataset(model, shared, num_sims=48, num_frames=30, batch_size=4, overwrite=True, progress=False)
try:
    generate_dataset(model, exclusive, num_sims=48, num_frames=30, batch_size=4, progress=False)
    print("created")
except FileExistsError as e:
    print("refused:", e)
"""


@pytest.mark.slow
def test_two_processes_writing_the_same_dataset(tmp_path):
    """Both write the same path at the same moment: with overwrite both finish and the file is
    complete and valid; without overwrite exactly one creates it and the other is refused."""
    go, shared, exclusive = tmp_path / "go", tmp_path / "shared.h5", tmp_path / "exclusive.h5"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(go), str(shared), str(exclusive)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for p in procs:  # both imported and waiting: then both start at once
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    outs = [_finish(p) for p in procs]
    assert sorted(o.split(":")[0].strip() for o in outs) == ["created", "refused"], outs
    for path in (shared, exclusive):
        with DataManager(path, cache_mb=0) as dm:
            assert dm.num_sims == 48 and all(dm.load(s, "velocity").shape == (30, 32) for s in range(48))
    assert shared.read_bytes() == exclusive.read_bytes()  # same model and seed: the same bytes
    assert not list(tmp_path.glob(".*.tmp"))  # every writer cleaned up its temporary file
