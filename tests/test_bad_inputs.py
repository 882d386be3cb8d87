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
from hybridkit.data import (DataManager, DatasetConfig, DatasetFormatError, HybridDataset, ObservationMask, ensure_dataset,
                            generate_dataset, make_loader, spatial_mask, temporal_mask, write_trajectories)
from hybridkit.experiment import experiment_config, load_config
from hybridkit.experiment import build_physical_model
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
        Burgers(GridSpec((N,), (100.0,)), dt=50.0, viscosity=5.0, substeps=1), c.tmp / "g5.h5", num_sims=1,
        num_frames=3),
     StabilityError, r"dt=50 exceeds the explicit stability limit .* Fix: increase substeps to at least \d+"),
    ("generate: dt beyond what automatic substeps allow", lambda c: generate_dataset(
        Burgers(GridSpec((N,), (100.0,)), dt=5000.0, viscosity=5.0), c.tmp / "g6.h5", num_sims=1, num_frames=3),
     StabilityError, r"exceeds the explicit stability limit .* Fix:"),
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
    ("rollout beyond the stability limit", lambda c: Burgers(c.model.grid, dt=50.0, viscosity=5.0, substeps=1).rollout(
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
     ConfigError, r"Expected 'num_predict_steps' in trainer_params.* to be an integer .* got 1\.5 .*Fix: write a whole"),
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
     ConfigError, r"Expected an integer num_predict_steps >= 1, got 0"),
    ("PhysicalTrainer: targets of another length", lambda c: PhysicalTrainer(
        {"num_predict_steps": 3}, c.model, 1.0).fit_items([_fields(c, steps=2)]),
     ValueError, r"batch dim 'time' of num_predict_steps=3 frames.* Fix: HybridDataset\(\.\.\., num_predict_steps=3\)"),
    ("PhysicalTrainer.load_params: not an npz", lambda c: PhysicalTrainer({}, c.model, 1.0).load_params(
        c.tmp / "params.npz"),
     ValueError, r"Expected a parameter file written by PhysicalTrainer\.save_params, but .* cannot be read"),
    ("HybridTrainer: another trainer's checkpoint", lambda c: _hybrid(c).load_checkpoint(c.ckpt),
     CheckpointError, r"is a checkpoint of a 'SyntheticTrainer', not of a HybridTrainer\. Fix: load it into"),
    ("HybridTrainer: damaged checkpoint", lambda c: _hybrid(c).load_checkpoint(c.tmp / "half.pt"),
     CheckpointError, r"Expected a checkpoint written by HybridTrainer\.save_checkpoint, but .* cannot be read"),
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
                                                           "dt": 50.0, "viscosity": 5.0, "substeps": 1}}}))
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
    history = list(trainer.history)
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


# =========================================================================== issue 14
# Reliability, round two (data, configs, files): typed config values, HDF5 files that reach
# outside themselves, numbers accepted without a check, a full disk, a cache cleared while written.
# Same table form as above; every message must also name the fix.
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from hybridkit._config import check_keywords, from_dict  # noqa: E402
from hybridkit.convert import stack_channels, to_field  # noqa: E402
from hybridkit.data import AugmentedDataset, CacheManager, DiskFullError, add_noise, cache_key  # noqa: E402
from hybridkit.training import SyntheticConfig  # noqa: E402


