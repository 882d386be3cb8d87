"""Untrusted files: nothing hybridkit loads can run code, and config paths stay where they belong.

Every crafted file here carries a payload that, if it ran, would create a marker file; each test
checks the refusal *and* that the marker does not exist. One test first shows that the payload is
real (plain ``pickle.load`` does create the marker).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit._expr import ExpressionError, evaluate
from hybridkit.experiment import experiment_config, load_config, run_experiment
from hybridkit.models import ConvNet
from hybridkit.physics import Burgers
from hybridkit.training import CheckpointError, HybridConfig, HybridTrainer, PhysicalTrainer, SyntheticTrainer

torch.set_num_threads(1)


class Payload:
    """Unpickling this calls ``open(marker, "w")``: harmless, but visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _net():
    torch.manual_seed(0)
    return ConvNet({"in_channels": 1, "out_channels": 1, "ndim": 1, "width": 4, "depth": 1})


def _crafted_checkpoint(path, marker, trainer=None):
    """A real checkpoint (SyntheticTrainer by default) with a payload slipped into its state."""
    trainer = trainer or SyntheticTrainer({}, _net())
    path = trainer.save_checkpoint(path)
    doc = torch.load(path, weights_only=True)
    doc["state"]["note"] = [Payload(marker)]
    with open(path, "wb") as fh:
        torch.save(doc, fh)
    return path


def test_the_payload_is_real(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))  # what an unguarded loader would do
    assert marker.exists()


def test_crafted_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = _crafted_checkpoint(tmp_path / "synthetic.pt", marker)
    trainer = SyntheticTrainer({}, _net())
    with pytest.raises(CheckpointError, match=r"Refused to load .*synthetic\.pt: it holds Python objects other "
                                              r"than tensors and plain data.*GLOBAL io\.open"):
        trainer.load_checkpoint(path)
    assert not marker.exists()
    assert trainer.epoch == 0


def test_crafted_checkpoint_inside_a_hybrid_run_is_refused(tmp_path):
    """Resuming a hybrid run whose checkpoint was tampered with: refused, nothing half-loaded."""
    marker = tmp_path / "pwned"
    model = Burgers(GridSpec((16,), (100.0,)), dt=0.2)

    def hybrid():
        return HybridTrainer(HybridConfig(), SyntheticTrainer({}, _net()),
                             PhysicalTrainer({"num_predict_steps": 2}, model, 1.0))

    path = _crafted_checkpoint(tmp_path / "hybrid.pt", marker, hybrid())
    resumed = hybrid()
    with pytest.raises(CheckpointError, match="Refused to load"):
        resumed.load_checkpoint(path)
    assert not marker.exists() and resumed.cycle == 0 and resumed.physical.params["viscosity"] == 1.0


