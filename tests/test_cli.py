"""The command line: every error it can foresee is one line, ``error: <what> (Fix: <fix>)``, exit
2, found before any work where it can be; a bug prints its traceback and says it is one (exit 1);
repeated warnings are shown once and counted; ``run`` shows a progress bar on a terminal."""
from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hybridkit.__main__ import main

TINY = {
    "name": "cli", "mode": "hybrid", "cycles": 1,
    "data": {"pde": "Burgers", "pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
             "num_train": 2, "num_test": 2, "num_frames": 6},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 2, "batch_size": 8,
                  "trainer_params": {"num_predict_steps": 1}},
    "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2, "synthetic_trajectories": 2},
    "evaluate": {"steps": 3},
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A config file, a data directory, a file where a directory is expected."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    (tmp_path / "afile").write_text("not a directory")
    return tmp_path


def _main(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    """The stderr of a refused command: exactly one ``error:`` line that names the fix, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, err
    assert re.search(r" \(Fix: .+\)$", errors[0]), errors[0]
    return errors[0]


# (id, extra arguments after `run CONFIG --out OUT`, pattern the error line must match).
# All are refused before any work: no data simulated, no run directory made.
BEFORE_ANY_WORK = [
    ("seed -1", ["--set", "data.seed=-1"], r"data\.seed as an integer >= 0 .*got -1"),
    ("batch_size 0", ["--set", "synthetic.batch_size=0"], r"synthetic\.batch_size as an integer >= 1, got 0"),
    ("bounds [5, 1]", ["--set", "physical.bounds={viscosity: [5, 1]}"], r"low < high, got \[5, 1\] \(Fix: e\.g\. \[1, 5\]"),
    ("bounds of a coefficient not learned", ["--set", "physical.bounds={nu: [0.1, 1]}"],
     r"physical\.bounds names \['nu'\], which physical\.initial does not learn"),
    ("initial guess outside its bounds", ["--set", "physical.bounds={viscosity: [2, 5]}"],
     r"physical: Expected the initial value of 'viscosity' inside its bounds \(2\.0, 5\.0\), got values in \[1, 1\]"),
    ("a coefficient the PDE lacks", ["--set", "physical.initial={diffusivity: 1.0}"],
     r"physical\.initial names \['diffusivity'\], which Burgers does not have"),
    ("observed_region outside the domain", ["--set", "data.observed_region=[[150, 200]]"],
     r"data\.observed_region entry \[150, 200\] \(axis x\) is not inside the domain \[0, 100\]"),
    ("observed_region with two axes in 1D", ["--set", "data.observed_region=[[0, 50], [0, 50]]"],
     r"has 2 pair\(s\); the grid has 1 axis"),
    ("UNet levels 6 on 16 cells", ["--set", "synthetic.model=UNet", "--set", "synthetic.model_params={levels: 6}"],
     r"synthetic\.model 'UNet' .* does not fit the grid \(16,\).*divisible by 64"),
    ("a network option that does not exist", ["--set", "synthetic.model_params={widht: 4}"],
     r"synthetic\.model 'ConvNet' .*widht"),
    ("evaluate.steps beyond the frames", ["--set", "evaluate.steps=50"],
     r"evaluate\.steps = 50 needs 51 frames per simulation, but data\.num_frames = 6 .*Fix: set evaluate\.steps <= 5"),
    ("fit rollout beyond the frames", ["--set", "physical.trainer_params.num_predict_steps=9"],
     r"physical\.trainer_params\.num_predict_steps = 9 needs 10 frames"),
    ("generated trajectories too short", ["--set", "synthetic.trainer_params.num_predict_steps=2",
                                          "--set", "hybrid.physical_frames=2"],
     r"hybrid\.physical_frames = 2 is shorter than a training window of the network \(3 frames\)"),
    ("synthetic.epochs -5", ["--mode", "synthetic", "--set", "synthetic.epochs=-5"],
     r"synthetic\.epochs as an integer >= 1, got -5"),
    ("physical.epochs 0", ["--mode", "physical", "--set", "physical.epochs=0"], r"physical\.epochs as an integer >= 1"),
    ("num_train 10**12", ["--set", "data.num_train=1000000000000"],
     r"1000000000002 simulations x 6 frames x 16 cells make 349 TiB of data, more than this machine's .* of memory"),
    ("hybrid.seed -1", ["--set", "hybrid.seed=-1"], r"hybrid\.seed as an integer >= 0"),
    ("trainer seed -1", ["--set", "synthetic.trainer_params.seed=-1"], r"synthetic\.trainer_params\.seed"),
    ("threads 0", ["--threads", "0"], r"--threads as an integer >= 1, got 0"),
    ("--out names a file", ["--out", "{tmp}/afile"], r"The run directory .*afile is a file"),
    ("--out under a file", ["--out", "{tmp}/afile/run"], r"cannot be created: .*afile is a file, not a directory"),
]


@pytest.mark.parametrize("extra, pattern", [c[1:] for c in BEFORE_ANY_WORK], ids=[c[0] for c in BEFORE_ANY_WORK])
def test_a_bad_value_is_one_line_and_exit_2_before_any_work(env, capsys, extra, pattern):
    extra = [a.replace("{tmp}", str(env)) for a in extra]
    args = ["run", env / "tiny.yaml", "--out", env / "run"] + extra
    if "--out" in extra[:1]:
        args = ["run", env / "tiny.yaml"] + extra
    code, _, err = _main(args, capsys)
    line = _one_error_line(err)
    assert code == 2 and re.search(pattern, line), line
    assert not (env / "run").exists() and not (env / "data").exists()  # nothing simulated, nothing made


def test_a_read_only_data_directory_is_refused_before_any_work(env, capsys, monkeypatch):
    """Simulated with EROFS (as root, file modes do not stop writes)."""
    import tempfile

    import hybridkit.experiment._preflight as preflight

    real = tempfile.mkstemp

    def read_only(*a, dir=None, **k):
        if dir is not None and Path(dir).resolve().is_relative_to(env.resolve()) and "run" not in str(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(preflight.tempfile, "mkstemp", read_only)
    code, _, err = _main(["run", env / "tiny.yaml", "--out", env / "run"], capsys)
    assert code == 2 and re.search(r"the data directory .*data is not writable \(Read-only file system in .*\) "
                                   r"\(Fix: set HYBRIDKIT_DATA to a writable directory", _one_error_line(err))


@pytest.mark.parametrize("name, content, pattern", [
    ("missing.yaml", None, r"FileNotFoundError: .*missing\.yaml"),
    ("folder.yaml", "dir", r"Expected a YAML file at .*folder\.yaml, found a directory"),
    ("empty.yaml", "", r"no YAML document"),
    ("typo.yaml", "hybrid: {warmup_epoch: 3}\n", r"did you mean 'warmup_epochs'"),
])
def test_a_bad_config_file_is_one_line_and_exit_2(env, capsys, name, content, pattern):
    path = env / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    code, _, err = _main(["run", path], capsys)
    assert code == 2 and re.search(pattern, _one_error_line(err))


@pytest.mark.slow
def test_errors_found_mid_run_are_one_line_too(env, capsys, monkeypatch):
    """A damaged checkpoint, a stale run directory, a full disk: exit 2, the fix named."""
    run = env / "run"
    code, out, err = _main(["run", env / "tiny.yaml", "--out", run], capsys)
    assert code == 0, err
    assert "results in" in out and "summary.md" in out
    (run / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes()[:500])
    code, _, err = _main(["run", env / "tiny.yaml", "--out", run], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith("error: CheckpointError: ") and "--fresh" in line and "--out" in line
    code, _, err = _main(["run", env / "tiny.yaml", "--out", run, "--set", "data.noise=0.1"], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith("error: StaleRunError: ") and "data.noise: 0.0 -> 0.1" in line

    usage = shutil.disk_usage(env)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: type(usage)(usage.total, usage.total - 1000, 1000))
    code, _, err = _main(["run", env / "tiny.yaml", "--out", env / "full", "--set", "data.seed=7"], capsys)
    line = _one_error_line(err)
    assert code == 2 and line.startswith("error: DiskFullError: Disk full writing ") and "HYBRIDKIT_DATA" in line
    assert not (env / "full").exists()


@pytest.mark.parametrize("bug", ["ZeroDivisionError", "numpy ValueError"])
def test_a_bug_keeps_its_traceback_and_says_it_is_one(env, capsys, monkeypatch, bug):
    """A ZeroDivisionError, or a ValueError that numpy (not a hybridkit check) raised: exit 1."""
    import hybridkit.experiment._modes as modes

    def broken(*a, **k):
        return 1 / 0 if bug == "ZeroDivisionError" else np.zeros(-1)

    monkeypatch.setattr(modes, "prepare_data", broken)
    code, _, err = _main(["run", env / "tiny.yaml", "--out", env / "run"], capsys)
    assert code == 1 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("error: this is a bug in hybridkit, not a problem with your input")


def test_demo_notebooks_and_evidence_refuse_bad_paths_and_options(env, capsys):
    cases = [
        (["demo", "--config", env / "missing.yaml"], r"FileNotFoundError: .*missing\.yaml"),
        (["demo", "--out", env / "afile"], r"--out .*afile is a file"),
        (["notebooks", "--out", env / "afile", "01"], r"--out .*afile is a file"),
        (["notebooks", "--timeout", "0", "01"], r"--timeout >= 1"),
        (["evidence", "--out", env / "afile"], r"The run directory .*afile is a file"),
        (["evidence", "--out", env / "ev", "--table", env], r"--table names the directory"),
        (["evidence", "--out", env / "ev", "--set", "data.seed=-1"], r"data\.seed as an integer >= 0"),
    ]
    (env / "bad_data.yaml").write_text("data: {num_frames: 0}\n")
    cases.append((["demo", "--config", env / "bad_data.yaml", "--out", env / "ds"], r"num_frames"))
    for args, pattern in cases:
        code, _, err = _main(args, capsys)
        assert code == 2 and re.search(pattern, _one_error_line(err)), (args, err)
    assert not (env / "ev").exists() and not (env / "ds").exists()


def test_fold_warnings_shows_the_first_and_counts_the_rest():
    import warnings

    from hybridkit._console import fold_warnings

    shown = []
    with fold_warnings(shown.append):
        for cycle in range(5):
            warnings.warn(f"fit of cycle {cycle} did not converge", UserWarning)  # one place, new text
        warnings.warn("another place", RuntimeWarning)
    assert shown[0] == "warning: UserWarning: fit of cycle 0 did not converge"
    assert shown[1] == "warning: RuntimeWarning: another place"
    assert len(shown) == 3 and re.fullmatch(r"warning: UserWarning repeated 4 more time\(s\) \(5 in all, from "
                                            r"test_cli\.py:\d+\); the first is shown above", shown[2])


@pytest.mark.slow
def test_run_on_a_terminal_shows_progress_and_folds_one_fit_warning_per_cycle(env):
    """Through a pseudo-terminal of 120 columns: a bar over the cycles ending at 3/3, and the fits
    that run out of iterations (one FitWarning per cycle) shown once, then counted."""
    config = {**TINY, "cycles": 3, "hybrid": {**TINY["hybrid"], "interaction_region": "all"},
              "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3,
                                                                             "max_iterations": 1}}}
    path = env / "warn.yaml"
    path.write_text(yaml.safe_dump(config))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "hybridkit", "run", str(path), "--out", str(env / "run")],
                            stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "OMP_NUM_THREADS": "1"})
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=60)[0].decode()
    os.close(master)
    err = b"".join(chunks).decode(errors="replace").replace("\r", "\n")
    assert proc.returncode == 0, err[-3000:]
    assert re.search(r"\[hybrid\] cycles: 100%.* 3/3", err), err[-3000:]
    assert err.count("warning: FitWarning: Physical fit not_converged") == 1, err[-3000:]
    folded = re.search(r"warning: FitWarning repeated (\d+) more time\(s\) \((\d+) in all", err)
    assert folded and int(folded.group(2)) == int(folded.group(1)) + 1 >= 3, err[-3000:]
    assert "results in" in out
