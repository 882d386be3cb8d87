"""The experiment runner: configs read as data, every mode through the command line, resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hybridkit._config import ConfigError
from hybridkit.experiment import apply_overrides, experiment_config, load_config

TINY = {
    "name": "tiny",
    "cycles": 1,
    "data": {"pde": "Burgers", "pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2,
                                              "viscosity": 0.5},
             "num_train": 2, "num_test": 2, "num_frames": 6},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 2, "batch_size": 8,
                  "trainer_params": {"num_predict_steps": 1}},
    "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2, "synthetic_trajectories": 2},
    "evaluate": {"steps": 3},
}


def _cli(args, env_data):
    env = {**os.environ, "HYBRIDKIT_DATA": str(env_data)}
    return subprocess.run([sys.executable, "-m", "hybridkit", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_unknown_keys_are_errors_that_list_the_known_ones():
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) in hybrid: 'alpha_synth' \(did you mean 'alpha_synthetic'\?\)"):
        experiment_config({"hybrid": {"alpha_synth": 1.0}})
    with pytest.raises(ConfigError, match="Known keys"):
        experiment_config({"dataa": {}})
    with pytest.raises(ConfigError, match="mode"):
        experiment_config({"mode": "both"})


def test_yaml_is_data_not_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: {num_train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_overrides_are_parsed_as_yaml_values():
    doc = apply_overrides({"hybrid": {"alpha_synthetic": 1.0}}, ["hybrid.alpha_synthetic=0.25", "cycles=4",
                                                                   "data.observed_region=[[0, 50]]"])
    assert doc["hybrid"]["alpha_synthetic"] == 0.25 and doc["cycles"] == 4
    assert doc["data"]["observed_region"] == [[0, 50]]
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["cycles"])


def test_field_coefficients_are_safe_expressions():
    from hybridkit.experiment import build_physical_model

    cfg = experiment_config({"data": {"pde": "Diffusion", "pde_params": {
        "resolution": [8], "domain_size": [100.0], "boundary": "periodic",
        "diffusivity": "0.1 + 0.9 * sin(pi * x / L)**2"}}})
    model = build_physical_model(cfg)
    import numpy as np
    from hybridkit.convert import to_tensor

    x = (np.arange(8) + 0.5) * 12.5
    np.testing.assert_allclose(to_tensor(model.true_params["diffusivity"]).numpy(),
                               0.1 + 0.9 * np.sin(np.pi * x / 100) ** 2, rtol=1e-6)
    cfg = experiment_config({"data": {"pde": "Diffusion", "pde_params": {
        "resolution": [8], "domain_size": [100.0], "diffusivity": "__import__('os')"}}})
    with pytest.raises(ValueError, match="Unknown function '__import__'"):
        build_physical_model(cfg)


@pytest.mark.parametrize("mode", ["physical", "synthetic", "hybrid"])
@pytest.mark.slow
def test_each_mode_runs_from_the_command_line(tmp_path, mode):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    proc = _cli(["run", str(cfg), "--mode", mode, "--out", str(out)], tmp_path / "data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())["modes"][mode]
    if mode != "synthetic":
        assert metrics["param_error"]["viscosity"] < 0.05  # recovered from 1.0 (true 0.5)
    if mode != "physical":
        assert len(metrics["synthetic_rollout_error"]) == 3 and all(e < 1.0 for e in metrics["synthetic_rollout_error"])
    assert (out / "rollout_errors.png").exists()


@pytest.mark.slow
def test_bad_config_on_the_command_line_is_a_clear_error(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "hybrid": {"warmup_epoch": 3}}))
    proc = _cli(["run", str(cfg)], tmp_path / "data")
    assert proc.returncode == 2
    assert "warmup_epoch" in proc.stderr and "did you mean 'warmup_epochs'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "mode": "hybrid"}))
    # uninterrupted: two cycles at once
    full = _cli(["run", str(cfg), "--set", "cycles=2", "--out", str(tmp_path / "full")], tmp_path / "data")
    assert full.returncode == 0, full.stderr[-3000:]
    # interrupted after one cycle, then the same command with two cycles resumes
    first = _cli(["run", str(cfg), "--set", "cycles=1", "--out", str(tmp_path / "split")], tmp_path / "data")
    assert first.returncode == 0, first.stderr[-3000:]
    second = _cli(["run", str(cfg), "--set", "cycles=2", "--out", str(tmp_path / "split")], tmp_path / "data")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "after cycle 1" in second.stdout
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())["modes"]["hybrid"]
    b = json.loads((tmp_path / "split" / "metrics.json").read_text())["modes"]["hybrid"]
    assert a["synthetic_rollout_error"] == b["synthetic_rollout_error"]
    assert a["params"] == b["params"]
    assert len(b["cycles"]) == 2


def test_comparison_rows_ratio_is_hybrid_over_best_baseline():
    from hybridkit.experiment import summary_table
    from hybridkit.experiment._evidence import evidence_records, evidence_table

    result = {"modes": {
        "physical": {"param_error": {"nu": 0.2}, "physical_rollout_error": [0.1, 0.4]},
        "synthetic": {"synthetic_rollout_error": [0.05, 0.5]},
        "hybrid": {"param_error": {"nu": 0.1}, "synthetic_rollout_error": [0.02, 0.25],
                   "physical_rollout_error": [0.1, 0.8]},
    }}
    table = summary_table(result)
    assert "| nu: relative error | 0.2 | - | 0.1 | 0.50 |" in table
    assert "| network rollout error, step 2 | - | 0.5 | 0.25 | 0.50 |" in table
    assert "| physical rollout error, step 2 | 0.4 | - | 0.8 | 2.00 |" in table
    # the evidence: records per seed, the table of means and spreads with the paired ratio
    other = {"modes": {**result["modes"], "hybrid": {**result["modes"]["hybrid"], "param_error": {"nu": 0.3}}}}
    records = evidence_records("s", 0, result) + evidence_records("s", 1, other)
    assert records[0] == {"scenario": "s", "seed": 0, "metric": "nu: relative error", "physical": 0.2,
                          "synthetic": None, "hybrid": 0.1, "ratio": 0.5}
    table = evidence_table(records, {"s": 3.0})
    assert "| s (3 s) | nu: relative error | 0.2 ± 0 | - | 0.2 ± 0.1 | 1 ± 0.5 | 1 of 2 |" in table