def test_crafted_checkpoint_in_a_run_directory_stops_the_rerun(tmp_path, monkeypatch):
    """`python -m hybridkit run` resumes from run_dir/synthetic.pt: a planted file is refused."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    marker = tmp_path / "pwned"
    cfg = experiment_config({
        "mode": "synthetic",
        "data": {"pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
                 "num_train": 1, "num_test": 1, "num_frames": 4},
        "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 1},
        "evaluate": {"steps": 2},
    })
    run = tmp_path / "run"
    run.mkdir()
    # a checkpoint of the right architecture (ConvNet, 1 channel, periodic) carrying the payload
    _crafted_checkpoint(run / "checkpoint.pt", marker)
    with pytest.raises(CheckpointError, match="Refused to load"):
        run_experiment(cfg, run, progress=False, log=lambda m: None)
    assert not marker.exists()


def test_parameter_file_with_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "params.npz"
    np.savez(path, viscosity=np.array([Payload(marker)], dtype=object))
    trainer = PhysicalTrainer({}, Burgers(GridSpec((16,), (100.0,))), 1.0)
    with pytest.raises(ValueError, match=r"cannot be read as one .*allow_pickle"):
        trainer.load_params(path)
    assert not marker.exists() and trainer.params["viscosity"] == 1.0


def test_yaml_config_cannot_build_objects(tmp_path):
    marker = tmp_path / "pwned"
    for text in (f"name: !!python/object/apply:builtins.open ['{marker}', 'w']\n",
                 f"name: !!python/object/new:builtins.open ['{marker}', 'w']\n"):
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(path)
    ok = tmp_path / "ok.yaml"
    ok.write_text("{}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):  # --set values are parsed the same way
        load_config(ok, [f"name=!!python/object/apply:builtins.open ['{marker}', 'w']"])
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "__import__('builtins').open('{m}', 'w')",
    "open('{m}', 'w')",
    "x.__class__.__bases__[0].__subclasses__()",
    "(lambda: open('{m}', 'w'))()",
    "[c for c in ()]",
    "sin.__globals__",
])
def test_expressions_cannot_call_anything_but_math(tmp_path, text):
    marker = tmp_path / "pwned"
    with pytest.raises(ExpressionError):
        evaluate(text.format(m=marker), {"x": np.ones(3)})
    assert not marker.exists()


def test_expressions_cannot_hang(tmp_path):
    """A power tower of integers would take hours as Python ints; numbers are floats."""
    import time

    t0 = time.perf_counter()
    assert evaluate("(((((9**64)**64)**64)**64)**64)**64") == np.inf
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ExpressionError, match="Exponent too large"):
        evaluate("9**9**9")


@pytest.mark.parametrize("name", ["../outside", "/tmp/abs", "..", "a/b", "a\\b", ""])
def test_run_name_cannot_leave_the_runs_folder(name):
    with pytest.raises(ConfigError, match="plain folder name"):
        experiment_config({"name": name})


@pytest.mark.parametrize("envelope", [
    {"format": "hybridkit.checkpoint", "version": 1, "kind": "SyntheticTrainer", "state": {}},
    {"format": "hybridkit.checkpoint", "version": 99, "kind": "HybridTrainer", "state": {}},
    {"format": "hybridkit.checkpoint", "version": 1, "kind": "HybridTrainer", "state": {"cycle": 1}},
    {"format": "hybridkit.checkpoint", "version": 1, "kind": "HybridTrainer", "state": []},
    {"format": "something else", "state": {}},
])
def test_foreign_or_forged_checkpoint_is_refused_and_nothing_loads(tmp_path, envelope):
    """A checkpoint that is another trainer's, another version's, lacks parts or is forged is refused
    with CheckpointError, and the trainer keeps its state."""
    path = tmp_path / "hybrid.pt"
    torch.save(envelope, path)
    model = Burgers(GridSpec((16,), (100.0,)))
    hybrid = HybridTrainer(HybridConfig(), SyntheticTrainer({}, _net()),
                           PhysicalTrainer({"num_predict_steps": 2}, model, 1.0))
    with pytest.raises(CheckpointError, match="Fix:"):
        hybrid.load_checkpoint(path)
    assert hybrid.cycle == 0 and hybrid.physical.params["viscosity"] == 1.0


def test_no_module_loads_with_pickle_or_evaluates_strings():
    """Static guard over the package's source: no eval/exec, no pickle.load(s), no yaml.load /
    unsafe_load, every torch.load with weights_only=True, no np.load with allow_pickle=True."""
    import ast
    from pathlib import Path

    import hybridkit

    bad = []
    for path in Path(hybridkit.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f, kw = node.func, {k.arg: k.value for k in node.keywords}
            name = f.id if isinstance(f, ast.Name) else ""
            dotted = f"{f.value.id}.{f.attr}" if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            unsafe = (name in ("eval", "exec", "compile", "__import__")
                      or dotted in ("pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "marshal.loads")
                      or (dotted == "torch.load" and getattr(kw.get("weights_only"), "value", None) is not True)
                      or (dotted == "np.load" and getattr(kw.get("allow_pickle"), "value", False) is not False))
            if unsafe:
                bad.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, bad