@pytest.fixture(scope="module")
def ctx14(ctx):
    """Copies of the valid dataset that point outside themselves, lie in their attributes, or hold
    values of the wrong type; things at the dataset path that are not files."""
    tmp = ctx.tmp / "issue14"
    tmp.mkdir()
    other = tmp / "other.h5"
    shutil.copy(ctx.data, other)
    shape = (SIMS, FRAMES, N)
    secret = tmp / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 64)  # stands for /etc/passwd

    def edited(name, edit):
        p = tmp / name
        shutil.copy(ctx.data, p)
        with h5py.File(p, "a") as f:
            edit(f)
        return p

    def replace(path, make):
        def edit(f):
            del f[path]
            make(f)
        return edit

    def virtual(f):
        layout = h5py.VirtualLayout(shape=shape, dtype="f4")
        layout[...] = h5py.VirtualSource(str(other), "fields/velocity", shape=shape)
        f.create_virtual_dataset("fields/velocity", layout)

    def attr(**values):
        def edit(f):
            for k, v in values.items():
                f.attrs[k] = v
        return edit

    def grid_attr(key, value):  # forged consistently in the root attribute and in model_config
        def edit(f):
            cfg = json.loads(f.attrs["model_config"])
            cfg["grid"][key] = value.tolist()
            f.attrs["model_config"] = json.dumps(cfg)
            f.attrs[key] = value
        return edit

    zero = tmp / "zero.h5"
    zero.symlink_to("/dev/zero")
    fifo = tmp / "fifo.h5"
    os.mkfifo(fifo)
    (tmp / "folder.h5").mkdir()
    return SimpleNamespace(
        tmp=tmp, model=ctx.model, data=ctx.data, other=other, zero=zero, fifo=fifo, folder=tmp / "folder.h5",
        external_link=edited("external_link.h5", replace("fields/velocity", lambda f: f.__setitem__(
            "fields/velocity", h5py.ExternalLink(str(other), "/fields/velocity")))),
        external_group=edited("external_group.h5", replace("fields", lambda f: f.__setitem__(
            "fields", h5py.ExternalLink(str(other), "/fields")))),
        external_param=edited("external_param.h5", replace("params/viscosity", lambda f: f.__setitem__(
            "params/viscosity", h5py.ExternalLink(str(other), "/params/viscosity")))),
        soft_link=edited("soft_link.h5", lambda f: (f.move("fields/velocity", "stash"), f.__setitem__(
            "fields/velocity", h5py.SoftLink("/stash")))),
        virtual=edited("virtual.h5", replace("fields/velocity", virtual)),
        external_storage=edited("external_storage.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", shape=shape, dtype="f4", external=[(str(secret), 0, 4 * SIMS * FRAMES * N)]))),
        unwritten=edited("unwritten.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", shape=shape, dtype="f4", chunks=(1, FRAMES, N)))),
        lzf=edited("lzf.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", data=np.ones(shape, "f4"), compression="lzf"))),
        int16=edited("int16.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", data=np.ones(shape, "i2")))),
        bools=edited("bool.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", data=np.ones(shape, bool)))),
        float64=edited("float64.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", data=np.linspace(-1, 1, SIMS * FRAMES * N).reshape(shape)))),
        float16=edited("float16.h5", replace("fields/velocity", lambda f: f.create_dataset(
            "fields/velocity", data=np.ones(shape, "f2"), compression="gzip", shuffle=True))),
        int_param=edited("int_param.h5", replace("params/viscosity", lambda f: f.create_dataset(
            "params/viscosity", data=np.ones(SIMS, "i4")))),
        dt_negative=edited("dt_negative.h5", attr(dt=-0.1)),
        dt_nan=edited("dt_nan.h5", attr(dt=np.nan)),
        dt_text=edited("dt_text.h5", attr(dt="0.2")),
        dt_disagrees=edited("dt_disagrees.h5", attr(dt=0.3)),
        frames_float=edited("frames_float.h5", attr(num_frames=5.5)),
        frames_more=edited("frames_more.h5", attr(num_frames=FRAMES + 1)),
        resolution=edited("resolution.h5", grid_attr("resolution", np.array([16.5]))),
        domain_inf=edited("domain_inf.h5", grid_attr("domain_size", np.array([np.inf]))),
        domain_disagrees=edited("domain_disagrees.h5", attr(domain_size=np.array([50.0]))),
        names=edited("names.h5", attr(field_names=json.dumps(["velocity", 3]))),
        vector=edited("vector.h5", attr(vector_fields=json.dumps(["pressure"]))),
        kinds=edited("kinds.h5", attr(param_kinds=json.dumps(["tensor"]))),
    )


def _cfg(text: str, tmp: Path, name: str = "c.yaml"):
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def _ds(c):
    return HybridDataset(DataManager(c.data), [0, 1], num_predict_steps=2)


