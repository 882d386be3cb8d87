"""The run directory: it remembers what its checkpoints came from, never reports stale results as
new, leaves nothing behind when a run fails, and holds figures that summary.md embeds."""
from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import matplotlib
import pytest

from hybridkit.experiment import StaleRunError, run_experiment

matplotlib.use("Agg")

BASE = {
    "name": "runner", "mode": "hybrid", "cycles": 1,
    "data": {"pde": "Burgers", "pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
             "num_train": 2, "num_test": 2, "num_frames": 6},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 2, "batch_size": 8,
                  "trainer_params": {"num_predict_steps": 1}},
    "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2, "synthetic_trajectories": 2},
    "evaluate": {"steps": 3},
}


def _with(key: str, value) -> dict:
    cfg = copy.deepcopy(BASE)
    node, parts = cfg, key.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return cfg


def _run(cfg, run_dir, **kw):
    return run_experiment(cfg, run_dir, progress=False, log=kw.pop("log", lambda m: None), **kw)


def _results(result: dict) -> dict:
    """The numbers of a run, without the wall times."""
    return {mode: {k: v for k, v in m.items() if k != "seconds"} for mode, m in result["modes"].items()}


def _files(directory: Path) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One hybrid run (1 cycle) and the data it used, shared by the tests of this module."""
    tmp = tmp_path_factory.mktemp("runner")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYBRIDKIT_DATA", str(tmp / "data"))
        run = tmp / "base"
        result = _run(BASE, run)
        yield {"tmp": tmp, "run": run, "result": result}


@pytest.fixture
def data_env(base, monkeypatch):
    monkeypatch.setenv("HYBRIDKIT_DATA", str(base["tmp"] / "data"))
    return base


# Each top-level section changed in turn. Either the rerun in the base run's directory is refused
# (the key named, the fix --fresh / --out given, nothing touched), or it proceeds and its results
# equal a run of the changed config from scratch.
REFUSED = [
    ("mode", "physical", "holds the checkpoint of a 'hybrid' run"),
    ("data.pde_params.viscosity", 1.0, r"data\.pde_params\.viscosity: 0\.5 -> 1\.0"),  # the example
    ("data.noise", 0.05, r"data\.noise: 0\.0 -> 0\.05"),
    ("data.num_train", 3, r"data\.num_train: 2 -> 3"),
    ("data.seed", 1, r"data\.seed: 0 -> 1"),
    ("synthetic.model_params.width", 6, r"synthetic\.model_params\.width: 4 -> 6"),
    ("synthetic.trainer_params.learning_rate", 2e-3, r"synthetic\.trainer_params\.learning_rate: 0\.001 -> 0\.002"),
    ("physical.initial.viscosity", 2.0, r"physical\.initial\.viscosity: 1\.0 -> 2\.0"),
    ("physical.trainer_params.num_predict_steps", 2, r"physical\.trainer_params\.num_predict_steps: 3 -> 2"),
    ("hybrid.alpha_synthetic", 0.5, r"hybrid\.alpha_synthetic: 1\.0 -> 0\.5"),
    ("hybrid.warmup_epochs", 2, r"hybrid\.warmup_epochs: 1 -> 2"),
    ("cycles", 0, r"holds 1 cycle\(s\), this config asks for 0 \(cycles\).*Fix: set cycles >= 1"),
]
PROCEEDS = [("name", "renamed"), ("description", "another line"), ("cycles", 2), ("evaluate.steps", 2)]


@pytest.mark.parametrize("key, value, pattern", REFUSED, ids=[f"{k}={v}" for k, v, _ in REFUSED])
@pytest.mark.slow
def test_a_rerun_with_a_change_that_changes_results_is_refused(data_env, tmp_path, key, value, pattern):
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    before = _files(run)
    with pytest.raises(StaleRunError, match=pattern) as info:
        _run(_with(key, value), run)
    assert "--fresh" in str(info.value) and "--out" in str(info.value)
    assert _files(run) == before  # nothing touched


@pytest.mark.parametrize("key, value", PROCEEDS, ids=[f"{k}={v}" for k, v in PROCEEDS])
@pytest.mark.slow
def test_a_rerun_that_proceeds_gives_the_results_of_a_run_from_scratch(data_env, tmp_path, key, value):
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    log = []
    resumed = _run(_with(key, value), run, log=log.append)
    assert any("resuming" in line and "after cycle 1" in line for line in log), log
    scratch = data_env["result"] if key in ("name", "description") else _run(_with(key, value), tmp_path / "scratch")
    assert _results(resumed) == _results(scratch)


@pytest.mark.slow
def test_fresh_after_a_refusal_starts_over_says_so_and_equals_a_run_from_scratch(data_env, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    changed = _with("data.pde_params.viscosity", 1.0)
    log = []
    fresh = _run(changed, run, resume=False, log=log.append)
    assert any(line.startswith(f"starting fresh in {run}") and "checkpoint.pt" in line and "metrics.json" in line
               for line in log), log
    assert not any("resuming" in line for line in log)
    assert _results(fresh) == _results(_run(changed, tmp_path / "scratch"))
    assert json.loads((run / "checkpoint.json").read_text())["config"]["data"]["pde_params"]["viscosity"] == 1.0
    _run(changed, run)  # and now the same config resumes


def test_a_checkpoint_without_a_record_or_with_a_damaged_one_is_refused(data_env, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    (run / "checkpoint.json").write_text("{not json")
    with pytest.raises(StaleRunError, match=r"checkpoint\.json .* cannot be read .*Fix: rerun with --fresh"):
        _run(BASE, run)
    (run / "checkpoint.json").unlink()
    with pytest.raises(StaleRunError, match=r"has no record of the config it was made with .*--fresh.*--out"):
        _run(BASE, run)


def test_other_data_bytes_under_the_same_data_config_are_refused(data_env, tmp_path):
    """The record holds the data files' digests: the same data section simulated to other bytes
    (another hybridkit, another HYBRIDKIT_DATA) does not resume."""
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    record = json.loads((run / "checkpoint.json").read_text())
    record["data"] = {name: "0" * 64 for name in record["data"]}
    (run / "checkpoint.json").write_text(json.dumps(record))
    with pytest.raises(StaleRunError, match=r"the data files' contents"):
        _run(BASE, run)


def test_a_failed_run_leaves_no_config_no_record_and_no_directory(data_env, tmp_path):
    """A fit that fails (on_failure=raise, 1 iteration) after the record was written: the run
    directory it created is gone; in an existing directory the old checkpoint and record stay."""
    failing = _with("physical.trainer_params", {"num_predict_steps": 3, "max_iterations": 1, "on_failure": "raise"})
    failing["mode"] = "physical"
    with pytest.raises(Exception, match="Physical fit not_converged"):
        _run(failing, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    run = tmp_path / "run"
    shutil.copytree(data_env["run"], run)
    (run / "physical").mkdir()
    compare = {**failing, "mode": "compare"}
    with pytest.raises(Exception, match="Physical fit not_converged"):
        _run(compare, run)
    assert not (run / "physical" / "checkpoint.json").exists() and not (run / "physical" / "checkpoint.pt").exists()
    assert (run / "checkpoint.pt").exists() and (run / "checkpoint.json").exists()  # the hybrid run's, untouched


@pytest.mark.slow
def test_a_run_directory_holds_the_figures_and_summary_md_links_them(data_env, tmp_path, monkeypatch):
    """A comparison: every figure is there, is a PNG, and is embedded in summary.md; the rollout
    errors have one labelled curve per model and run on a log axis."""
    import hybridkit.viz as viz

    made = {}
    plot = viz.plot_rollout_errors

    def spy(curves, **kw):
        made["labels"], made["fig"] = list(curves), plot(curves, **kw)
        return made["fig"]

    monkeypatch.setattr(viz, "plot_rollout_errors", spy)
    run = tmp_path / "run"
    _run({**_with("cycles", 2), "mode": "compare"}, run)
    figures = sorted(p.name for p in run.glob("*.png"))
    assert figures == ["cycles.png", "fits.png", "losses.png", "param_viscosity.png", "rollout_errors.png"]
    assert all((run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    summary = (run / "summary.md").read_text()
    linked = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", summary)
    assert sorted(linked) == figures
    assert "| metric | physical only | synthetic only | hybrid | hybrid / best baseline |" in summary
    assert "[config.json](config.json)" in summary and (run / "config.json").exists()
    assert made["labels"] == ["physical model (physical-only run)", "network (synthetic-only run)",
                              "network (hybrid run)", "physical model (hybrid run)"]
    ax = made["fig"].axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text().split(" (0 at")[0] for t in ax.get_legend().get_texts()] == made["labels"]
    metrics = json.loads((run / "metrics.json").read_text())["modes"]
    assert len(metrics["hybrid"]["cycles"]) == 2 and metrics["physical"]["fits"][0]["loss_history"][0] == 1.0


def test_every_mode_writes_a_summary_with_its_figures(data_env, tmp_path):
    run = tmp_path / "run"
    _run({**BASE, "mode": "synthetic"}, run)
    summary = (run / "summary.md").read_text()
    assert re.findall(r"!\[[^\]]+\]\(([^)]+)\)", summary) == ["losses.png", "rollout_errors.png"]
    assert "| network rollout error, step 3 |" in summary
