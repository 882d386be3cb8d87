"""Bad input at every public entry point: the exact error type and a message that says what was
expected, what was given, and the fix.

One table, one row per bad input: ``(id, call, error type, message pattern)``. ``call`` takes the
module's fixture (a small dataset, a model, a trained checkpoint) and must raise exactly
``error type`` (not a subclass, not a parent) with a message matching the pattern.
"""
from __future__ import annotations

import re
import shutil
import warnings
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit._expr import ExpressionError, evaluate
from hybridkit.data import (DataManager, DatasetConfig, DatasetFormatError, HybridDataset, ObservationMask,
                            generate_dataset, make_loader, spatial_mask, temporal_mask, write_trajectories)
from hybridkit.experiment import experiment_config, load_config
from hybridkit.experiment._run import build_physical_model
from hybridkit.models import ConvNet, ModelRegistry, UNet
from hybridkit.physics import Burgers, StabilityError, learnable
from hybridkit.training import (CheckpointError, DivergenceError, HybridConfig, HybridTrainer, PhysicalTrainer,
                                SyntheticTrainer)

torch.set_num_threads(1)
N, SIMS, FRAMES = 16, 3, 6


def _net(**kw):
    torch.manual_seed(0)
    return ConvNet({"in_channels": 1, "out_channels": 1, "ndim": 1, "width": 4, "depth": 1, **kw})


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """What the rows act on: a valid dataset, copies of it damaged in different ways, a checkpoint."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    model = Burgers(GridSpec((N,), (100.0,)), dt=0.2, viscosity=0.5)
    data = generate_dataset(model, tmp / "data.h5", num_sims=SIMS, num_frames=FRAMES, progress=False)
    raw = data.read_bytes()

    def damaged(name, edit):
        p = tmp / name
        shutil.copy(data, p)
        with h5py.File(p, "a") as f:
            edit(f)
        return p

    def set_field(f, arr):
        del f["fields/velocity"]
        f["fields/velocity"] = arr

    (tmp / "half.h5").write_bytes(raw[: len(raw) // 2])
    # overwrite the stored trajectories (not the header): the chunks' checksums no longer match
    with h5py.File(data) as f:
        offset = f["fields/velocity"].id.get_chunk_info(0).byte_offset
    scribbled = bytearray(raw)
    scribbled[offset:offset + 64] = bytes(range(64))
    (tmp / "scribbled.h5").write_bytes(bytes(scribbled))
    (tmp / "notes.txt").write_text("not an HDF5 file")
    with h5py.File(tmp / "foreign.h5", "w") as f:
        f["x"] = np.zeros(3)
    trainer = SyntheticTrainer({}, _net())
    ckpt = trainer.save_checkpoint(tmp / "convnet.pt")
    blob = ckpt.read_bytes()
    (tmp / "half.pt").write_bytes(blob[: len(blob) // 2])
    (tmp / "params.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp / "checkpoints").mkdir()
    (tmp / "checkpoints" / "latest.json").write_text('{"format": "hybridkit.HybridTrainer/1", "path": "cy')
    (tmp / "config.yaml").write_text("data: {num_train: [1, 2\n")
    (tmp / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp / "code.yaml").write_text("name: !!python/object/apply:os.getcwd []\n")
    return SimpleNamespace(
        tmp=tmp, model=model, data=data, ckpt=ckpt,
        wrong_shape=damaged("wrong_shape.h5", lambda f: set_field(f, np.zeros((SIMS, FRAMES, 8), np.float32))),
        nan=damaged("nan.h5", lambda f: f["fields/velocity"].__setitem__((1, 3, 5), np.nan)),
        no_params=damaged("no_params.h5", lambda f: f.__delitem__("params/viscosity")),
    )


def _x(b=4):
    torch.manual_seed(1)
    return torch.randn(b, 1, N)


def _with_nan(t):
    t = t.clone()
    t.view(-1)[3] = float("nan")
    return t


def _fields(ctx, steps=2):
    return HybridDataset(DataManager(ctx.data), [0], num_predict_steps=steps, return_fields=True)[0]


def _nan_targets(ctx):
    init, tgt = _fields(ctx)
    return init, {k: v.with_values(v.values * float("nan")) for k, v in tgt.items()}


def _diverge(ctx):
    x = _x()
    y = (x + 0.1 * x.roll(1, -1))[:, None]
    SyntheticTrainer({"learning_rate": 1e30}, _net()).train([(x, y), (x, y)], 1, progress=False)


def _hybrid(ctx):
    syn = SyntheticTrainer({}, _net())
    phys = PhysicalTrainer({"num_predict_steps": 2}, ctx.model, 1.0)
    return HybridTrainer(HybridConfig(), syn, phys, cache=None)


# (id, call, exact error type, message pattern)
CASES = [
    # ------------------------------------------------------------ generating data
    ("generate: no simulations", lambda c: generate_dataset(c.model, c.tmp / "g0.h5", num_sims=0, num_frames=3),
     ValueError, r"Expected an integer num_sims >= 1, got num_sims=0"),
    ("generate: existing file", lambda c: generate_dataset(c.model, c.data, num_sims=1, num_frames=3),
     FileExistsError, r"exists\. Fix: pass overwrite=True"),
    ("generate: a directory as the path", lambda c: generate_dataset(c.model, c.tmp, num_sims=1, num_frames=3,
                                                                    overwrite=True),
     IsADirectoryError, r"Expected a file path .* got the directory"),
    ("generate: unknown parameter", lambda c: generate_dataset(c.model, c.tmp / "g1.h5", num_sims=2, num_frames=3,
                                                              params={"viscocity": 0.3}),
     KeyError, r"Unknown parameter\(s\) \['viscocity'\] for Burgers; expected some of \['viscosity'\]"),
    ("generate: parameter of the wrong shape", lambda c: generate_dataset(
        c.model, c.tmp / "g2.h5", num_sims=2, num_frames=3, params={"viscosity": [0.1, 0.2, 0.3]}),
     ValueError, r"shape \(2,\) \(one per simulation\) or \(\) \(shared\), got \(3,\)"),
    ("generate: NaN parameter", lambda c: generate_dataset(c.model, c.tmp / "g3.h5", num_sims=2, num_frames=3,
                                                          params={"viscosity": [0.1, np.nan]}),
     ValueError, r"Expected finite values of 'viscosity' \(per simulation\), got NaN or inf"),
    ("generate: negative viscosity", lambda c: generate_dataset(c.model, c.tmp / "g4.h5", num_sims=2, num_frames=3,
                                                               params={"viscosity": [0.1, -0.2]}),
     ValueError, r"'viscosity' \(per simulation\) >= 0 .* got a minimum of -0\.2\. .*ill-posed"),
    ("generate: dt beyond the stability limit", lambda c: generate_dataset(
        Burgers(GridSpec((N,), (100.0,)), dt=50.0, viscosity=5.0), c.tmp / "g5.h5", num_sims=1, num_frames=3),
     StabilityError, r"dt=50 exceeds the explicit stability limit .* Fix: increase substeps to at least \d+"),
    ("write_trajectories: NaN", lambda c: write_trajectories(
        c.model, c.tmp / "w0.h5", {"velocity": np.full((1, 2, N), np.nan)}),
     ValueError, r"Expected finite values in 'velocity', got NaN or inf"),
    ("write_trajectories: wrong grid", lambda c: write_trajectories(
        c.model, c.tmp / "w1.h5", {"velocity": np.zeros((1, 2, 8))}),
     ValueError, r"Expected 'velocity' of shape \(1, 2, 16\) \(sims, time, \*space\[, vector\]\), got \(1, 2, 8\)"),
    # ------------------------------------------------------------ reading files
    ("DataManager: no file", lambda c: DataManager(c.tmp / "missing.h5"),
     FileNotFoundError, r"found nothing at .*missing\.h5\. Fix: create it with hybridkit\.data\.generate_dataset"),
    ("DataManager: not HDF5", lambda c: DataManager(c.tmp / "notes.txt"),
     DatasetFormatError, r"cannot be opened as HDF5 .*file signature not found.* Fix: regenerate it"),
    ("DataManager: HDF5 but not a hybridkit dataset", lambda c: DataManager(c.tmp / "foreign.h5"),
     DatasetFormatError, r"format='hybridkit-dataset'\), got format=None .* Fix: create the file with"),
    ("DataManager: truncated to half its bytes", lambda c: DataManager(c.tmp / "half.h5"),
     DatasetFormatError, r"cannot be opened as HDF5 \(.*truncated file"),
    ("DataManager: stored bytes overwritten", lambda c: DataManager(c.tmp / "scribbled.h5").load(0, "velocity"),
     DatasetFormatError, r"Cannot read simulation 0 of 'velocity' .* the file is damaged"),
    ("DataManager: array shape differs from the attributes", lambda c: DataManager(c.wrong_shape),
     DatasetFormatError, r"Expected /fields/velocity of shape \(3, 6 or 1, 16\) .* got \(3, 6, 8\)"),
    ("DataManager: announced parameter missing", lambda c: DataManager(c.no_params),
     DatasetFormatError, r"Expected /params/viscosity \(scalar\) of shape \(3,\) .* got nothing"),
    ("DataManager: NaN in the file", lambda c: DataManager(c.nan).load(1, "velocity"),
     DatasetFormatError, r"got NaN or inf in 'velocity' of simulation 1 at frame\(s\) \[3\]"),
    ("DataManager.load: unknown field", lambda c: DataManager(c.data).load(0, "pressure"),
     KeyError, r"Unknown field 'pressure'; the dataset has \['velocity'\]"),
    ("DataManager.load: window past the end", lambda c: DataManager(c.data).load(0, "velocity", 4, 9),
     IndexError, r"Expected 0 <= start < stop <= 6 frames of 'velocity', got start=4, stop=9"),
    # ------------------------------------------------------------ windows
    ("HybridDataset: unknown field", lambda c: HybridDataset(DataManager(c.data), [0], ["velocity", "vorticity"]),
     KeyError, r"Unknown field\(s\) \['vorticity'\]\. The dataset has fields \['velocity'\].* Fix"),
    ("HybridDataset: num_predict_steps = 0", lambda c: HybridDataset(DataManager(c.data), [0], num_predict_steps=0),
     ValueError, r"Expected num_predict_steps >= 1 \(an integer\), got 0"),
    ("HybridDataset: num_predict_steps = inf", lambda c: HybridDataset(DataManager(c.data), [0],
                                                                      num_predict_steps=float("inf")),
     ValueError, r"Expected num_predict_steps >= 1 \(an integer\), got inf"),
    ("HybridDataset: window longer than the trajectories", lambda c: HybridDataset(DataManager(c.data), [0],
                                                                                  num_predict_steps=6),
     ValueError, r"num_predict_steps \+ 1 = 7 frames to fit into num_frames=6.* Fix: lower num_predict_steps "
                 r"to at most 5"),
    ("HybridDataset: simulation index out of range", lambda c: HybridDataset(DataManager(c.data), [0, 3]),
     IndexError, r"Expected simulation indices in 0\.\.2, got \[0, 3\].* Fix: use indices below 3"),
    ("HybridDataset: field names as one string", lambda c: HybridDataset(DataManager(c.data), [0], "velocity"),
     TypeError, r"got the string 'velocity'\. Fix: \['velocity'\]"),
    ("make_loader: batch_size 0", lambda c: make_loader(HybridDataset(DataManager(c.data), [0]), batch_size=0),
     ValueError, r"Expected batch_size >= 1, got 0"),
    # ------------------------------------------------------------ observations
    ("ObservationMask: observes nothing", lambda c: ObservationMask(spatial=np.zeros(N, bool)),
     ValueError, r"The spatial mask observes nothing \(all False\)\. Fix: mark at least one cell"),
    ("spatial_mask: region without a cell", lambda c: spatial_mask(c.model.grid, region=[(200, 300)]),
     ValueError, r"The region \[\(200, 300\)\] contains no cell centre"),
    ("temporal_mask: no frame", lambda c: temporal_mask(3, frames=[]),
     ValueError, r"The temporal mask observes no frame of 3"),
    ("mask of another grid", lambda c: PhysicalTrainer(
        {"num_predict_steps": 2}, c.model, 1.0, observation=ObservationMask(spatial=np.ones(8, bool))).fit_items(
        [_fields(c)]),
     ValueError, r"Expected a spatial mask of shape \(16,\), got \(8,\)"),
    # ------------------------------------------------------------ physics and models
    ("Burgers: negative viscosity", lambda c: Burgers(c.model.grid, viscosity=-0.1),
     ValueError, r"Expected 'viscosity' of Burgers >= 0 .* got a minimum of -0\.1\. .* Fix: pass values in"),
    ("Burgers: NaN viscosity field", lambda c: Burgers(c.model.grid, viscosity=np.full(N, np.nan)),
     ValueError, r"Expected finite values of 'viscosity' of Burgers, got NaN or inf"),
    ("Burgers: infinite dt", lambda c: Burgers(c.model.grid, dt=float("inf")),
     ValueError, r"Expected a finite dt > 0, got dt=inf"),
    ("rollout beyond the stability limit", lambda c: Burgers(c.model.grid, dt=50.0, viscosity=5.0).rollout(
        c.model.random_state(1, 0), 2),
     StabilityError, r"exceeds the explicit stability limit .* Fix: increase substeps to at least \d+ or reduce dt"),
    ("GridSpec: too few cells", lambda c: GridSpec((2,), (1.0,)),
     ValueError, r"at least 4 cells each, got resolution=\(2,\)\. Fix: pass e\.g\. resolution=\(64,\)"),
    ("GridSpec: infinite domain", lambda c: GridSpec((8,), (float("inf"),)),
     ValueError, r"positive, finite domain size per axis \(1\), got domain_size=\(inf,\)"),
    ("learnable: initial guess outside the valid range", lambda c: PhysicalTrainer(
        {}, c.model, [learnable("viscosity", 100.0)]),
     ValueError, r"initial value of 'viscosity' inside its bounds \(0\.0001, 10\.0\), got values in \[100, 100\]"),
    ("learnable: unknown parameter", lambda c: PhysicalTrainer({}, c.model, [learnable("viscocity", 1.0)]),
     KeyError, r"Unknown parameter 'viscocity'; Burgers has \['viscosity'\]"),
    ("ModelRegistry: unknown network", lambda c: ModelRegistry.get_synthetic_model("Unet", {}),
     ConfigError, r"Unknown synthetic model 'Unet'\. Did you mean 'UNet'\?"),
    ("ModelRegistry: unknown option", lambda c: ModelRegistry.get_synthetic_model(
        "UNet", {"in_channels": 1, "out_channels": 1, "featurs": 8}),
     ConfigError, r"Unknown key\(s\) in UNet config: 'featurs' \(did you mean 'features'\?\)"),
    ("ModelRegistry: unknown PDE option", lambda c: ModelRegistry.get_physical_model(
        "Burgers", {"resolution": [16], "domain_size": [1.0], "visc": 0.1}),
     ConfigError, r"Unknown key\(s\) \['visc'\] for Burgers .* Known keys"),
    ("network: input of the wrong shape", lambda c: _net()(torch.zeros(1, N)),
     ValueError, r"ConvNet expects input \(batch, 1, x\), got \(1, 16\)\. Fix: add a batch axis"),
    # ------------------------------------------------------------ synthetic trainer
    ("SyntheticTrainer: unknown config key", lambda c: SyntheticTrainer({"learning_rat": 1e-3}, _net()),
     ConfigError, r"'learning_rat' \(did you mean 'learning_rate'\?\)"),
    ("SyntheticTrainer: num_predict_steps = 0", lambda c: SyntheticTrainer({"num_predict_steps": 0}, _net()),
     ConfigError, r"Expected an integer num_predict_steps >= 1, got 0"),
    ("SyntheticTrainer: num_predict_steps = 1.5", lambda c: SyntheticTrainer({"num_predict_steps": 1.5}, _net()),
     ConfigError, r"Expected 'num_predict_steps' in trainer_params to be an integer .* got 1\.5 .*Fix: write a whole"),
    ("SyntheticTrainer: unknown on_nan", lambda c: SyntheticTrainer({"on_nan": "ignore"}, _net()),
     ConfigError, r"Expected on_nan in \('raise', 'rollback'\), got 'ignore'"),
    ("SyntheticTrainer: NaN in the targets", lambda c: SyntheticTrainer({}, _net()).train(
        [(_x(), _x()[:, None]), (_x(), _with_nan(_x()[:, None]))], 1, progress=False),
     ValueError, r"Expected finite data, got NaN or inf in batch\(es\) \[1\] of epoch 1"),
    ("SyntheticTrainer: NaN weights", lambda c: SyntheticTrainer({}, _net()).train(
        [(_x(), _x()[:, None], torch.tensor([1.0, float("nan"), 1.0, 1.0]))], 1, progress=False),
     ValueError, r"all >= 0 and not NaN, got \(4,\)"),
    ("SyntheticTrainer: targets of the wrong shape", lambda c: SyntheticTrainer({}, _net()).train(
        [(_x(), _x())], 1, progress=False),
     ValueError, r"Expected initial \(B, C_in, \*space\) and targets \(B, T, C_dyn <= C_in, \*space\), got "
                 r"\(4, 1, 16\) and \(4, 1, 16\)"),
    ("SyntheticTrainer: a dataset instead of batches", lambda c: SyntheticTrainer({}, _net()).train(
        HybridDataset(DataManager(c.data), [0]), 1, progress=False),
     TypeError, r"got the dataset HybridDataset itself\. Fix: wrap it"),
    ("SyntheticTrainer: diverging loss", _diverge,
     DivergenceError, r"The loss of epoch 1 is not finite .*lr=1e\+30.* Fix: lower learning_rate"),
    ("train: num_epochs = 0", lambda c: SyntheticTrainer({}, _net()).train([(_x(), _x()[:, None])], 0),
     ValueError, r"Expected num_epochs >= 1, got 0"),
    ("checkpoint of another model", lambda c: SyntheticTrainer({}, UNet(
        {"in_channels": 1, "out_channels": 1, "ndim": 1, "features": 4, "levels": 1})).load_checkpoint(c.ckpt),
     CheckpointError, r"holds a ConvNet .* this trainer's model is a UNet .* Fix: build the model with"),
    ("checkpoint of another width", lambda c: SyntheticTrainer({}, _net(width=8)).load_checkpoint(c.ckpt),
     CheckpointError, r"holds a ConvNet .*'width': 4.* this trainer's model is a ConvNet .*'width': 8"),
    ("checkpoint truncated", lambda c: SyntheticTrainer({}, _net()).load_checkpoint(c.tmp / "half.pt"),
     CheckpointError, r"cannot be read .* damaged \(e\.g\. truncated\).* Fix: use the previous checkpoint"),
    ("checkpoint that is a text file", lambda c: SyntheticTrainer({}, _net()).load_checkpoint(c.tmp / "notes.txt"),
     CheckpointError, r"Expected a checkpoint written by SyntheticTrainer\.save_checkpoint"),
    ("checkpoint missing", lambda c: SyntheticTrainer({}, _net()).load_checkpoint(c.tmp / "none.pt"),
     FileNotFoundError, r"No such file or directory"),
    # ------------------------------------------------------------ physical and hybrid trainers
    ("PhysicalTrainer: NaN targets", lambda c: PhysicalTrainer({"num_predict_steps": 2}, c.model, 1.0).fit_items(
        [_nan_targets(c)]),
     ValueError, r"Expected finite data, got NaN or inf in the targets of \['velocity'\]"),
    ("PhysicalTrainer: num_predict_steps = 0", lambda c: PhysicalTrainer({"num_predict_steps": 0}, c.model, 1.0),
     ConfigError, r"num_predict_steps must be an integer >= 1, got 0"),
    ("PhysicalTrainer: targets of another length", lambda c: PhysicalTrainer(
        {"num_predict_steps": 3}, c.model, 1.0).fit_items([_fields(c, steps=2)]),
     ValueError, r"batch dim 'time' of num_predict_steps=3 frames.* Fix: HybridDataset\(\.\.\., num_predict_steps=3\)"),
    ("PhysicalTrainer.load_params: not an npz", lambda c: PhysicalTrainer({}, c.model, 1.0).load_params(
        c.tmp / "params.npz"),
     ValueError, r"Expected a parameter file written by PhysicalTrainer\.save_params, but .* cannot be read"),
    ("HybridTrainer: damaged checkpoint pointer", lambda c: _hybrid(c).load_checkpoint(c.tmp / "checkpoints"),
     CheckpointError, r"Cannot read the checkpoint file .*latest\.json \(JSONDecodeError"),
    # ------------------------------------------------------------ configs and expressions
    ("config: unknown key", lambda c: experiment_config({"hybrid": {"alpha_synth": 1.0}}),
     ConfigError, r"Unknown key\(s\) in hybrid: 'alpha_synth' \(did you mean 'alpha_synthetic'\?\)"),
    ("config: unknown section", lambda c: experiment_config({"dat": {}}),
     ConfigError, r"Unknown key\(s\) in experiment config: 'dat' \(did you mean 'data'\?\)"),
    ("config: unknown mode", lambda c: experiment_config({"mode": "both"}),
     ConfigError, r"Expected mode in \('physical', 'synthetic', 'hybrid', 'compare'\), got 'both'"),
    ("config: infinite count", lambda c: experiment_config({"data": {"num_train": float("inf")}}),
     ConfigError, r"Expected 'num_train' in data to be an integer .* got inf .*Fix: write a finite whole number"),
    ("config: not valid YAML", lambda c: load_config(c.tmp / "config.yaml"),
     ConfigError, r"config\.yaml is not valid YAML"),
    ("config: not UTF-8 text", lambda c: load_config(c.tmp / "latin1.yaml"),
     ConfigError, r"latin1\.yaml is not valid YAML: .*codec can't decode"),
    ("config: a Python object tag", lambda c: load_config(c.tmp / "code.yaml"),
     ConfigError, r"code\.yaml is not valid YAML: could not determine a constructor"),
    ("config: no such file", lambda c: load_config(c.tmp / "nope.yaml"),
     FileNotFoundError, r"No such file or directory"),
    ("config: a run name that leaves runs/", lambda c: experiment_config({"name": "../../elsewhere"}),
     ConfigError, r"Expected name to be a plain folder name .* got '\.\./\.\./elsewhere'\. Fix"),
    ("dataset config: a path as the name", lambda c: DatasetConfig(name="../x"),
     ValueError, r"Expected a plain file stem as name, got '\.\./x'"),
    ("config: unknown PDE", lambda c: build_physical_model(experiment_config({"data": {"pde": "Burger"}})),
     ConfigError, r"Unknown physical model 'Burger'\. Did you mean 'Burgers'\?"),
    ("config: coefficient that overflows", lambda c: build_physical_model(experiment_config({"data": {
        "pde_params": {"resolution": [16], "domain_size": [100.0], "viscosity": "(((9**64)**64)**64)**64"}}})),
     ConfigError, r"Expected finite values of 'viscosity' of Burgers"),
    ("expression: a function that is not allowed", lambda c: evaluate("__import__('os').getcwd()"),
     ExpressionError, r"Not allowed in an expression"),
    ("expression: wrong number of arguments", lambda c: evaluate("where(x)", {"x": np.ones(3)}),
     ExpressionError, r"where\(\) takes 3 argument\(s\), got 1"),
]


def test_the_table_is_large_and_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(ctx, call, error, pattern):
    with pytest.raises(BaseException) as info:
        call(ctx)
    assert type(info.value) is error, f"expected {error.__name__}, got {type(info.value).__name__}: {info.value}"
    # a KeyError's str() is the repr of its message: match the message itself
    message = str(info.value.args[0]) if isinstance(info.value, KeyError) else str(info.value)
    assert re.search(pattern, message), message


def test_state_is_untouched_after_a_refused_checkpoint(ctx):
    """A checkpoint that does not fit leaves the trainer as it was (all or nothing)."""
    trainer = SyntheticTrainer({}, _net(width=8))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for bad in (ctx.ckpt, ctx.tmp / "half.pt"):
        with pytest.raises(CheckpointError):
            trainer.load_checkpoint(bad)
    assert trainer.epoch == 0 and all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_command_line_reports_a_bad_value_found_mid_run(tmp_path, monkeypatch, capsys):
    """A value only the run discovers (dt beyond the stability limit) is one error line, exit 2."""
    import yaml

    from hybridkit.__main__ import main

    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"pde_params": {"resolution": [16], "domain_size": [100.0],
                                                           "dt": 50.0, "viscosity": 5.0}}}))
    assert main(["run", str(cfg), "--mode", "physical", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: StabilityError: Burgers: dt=50 exceeds") and "Fix:" in err


# --------------------------------------------------------------------------- divergence
def _diverging_batches():
    x = _x()
    y = (x + 0.1 * x.roll(1, -1))[:, None]
    return [(x, y), (x.flip(0), y.flip(0))]


def test_divergence_raises_and_leaves_the_last_good_state():
    """on_nan='raise' (default): the error says so, and the trainer is back at the start of the
    failed epoch (weights, optimizer, epoch counter, history), ready for a checkpoint or a retry."""
    trainer = SyntheticTrainer({"learning_rate": 1e-2}, _net())
    trainer.train(_diverging_batches(), 1, progress=False)
    good = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    moments = {k: v.clone() for k, v in trainer.optimizer.state_dict()["state"][0].items()}
    history = {k: list(v) for k, v in trainer.history.items()}
    for group in trainer.optimizer.param_groups:
        group["lr"] = 1e30
    with pytest.raises(DivergenceError, match=r"epoch 2 is not finite.*back at the start of the epoch"):
        trainer.train(_diverging_batches(), 1, progress=False)
    assert trainer.epoch == 1 and trainer.history == history
    assert all(torch.equal(good[k], v) for k, v in trainer.model.state_dict().items())
    assert all(torch.equal(moments[k], v) for k, v in trainer.optimizer.state_dict()["state"][0].items())


def test_divergence_rolls_back_and_retries_with_a_lower_learning_rate():
    """on_nan='rollback': a warning per rollback, and the result is exactly that of training at the
    lowered learning rate from the start (the failed attempt leaves no trace)."""
    from hybridkit.training import DivergenceWarning

    cfg = {"learning_rate": 1e30, "on_nan": "rollback", "nan_lr_factor": 1e-28, "nan_retries": 2}
    rolled = SyntheticTrainer(cfg, _net())
    with pytest.warns(DivergenceWarning, match=r"Epoch 1: non-finite loss at lr=1e\+30; rolled back .* retrying "
                                               r"with lr=100 \(rollback 1 of 2\)"):
        run = rolled.train(_diverging_batches(), 3, progress=False)
    direct = SyntheticTrainer({"learning_rate": 1e30 * 1e-28}, _net())
    assert run == direct.train(_diverging_batches(), 3, progress=False)
    assert rolled.history == direct.history and rolled.history["lr"] == [1e30 * 1e-28] * 3
    assert all(torch.equal(a, b) for a, b in zip(rolled.model.state_dict().values(), direct.model.state_dict().values()))


def test_rollbacks_give_up_and_data_errors_are_not_retried():
    from hybridkit.training import DivergenceWarning

    cfg = {"learning_rate": 1e30, "on_nan": "rollback", "nan_lr_factor": 0.5, "nan_retries": 2}
    trainer = SyntheticTrainer(cfg, _net())
    with pytest.warns(DivergenceWarning), pytest.raises(DivergenceError, match=r"after 2 rollback\(s\)"):
        trainer.train(_diverging_batches(), 1, progress=False)
    assert trainer.epoch == 0 and trainer.optimizer.param_groups[0]["lr"] == 1e30  # the start of the epoch
    x = _x()
    trainer = SyntheticTrainer({**cfg, "learning_rate": 1e-3}, _net())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rollback warning: NaN data is not divergence
        with pytest.raises(ValueError, match=r"NaN or inf in batch\(es\) \[0\]"):
            trainer.train([(x, _with_nan(x[:, None]))], 1, progress=False)


def test_evaluate_scores_a_diverged_model_as_infinitely_bad():
    """HybridTrainer reverts an update when the loss gets worse; NaN would compare False."""
    net = _net()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    assert SyntheticTrainer({}, net).evaluate(_diverging_batches()) == float("inf")