CASES_14 = [
    # ------------------------------------------------------------ booleans are not numbers, counts are integers
    ("config: cycles 1.7", lambda c: experiment_config({"cycles": 1.7}),
     ConfigError, r"Expected 'cycles' in experiment config to be an integer .* got 1\.7 \(a number\)\. Fix: write a "
                  r"whole number, e.g\. cycles: 1 or 2"),
    ("config: epochs 2.5", lambda c: experiment_config({"synthetic": {"epochs": 2.5}}),
     ConfigError, r"'epochs' in synthetic to be an integer .* got 2\.5 .* Fix: write a whole number"),
    ("config: noise yes (YAML)", lambda c: _cfg("data:\n  noise: yes\n", c.tmp),
     ConfigError, r"'noise' in data to be a number, got True \(a boolean\)\. Fix: write a number .*YAML reads "
                  r"true/false/yes/no/on/off as booleans"),
    ("config: a count as a string", lambda c: experiment_config({"data": {"num_train": "3"}}),
     ConfigError, r"'num_train' in data to be an integer .* got '3' \(a string\)\. Fix: write the number without "
                  r"quotes \(num_train: 3\)"),
    ("config: true as a count", lambda c: experiment_config({"cycles": True}),
     ConfigError, r"'cycles' .* got True \(a boolean\)\. Fix: write a number \(the default: cycles: 3\)"),
    ("config: 1 as a switch", lambda c: experiment_config({"hybrid": {"revert": 1}}),
     ConfigError, r"'revert' in hybrid to be true or false, got 1 \(an integer\)\. Fix: write true or false"),
    ("config: a number as the name", lambda c: experiment_config({"name": 3}),
     ConfigError, r"'name' in experiment config to be a string, got 3 .* Fix: quote the value"),
    ("config: a list as pde_params", lambda c: experiment_config({"data": {"pde_params": [1]}}),
     ConfigError, r"'pde_params' in data to be a mapping, got \[1\] \(a list\)\. Fix: write a mapping \(the default"),
    ("config: NaN as a weight", lambda c: _cfg("hybrid:\n  alpha_synthetic: .nan\n", c.tmp),
     ConfigError, r"'alpha_synthetic' in hybrid to be a number, got nan .* NaN is not a setting"),
    ("config: null where a number is needed", lambda c: experiment_config({"data": {"noise": None}}),
     ConfigError, r"'noise' in data to be a number, got None \(null\)\. Fix: write a number"),
    ("trainer: learning rate as text", lambda c: SyntheticTrainer({"learning_rate": "1e-3"}, _net()),
     ConfigError, r"'learning_rate' in trainer_params.* to be a number, got '1e-3' .* Fix: write the number without"),
    ("trainer: 'no' as a switch", lambda c: from_dict(SyntheticConfig, {"noise_std": "no"}),
     ConfigError, r"'noise_std' in config to be a number, got 'no' .* Fix: write a number"),
    ("network: 16.5 features", lambda c: ModelRegistry.get_synthetic_model(
        "UNet", {"in_channels": 1, "out_channels": 1, "features": 16.5}),
     ConfigError, r"'features' in UNet config to be an integer .* got 16\.5 .* Fix: write a whole number"),
    ("network: periodic 0", lambda c: UNet({"in_channels": 1, "out_channels": 1, "periodic": 0}),
     ConfigError, r"'periodic' in UNet config to be true or false, got 0 .* Fix: write true or false"),
    ("pde_params: viscosity yes", lambda c: check_keywords(Burgers.__init__, {"viscosity": True},
                                                           where="data.pde_params"),
     ConfigError, r"'viscosity' in data\.pde_params to be a number \(or an expression / array of numbers\), got "
                  r"True \(a boolean\)\. Fix: write a number \(the default: viscosity: 0\.5\)"),
    ("pde_params: a boolean inside a field", lambda c: check_keywords(Burgers.__init__, {"viscosity": [0.1, False]},
                                                                      where="data.pde_params"),
     ConfigError, r"got \[0\.1, False\] \(a boolean inside\)\. Fix: write a number"),
    ("pde_params: substeps 1.5", lambda c: check_keywords(Burgers.__init__, {"substeps": 1.5}, where="pde_params"),
     ConfigError, r"'substeps' in pde_params to be an integer .* got 1\.5 .* Fix: write a whole number"),
    ("pde_params: jit 1", lambda c: check_keywords(Burgers.__init__, {"jit": 1}, where="pde_params"),
     ConfigError, r"'jit' in pde_params to be true or false, got 1 .* Fix: write true or false \(the default: jit: "
                  r"true\)"),
    ("dataset config: 64.9 cells", lambda c: ensure_dataset({"pde_params": {"resolution": [64.9], "domain_size": [1.0]}},
                                                          directory=c.tmp),
     ConfigError, r"Invalid grid in pde_params: Expected 1 to 3 axes with at least 4 cells each, got "
                  r"resolution=\[64\.9\]\. Fix: pass e\.g\. resolution=\(64,\)"),
    ("dataset config: dt as a string", lambda c: ensure_dataset({"pde_params": {"resolution": [8], "domain_size": [1.0],
                                                                                "dt": "0.1"}}, directory=c.tmp),
     ConfigError, r"'dt' in Burgers config \(pde_params\) to be a number, got '0\.1' .* Fix: write the number"),
    # ------------------------------------------------------------ HDF5 files that reach outside themselves
    ("HDF5: field is an external link", lambda c: DataManager(c.external_link),
     DatasetFormatError, r"/fields/velocity in .*external_link\.h5 is an external link to /fields/velocity in the "
                         r"file .*other\.h5; .* never reads other files\. Fix: regenerate"),
    ("HDF5: the fields group is an external link", lambda c: DataManager(c.external_group),
     DatasetFormatError, r"/fields in .*external_group\.h5 is an external link to /fields .*Fix: regenerate"),
    ("HDF5: a parameter is an external link", lambda c: DataManager(c.external_param),
     DatasetFormatError, r"/params/viscosity in .* is an external link .*Fix: regenerate"),
    ("HDF5: field is a soft link", lambda c: DataManager(c.soft_link),
     DatasetFormatError, r"/fields/velocity in .*soft_link\.h5 is a soft link to /stash.* Fix: regenerate"),
    ("HDF5: field is a virtual dataset", lambda c: DataManager(c.virtual),
     DatasetFormatError, r"/fields/velocity in .*virtual\.h5 is a virtual dataset that reads from \['.*other\.h5'\].* "
                         r"Fix: regenerate"),
    ("HDF5: field in external raw storage", lambda c: DataManager(c.external_storage),
     DatasetFormatError, r"/fields/velocity in .* keeps its bytes in external file\(s\) \['.*secret\.txt'\] \(HDF5 "
                         r"external storage\).* Fix: regenerate"),
    ("HDF5: field never written", lambda c: DataManager(c.unwritten),
     DatasetFormatError, r"announces 1,152 bytes \(\(3, 6, 16\)\) but stores only 0: its values were never written.* "
                         r"Fix: regenerate"),
    ("HDF5: a filter hybridkit does not write", lambda c: DataManager(c.lzf),
     DatasetFormatError, r"uses HDF5 filter\(s\) \[32000\], which hybridkit does not write.* Fix: regenerate"),
    ("path: a directory", lambda c: DataManager(c.folder),
     DatasetFormatError, r"Expected a dataset file .* at .*folder\.h5, found a directory\. Fix: give the path of the "
                         r"\.h5 file itself"),
    ("path: a symlink to /dev/zero", lambda c: DataManager(c.zero),
     DatasetFormatError, r"at .*zero\.h5, found a character device\. Fix: give the path"),
    # ------------------------------------------------------------ forged attributes and wrong dtypes
    ("file: dt of -0.1", lambda c: DataManager(c.dt_negative),
     DatasetFormatError, r"forged or damaged attributes: Expected root attribute dt \(time between frames\) as a "
                         r"finite number > 0, got -0\.1\. Fix: regenerate"),
    ("file: dt NaN", lambda c: DataManager(c.dt_nan),
     DatasetFormatError, r"Expected root attribute dt .* got nan\. Fix: regenerate"),
    ("file: dt as text", lambda c: DataManager(c.dt_text),
     DatasetFormatError, r"Expected root attribute dt .* got '0\.2'\. Fix: regenerate"),
    ("file: dt disagrees with model_config", lambda c: DataManager(c.dt_disagrees),
     DatasetFormatError, r"root attribute dt=0\.3 disagrees with model_config dt=0\.2\. Fix: regenerate"),
    ("file: 5.5 frames", lambda c: DataManager(c.frames_float),
     DatasetFormatError, r"Expected root attribute num_frames as an integer >= 1, got 5\.5\. Fix: regenerate"),
    ("file: more frames than stored", lambda c: DataManager(c.frames_more),
     DatasetFormatError, r"Expected /fields/velocity of shape \(3, 7 or 1, 16\) .* got \(3, 6, 16\)\. Fix: regenerate"),
    ("file: 16.5 cells", lambda c: DataManager(c.resolution),
     DatasetFormatError, r"describes an invalid grid: Expected 1 to 3 axes .* got resolution=\(16\.5,\)\. Fix"),
    ("file: infinite domain", lambda c: DataManager(c.domain_inf),
     DatasetFormatError, r"invalid grid: Expected one positive, finite domain size .* got domain_size=\(inf,\)\. Fix"),
    ("file: domain size disagrees with model_config", lambda c: DataManager(c.domain_disagrees),
     DatasetFormatError, r"root attribute domain_size=\(50\.0,\) disagrees with model_config grid\.domain_size="
                         r"\[100\.0\]\. Fix: regenerate"),
    ("file: a number among the field names", lambda c: DataManager(c.names),
     DatasetFormatError, r"Expected root attribute field_names as a JSON list of distinct names, got \('velocity', "
                         r"3\)\. Fix: regenerate"),
    ("file: a vector field that is no field", lambda c: DataManager(c.vector),
     DatasetFormatError, r"Expected vector_fields \['pressure'\] among field_names \['velocity'\]\. Fix: regenerate"),
    ("file: an unknown parameter kind", lambda c: DataManager(c.kinds),
     DatasetFormatError, r"Expected one of \('scalar', 'field', 'vector'\) per parameter .*\['tensor'\].* Fix"),
    ("file: int16 field", lambda c: DataManager(c.int16),
     DatasetFormatError, r"Expected floating-point values in /fields/velocity of .* \(a field\), got dtype int16\. "
                         r".*Fix: convert the arrays, e\.g\. write_trajectories"),
    ("file: bool field", lambda c: DataManager(c.bools),
     DatasetFormatError, r"got dtype bool\. .*Fix: convert the arrays"),
    ("file: int parameter", lambda c: DataManager(c.int_param),
     DatasetFormatError, r"values in /params/viscosity of .* \(a parameter\), got dtype int32\..* Fix: convert"),
    # ------------------------------------------------------------ numbers accepted without a check
    ("add_noise: NaN level", lambda c: add_noise(np.ones(8), float("nan")),
     ValueError, r"Expected rel_std as a finite number >= 0, got nan\. Fix: the noise std relative"),
    ("add_noise: infinite level", lambda c: add_noise(np.ones(8), float("inf")),
     ValueError, r"Expected rel_std as a finite number >= 0, got inf\. Fix"),
    ("add_noise: data with NaN", lambda c: add_noise(np.array([1.0, np.nan, 2.0]), 0.1),
     ValueError, r"Expected finite data to add noise to, got 1 NaN / inf value\(s\) of 3: .* Fix: drop or repair"),
    ("add_noise: a boolean level", lambda c: add_noise(np.ones(8), True),
     ValueError, r"Expected rel_std as a finite number >= 0, got True\. Fix"),
    ("add_noise: seed 1.5", lambda c: add_noise(np.ones(8), 0.1, seed=1.5),
     ValueError, r"Expected seed as an integer >= 0, got 1\.5\. Fix: pass a non-negative integer seed"),
    ("AugmentedDataset: generated_per_real NaN", lambda c: AugmentedDataset(_ds(c), _ds(c), generated_per_real=np.nan),
     ValueError, r"Expected generated_per_real as a finite number >= 0, got nan\. Fix: a finite number"),
    ("AugmentedDataset: generated_per_real inf", lambda c: AugmentedDataset(_ds(c), _ds(c),
                                                                           generated_per_real=float("inf")),
     ValueError, r"Expected generated_per_real as a finite number >= 0, got inf\. Fix"),
    ("AugmentedDataset: weight True", lambda c: AugmentedDataset(_ds(c), _ds(c), weight_real=True),
     ValueError, r"Expected weight_real as a finite number >= 0, got True\. Fix: e\.g\. weight_real=1\.0"),
    ("AugmentedDataset: seed 0.5", lambda c: AugmentedDataset(_ds(c), _ds(c), seed=0.5),
     ValueError, r"Expected seed as an integer >= 0, got 0\.5\. Fix"),
    ("temporal_mask: every 2.5", lambda c: temporal_mask(10, every=2.5),
     ValueError, r"Expected every as an integer >= 1, got 2\.5\. Fix: observe every k-th frame with an integer k"),
    ("temporal_mask: frame 1.5", lambda c: temporal_mask(10, frames=[0, 1.5]),
     ValueError, r"Expected integer frame indices, got \[0, 1\.5\]\. Fix: e\.g\. frames=\[0, 4, 9\]"),
    ("temporal_mask: frame True", lambda c: temporal_mask(10, frames=[True]),
     ValueError, r"Expected integer frame indices, got \[True\]\. Fix"),
    ("spatial_mask: NaN bound", lambda c: spatial_mask(c.model.grid, region=[(0, np.nan)]),
     ValueError, r"Expected each region entry as two finite numbers \(low, high\), got \(0, nan\)\. Fix: one \(low, "
                 r"high\) per axis .* region=\[\(0, 50\)\]"),
    ("spatial_mask: low above high", lambda c: spatial_mask(c.model.grid, region=[(60, 10)]),
     ValueError, r"Expected low < high in every region entry, got \(60, 10\)\. Fix"),
    ("spatial_mask: fraction NaN", lambda c: spatial_mask(c.model.grid, fraction=float("nan")),
     ValueError, r"Expected fraction as a finite number > 0 and <= 1, got nan\. Fix: the share of cells"),
    ("ObservationMask: a 4-D spatial mask", lambda c: ObservationMask(spatial=np.ones((2, 2, 2, 2), bool)),
     ValueError, r"Expected a spatial mask with 1 to 3 axes, got shape \(2, 2, 2, 2\)\. Fix: spatial_mask"),
    ("ObservationMask.weights: 2.5 steps", lambda c: ObservationMask(temporal=np.ones(2, bool)).weights(
        c.model.grid, 2.5),
     ValueError, r"Expected num_steps as an integer >= 1, got 2\.5\. Fix"),
    ("GridSpec: 64.9 cells", lambda c: GridSpec((64.9,), (100.0,)),
     ValueError, r"at least 4 cells each, got resolution=\(64\.9,\)\. Fix: pass e\.g\. resolution=\(64,\) .* whole "
                 r"numbers of cells"),
    ("GridSpec: True cells", lambda c: GridSpec((True,) * 4, (1.0,) * 4),
     ValueError, r"got resolution=\(True, True, True, True\)\. Fix"),
    ("GridSpec: domain size as text", lambda c: GridSpec((8,), ("100",)),
     ValueError, r"positive, finite domain size per axis \(1\), got domain_size=\('100',\)\. Fix"),
    ("make_loader: batch_size 2.5", lambda c: make_loader(_ds(c), batch_size=2.5),
     ValueError, r"Expected batch_size >= 1, got 2\.5: a whole number of windows per batch\. Fix: e\.g\. batch_size=32"),
    ("make_loader: batch_size True", lambda c: make_loader(_ds(c), batch_size=True),
     ValueError, r"Expected batch_size >= 1, got True.* Fix"),
    ("make_loader: seed -1", lambda c: make_loader(_ds(c), seed=-1),
     ValueError, r"Expected seed as an integer >= 0, got -1\. Fix: pass a non-negative integer seed"),
    ("make_loader: shuffle 'no'", lambda c: make_loader(_ds(c), shuffle="no"),
     TypeError, r"Expected shuffle as True or False, got 'no'\. Fix: shuffle=True or shuffle=False"),
    ("HybridDataset: return_fields 'yes'", lambda c: HybridDataset(DataManager(c.data), [0], return_fields="yes"),
     TypeError, r"Expected return_fields as True or False, got 'yes'\. Fix"),
    ("HybridDataset: simulation index True", lambda c: HybridDataset(DataManager(c.data), [True]),
     ValueError, r"Expected a non-empty list of integer simulation indices, got \[True\]\. Fix"),
    ("DataManager: cache_mb NaN", lambda c: DataManager(c.data, cache_mb=float("nan")),
     ValueError, r"Expected cache_mb as a finite number >= 0, got nan\. Fix: pass the cache budget in MiB"),
    ("DataManager.load: frame 1.5", lambda c: DataManager(c.data).load(0, "velocity", 1.5, 3),
     TypeError, r"Expected integer frame indices start and stop, got start=1\.5, stop=3\. Fix: e\.g\. start=0"),
    ("DataManager.params: sims as floats", lambda c: DataManager(c.data).params("viscosity", sims=[0.0, 1.0]),
     TypeError, r"Expected an integer simulation index or a list of them, got \[0\.0, 1\.0\]\. Fix: e\.g\. sim=0"),
    ("CacheManager: max_bytes -1", lambda c: CacheManager(c.tmp / "cache", max_bytes=-1),
     ValueError, r"Expected max_bytes as an integer >= 0, got -1\. Fix: a size budget in bytes"),
    ("CacheManager: max_age_s NaN", lambda c: CacheManager(c.tmp / "cache", max_age_s=float("nan")),
     ValueError, r"Expected max_age_s as a finite number >= 0, got nan\. Fix: an age in seconds"),
    ("CacheManager.cleanup: max_bytes 1.5", lambda c: CacheManager(c.tmp / "cache").cleanup(max_bytes=1.5),
     ValueError, r"Expected max_bytes as an integer >= 0, got 1\.5\. Fix"),
    ("CacheManager.put: meta that is not JSON", lambda c: CacheManager(c.tmp / "cache").put(
        cache_key(a=1), lambda p: None, meta={"model": object()}),
     TypeError, r"Expected meta as plain JSON data .* Fix: describe the entry with plain values"),
    ("write_trajectories: boolean arrays", lambda c: write_trajectories(
        c.model, c.tmp / "w_bool.h5", {"velocity": np.ones((1, 2, N), bool)}),
     ValueError, r"Expected real numbers in 'velocity', got dtype bool\. Fix: pass float arrays"),
    ("write_trajectories: NaN in one simulation", lambda c: write_trajectories(
        c.model, c.tmp / "w_nan.h5", {"velocity": np.stack([np.zeros((2, N)), np.full((2, N), np.nan)])}),
     ValueError, r"Expected finite values in 'velocity', got NaN or inf .* in simulation\(s\) \[1\]\. Fix: drop"),
    ("write_trajectories: values beyond float32", lambda c: write_trajectories(
        c.model, c.tmp / "w_big.h5", {"velocity": np.full((1, 2, N), 1e300)}),
     ValueError, r"got NaN or inf \(or values beyond float32\) in simulation\(s\) \[0\]\. Fix"),
    ("generate: seed beyond int64", lambda c: generate_dataset(c.model, c.tmp / "g_seed.h5", num_sims=1,
                                                              num_frames=2, seed=2**70),
     ValueError, r"Expected an integer seed >= 0 and <= 2\*\*63 - 1 \(stored as int64\), got seed=\d+\. Fix"),
    ("to_field: integer values", lambda c: to_field(np.arange(N), c.model.grid, batch_names=()),
     TypeError, r"Expected floating-point field values, got dtype torch\.int64\. Fix: convert them"),
    ("to_field: batch_names as one string", lambda c: to_field(np.zeros((2, N)), c.model.grid, batch_names="time"),
     TypeError, r"Expected batch_names as a sequence of dimension names, got 'time'\. Fix: e\.g\. "
                r"batch_names=\('time',\)"),
    ("stack_channels: no fields", lambda c: stack_channels({}, [], [], 1),
     ValueError, r"Expected at least one field name to stack, got none\. Fix"),
]


def test_the_issue_14_table_is_large_and_unique():
    ids = [c[0] for c in CASES + CASES_14]
    assert len(CASES_14) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES_14], ids=[c[0] for c in CASES_14])
def test_bad_input_issue_14(ctx14, call, error, pattern):
    with pytest.raises(BaseException) as info:
        call(ctx14)
    assert type(info.value) is error, f"expected {error.__name__}, got {type(info.value).__name__}: {info.value}"
    message = str(info.value.args[0]) if isinstance(info.value, KeyError) else str(info.value)
    assert re.search(pattern, message), message
    assert "Fix" in message, message

# --------------------------------------------------------------------------- issue 14: what is accepted
def test_integral_floats_are_counts_and_none_where_allowed():
    cfg = experiment_config({"cycles": 3.0, "data": {"observed_every": None, "noise": 1}, "hybrid": {"seed": 2.0}})
    assert cfg.cycles == 3 and type(cfg.cycles) is int and type(cfg.hybrid.seed) is int
    assert cfg.data.noise == 1.0 and type(cfg.data.noise) is float and cfg.data.observed_every is None
    assert check_keywords(Burgers.__init__, {"substeps": 2.0, "viscosity": "0.1 + x", "jit": False},
                          where="pde_params") == {"substeps": 2, "viscosity": "0.1 + x", "jit": False}


def test_a_yaml_exponent_is_a_learning_rate(tmp_path):
    """PyYAML reads `1e-3` as a string; with the typed configs that would now be refused."""
    cfg, doc = _cfg("synthetic:\n  trainer_params: {learning_rate: 1e-3}\n", tmp_path)
    assert doc["synthetic"]["trainer_params"]["learning_rate"] == 1e-3
    assert SyntheticTrainer(cfg.synthetic.trainer_params, _net()).config.learning_rate == 1e-3


@pytest.mark.parametrize("name", ["float64", "float16"])
def test_float16_and_float64_fields_are_read_as_float32(ctx14, name):
    path = getattr(ctx14, name)
    with h5py.File(path) as f:
        stored = f["fields/velocity"][()]
    dm = DataManager(path)
    window = dm.load(1, "velocity", 2, 5)
    assert window.dtype == np.float32
    np.testing.assert_array_equal(window, stored[1, 2:5].astype(np.float32))
    x, y = HybridDataset(dm, [0, 1, 2], num_predict_steps=2)[0]
    assert x.dtype == y.dtype == torch.float32
    assert _net()(x[None]).shape == (1, 1, N)  # main: a torch dtype error inside conv1d for float64
    assert dm.params("viscosity").dtype == np.float32


def test_a_fifo_at_the_dataset_path_does_not_block(ctx14):
    outcome = []

    def open_it():
        try:
            DataManager(ctx14.fifo)
        except Exception as e:  # noqa: BLE001  (handed to the test thread)
            outcome.append(e)

    worker = threading.Thread(target=open_it, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock it before failing
        os.close(os.open(ctx14.fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), "opening a FIFO blocked"
    assert type(outcome[0]) is DatasetFormatError
    assert re.search(r"found a FIFO \(named pipe\)\. Fix: give the path of the \.h5 file itself", str(outcome[0]))


def test_missing_file_is_still_file_not_found(ctx14):
    with pytest.raises(FileNotFoundError, match=r"found nothing at .*nowhere\.h5\. Fix: create it"):
        DataManager(ctx14.tmp / "nowhere.h5")
    (ctx14.tmp / "dangling.h5").symlink_to(ctx14.tmp / "gone.h5")
    with pytest.raises(FileNotFoundError, match=r"found nothing at .*dangling\.h5"):
        DataManager(ctx14.tmp / "dangling.h5")


# --------------------------------------------------------------------------- issue 14: resources
_FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the limit then shows as EFBIG, as a full disk shows ENOSPC
    import numpy as np
    import hybridkit.data._generate as generate
    from hybridkit import GridSpec
    from hybridkit.data import DiskFullError, generate_dataset, write_trajectories
    from hybridkit.physics import Burgers
    target, how = sys.argv[1], sys.argv[2]
    if how.endswith("unchecked"):
        generate.check_space = lambda path, nbytes: None  # only the reservation stands between HDF5 and the limit
    model = Burgers(GridSpec((64,), (100.0,)), dt=0.1, jit=False)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        if how.startswith("generate"):
            generate_dataset(model, target, num_sims=64, num_frames=21, progress=False)
        else:
            write_trajectories(model, target, {"velocity": np.zeros((64, 21, 64), np.float32)})
    except DiskFullError as e:
        print(f"{type(e).__name__} {isinstance(e, OSError)} {e.errno} {e}")
""")


@pytest.mark.parametrize("how", ["generate", "generate unchecked", "write unchecked"])
@pytest.mark.slow
def test_disk_full_is_a_clear_error_with_nothing_left_and_no_crash(tmp_path, how):
    """RLIMIT_FSIZE stands for a full disk (no root, no real disk needed). On main: a raw h5py
    RuntimeError, then a segmentation fault at exit (exit code -11)."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _FULL_DISK, str(out / "d.h5"), how], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"^DiskFullError True 27 \[Errno 27\] File too large for .*d\.h5: about 0\.\d MB needed, .*"
                     r"Nothing was written\. Fix: raise the limit \(ulimit -f\)", run.stdout), run.stdout + run.stderr
    assert list(out.iterdir()) == []  # no temporary file, no half-written dataset


def test_disk_space_message_names_free_space_and_hybridkit_data(tmp_path, monkeypatch):
    from hybridkit.data import _space

    monkeypatch.setattr(_space.shutil, "disk_usage", lambda p: SimpleNamespace(total=10**6, used=10**6 - 1234, free=1234))
    with pytest.raises(DiskFullError, match=r"Disk full writing .*d\.h5: about 0\.\d MB needed, 1,234 bytes free on "
                                            r".* Nothing was written\. Fix: free space there, or set HYBRIDKIT_DATA"):
        generate_dataset(Burgers(GridSpec((64,), (100.0,)), dt=0.1, jit=False), tmp_path / "d.h5", num_sims=64,
                         num_frames=21, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_space_estimate_is_an_upper_bound_and_reserving_changes_no_byte(tmp_path, monkeypatch):
    from hybridkit.data import _generate
    from hybridkit.physics import Diffusion, NavierStokes2D

    cases = [(Burgers(GridSpec((8,), (10.0,)), dt=0.05, jit=False), 1, 2),
             (Burgers(GridSpec((8,), (10.0,)), dt=0.05, jit=False), 600, 3),  # many chunks
             (Burgers(GridSpec((16,), (100.0,)), dt=0.1, jit=False), 3, 120),
             (Diffusion(GridSpec((16,), (100.0,)), dt=0.1, diffusivity=np.full(16, 0.3), jit=False), 4, 11),
             (NavierStokes2D(GridSpec((8, 8), (6.28,)), dt=0.05, jit=False), 2, 5)]
    for i, (model, sims, frames) in enumerate(cases):
        path = generate_dataset(model, tmp_path / f"{i}.h5", num_sims=sims, num_frames=frames, progress=False)
        size = path.stat().st_size
        estimate = _generate._file_bytes(model, sims, frames, _generate._metadata(model, sims, frames, 0, None))
        assert size <= estimate <= 3 * size + 2**17, (i, size, estimate)
        monkeypatch.setattr(_generate, "reserve", lambda tmp, nbytes, target: None)
        plain = generate_dataset(model, tmp_path / f"{i}_plain.h5", num_sims=sims, num_frames=frames, progress=False)
        monkeypatch.undo()
        assert plain.read_bytes() == path.read_bytes()


def test_cache_cleared_while_written_and_listed(tmp_path):
    """Two writers, a clearing loop and a lister for 2 s: no exception anywhere (main: 65
    FileNotFoundError in 222k operations), every listed entry readable, nothing left over."""
    cache = CacheManager(tmp_path / "cache")
    errors, counts = [], {"put": 0, "clear": 0, "list": 0}
    stop = time.monotonic() + 2.0

    def write(path):
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(8.0)

    def loop(kind, step):
        while time.monotonic() < stop:
            try:
                step()
                counts[kind] += 1
            except Exception as e:  # noqa: BLE001  (collected, asserted below)
                errors.append(f"{kind}: {type(e).__name__}: {e}")

    def lister():
        for entry in cache.entries():
            path = cache.get(entry.key)
            if path is not None:
                try:
                    with h5py.File(path) as f:
                        assert f["x"].shape == (8,)
                except FileNotFoundError:  # removed after get(): the reader lost the race, not an error
                    pass

    threads = [threading.Thread(target=loop, args=("put", lambda w=w: cache.put(
                   cache_key(w=w, n=counts["put"] % 40), write, meta={"w": w}))) for w in range(2)]
    threads += [threading.Thread(target=loop, args=("clear", cache.clear)),
                threading.Thread(target=loop, args=("list", lister))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors[:5]
    assert min(counts.values()) > 10, counts
    cache.clear()
    assert sorted(p.name for p in cache.root.iterdir()) == [".lock"]


# =========================================================================== issue 14: the runner
# Experiment configs refused before any work (hybridkit.experiment.check_experiment, run by
# run_experiment and the command line first): counts, ranges and the limits they imply. Every
# message names the key and the fix. The command-line side (one line, exit 2) is tests/test_cli.py.
from hybridkit.experiment import StaleRunError, check_experiment, run_experiment  # noqa: E402

_RUN = {"mode": "hybrid", "cycles": 1,
        "data": {"pde_params": {"resolution": [16], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
                 "num_train": 2, "num_test": 2, "num_frames": 6},
        "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1}, "epochs": 1},
        "physical": {"initial": {"viscosity": 1.0}, "trainer_params": {"num_predict_steps": 3}},
        "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2},
        "evaluate": {"steps": 3}}


def _check(**changes):
    """check_experiment of _RUN with ``section__key=value`` changes."""
    import copy

    doc = copy.deepcopy(_RUN)
    for dotted, value in changes.items():
        node, parts = doc, dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    check_experiment(experiment_config(doc))


CASES_RUNNER = [
    ("run: synthetic.epochs -5", lambda c: _check(synthetic__epochs=-5),
     ConfigError, r"Expected synthetic\.epochs as an integer >= 1, got -5\. Fix: train at least one epoch"),
    ("run: physical.epochs 0", lambda c: _check(physical__epochs=0),
     ConfigError, r"Expected physical\.epochs as an integer >= 1, got 0\. Fix"),
    ("run: batch_size 0", lambda c: _check(synthetic__batch_size=0),
     ConfigError, r"Expected synthetic\.batch_size as an integer >= 1, got 0\. Fix: e\.g\. batch_size: 16"),
    ("run: data.seed -1", lambda c: _check(data__seed=-1),
     ConfigError, r"Expected data\.seed as an integer >= 0 .*got -1\. Fix"),
    ("run: init_seed -1", lambda c: _check(synthetic__init_seed=-1),
     ConfigError, r"Expected synthetic\.init_seed as an integer >= 0 .*Fix"),
    ("run: hybrid.seed -1", lambda c: _check(hybrid__seed=-1),
     ConfigError, r"Expected hybrid\.seed as an integer >= 0 .*Fix"),
    ("run: evaluate.steps 0", lambda c: _check(evaluate__steps=0),
     ConfigError, r"Expected evaluate\.steps as an integer >= 1, got 0\. Fix"),
    ("run: bounds [5, 1]", lambda c: _check(physical__bounds={"viscosity": [5, 1]}),
     ConfigError, r"Expected physical\.bounds\.viscosity as \[low, high\] with low < high, got \[5, 1\]\. Fix"),
    ("run: an infinite bound", lambda c: _check(physical__bounds={"viscosity": [0.1, float("inf")]}),
     ConfigError, r"upper bound of physical\.bounds\.viscosity as a finite number, got inf\. Fix"),
    ("run: evaluate.steps beyond the frames", lambda c: _check(evaluate__steps=50),
     ConfigError, r"evaluate\.steps = 50 needs 51 frames .* Fix: set evaluate\.steps <= 5"),
    ("run: the network's rollout beyond the frames", lambda c: _check(
        synthetic__trainer_params={"rollout_schedule": [[0, 1], [5, 8]]}),
     ConfigError, r"synthetic\.trainer_params\.num_predict_steps .* = 8 needs 9 frames .* Fix"),
    ("run: observed_region beyond the domain", lambda c: _check(data__observed_region=[[50, 150]]),
     ConfigError, r"entry \[50, 150\] \(axis x\) is not inside the domain \[0, 100\] .* Fix: one \[low, high\]"),
    ("run: observed_region inverted", lambda c: _check(data__observed_region=[[60, 10]]),
     ConfigError, r"entry \[60, 10\] .* with low < high\. Fix"),
    ("run: observed_every", lambda c: _check(data__observed_every=2),
     ConfigError, r"data\.observed_every is not supported by the experiment runner yet\. Fix: remove"),
    ("run: UNet levels 6 on 16 cells", lambda c: _check(synthetic__model="UNet", synthetic__model_params={"levels": 6}),
     ConfigError, r"does not fit the grid \(16,\) .* divisible by 64.* Fix: use fewer levels"),
    ("run: a coefficient the PDE lacks", lambda c: _check(physical__initial={"diffusivity": 1.0}),
     ConfigError, r"physical\.initial names \['diffusivity'\], which Burgers does not have\. Fix: learn some of"),
    ("run: a regulariser on a scalar", lambda c: _check(physical__trainer_params={"regularizer": "gradient",
                                                                                 "reg_weight": 0.1,
                                                                                 "num_predict_steps": 3}),
     ConfigError, r"physical: regularizer='gradient' acts on field parameters.* Fix: set regularizer=None"),
    ("run: 10**12 simulations", lambda c: _check(data__num_train=10**12),
     ConfigError, r"make 349 TiB of data, more than this machine's .* of memory\. Fix: fewer simulations"),
]


def test_the_runner_table_is_large_and_unique():
    ids = [c[0] for c in CASES + CASES_14 + CASES_RUNNER]
    assert len(CASES_RUNNER) >= 15 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES_RUNNER], ids=[c[0] for c in CASES_RUNNER])
def test_bad_input_runner(ctx, call, error, pattern):
    with pytest.raises(BaseException) as info:
        call(ctx)
    assert type(info.value) is error, f"expected {error.__name__}, got {type(info.value).__name__}: {info.value}"
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.slow
def test_the_stale_result_of_the_issue_is_refused(tmp_path, monkeypatch):
    """The issue's example: a run, then the same with another true viscosity into the same
    directory. On main it resumed and reported the old fit (fitted 0.5 for a true 1.0)."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    run_experiment(_RUN, tmp_path / "run", progress=False, log=lambda m: None)
    other = {**_RUN, "data": {**_RUN["data"], "pde_params": {**_RUN["data"]["pde_params"], "viscosity": 1.0}}}
    with pytest.raises(StaleRunError, match=r"data\.pde_params\.viscosity: 0\.5 -> 1\.0\).*Fix: rerun with --fresh"):
        run_experiment(other, tmp_path / "run", progress=False, log=lambda m: None)
    fresh = run_experiment(other, tmp_path / "run", progress=False, resume=False, log=lambda m: None)
    assert fresh["true_params"]["viscosity"] == 1.0
    assert abs(fresh["modes"]["hybrid"]["params"]["viscosity"] - 1.0) < 1e-3
