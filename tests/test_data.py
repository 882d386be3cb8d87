"""hybridkit.data: HDF5 generation, DataManager, HybridDataset windows, loaders, the demo CLI."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit.convert import to_tensor
from hybridkit.data import (DataManager, DatasetFormatError, HybridDataset, collate_fields,
                            ensure_dataset, generate_dataset, make_loader)
from hybridkit.physics import Burgers, StabilityError

torch.set_num_threads(1)
N, SIMS, FRAMES = 32, 5, 7


@pytest.fixture
def seed():
    return 3


@pytest.fixture
def model():
    return Burgers(GridSpec((N,), (50.0,)), dt=0.1, viscosity=0.5)


@pytest.fixture
def field_model():
    """Burgers with a spatially varying viscosity: a ``field`` parameter (a static channel)."""
    x = (np.arange(N) + 0.5) / N
    return Burgers(GridSpec((N,), (50.0,)), dt=0.1, viscosity=0.3 + 0.2 * np.sin(np.pi * x) ** 2)


@pytest.fixture
def nus():
    return np.array([0.2, 0.35, 0.5, 0.65, 0.8], dtype=np.float32)


@pytest.fixture
def path(tmp_path, model, seed, nus):
    return generate_dataset(model, tmp_path / "d.h5", num_sims=SIMS, num_frames=FRAMES, seed=seed,
                            params={"viscosity": nus}, batch_size=2, progress=False)


def sha256(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


# ------------------------------------------------------------------ generation and the file
def test_round_trip_is_bit_identical_to_the_model(path, model, seed, nus):
    init = model.random_state(SIMS, seed=seed)  # documented: ICs from default_rng(seed)
    expected = to_tensor(model.rollout(init, FRAMES - 1, {"viscosity": nus})["velocity"], ["batch", "time"]).numpy()
    with DataManager(path) as dm:
        stored = np.stack([dm.load(s, "velocity") for s in range(SIMS)])
        assert stored.dtype == np.float32 and stored.shape == (SIMS, FRAMES, N)
        np.testing.assert_array_equal(stored, expected)  # bitwise, though written in batches of 2
        np.testing.assert_array_equal(dm.params("viscosity"), nus)
        assert dm.params("viscosity", sims=3) == nus[3]
        np.testing.assert_array_equal(dm.params(sims=[1, 4])["viscosity"], nus[[1, 4]])
    # each simulation used its own viscosity: against one shared nu = 0.5 only sim 2 (nu = 0.5) agrees
    shared = to_tensor(model.rollout(init, FRAMES - 1)["velocity"], ["batch", "time"]).numpy()
    same = [np.array_equal(stored[s], shared[s]) for s in range(SIMS)]
    assert same == [False, False, True, False, False]


def test_file_opens_in_plain_h5py_and_describes_itself(path, model, seed, nus):
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "hybridkit-dataset" and a["format_version"] == 1
        assert a["pde"] == "Burgers" and a["boundary"] == "periodic"
        assert a["dt"] == 0.1 and a["seed"] == seed
        assert list(a["resolution"]) == [N] and list(a["domain_size"]) == [50.0]
        assert a["num_sims"] == SIMS and a["num_frames"] == FRAMES
        assert json.loads(a["field_names"]) == ["velocity"] and json.loads(a["vector_fields"]) == []
        assert json.loads(a["param_names"]) == ["viscosity"] and json.loads(a["param_kinds"]) == ["scalar"]
        assert json.loads(a["model_config"]) == json.loads(json.dumps(model.config(), sort_keys=True))
        assert isinstance(a["hybridkit_version"], str)
        u = f["fields/velocity"]
        assert u.dtype == np.float32 and u.shape == (SIMS, FRAMES, N)
        assert u.chunks == (1, FRAMES, N) and u.attrs["dims"] == "sims,time,x"
        assert f["params/viscosity"].attrs["kind"] == "scalar"
        np.testing.assert_array_equal(f["params/viscosity"][()], nus)


def test_chunks_split_time_evenly(tmp_path, model):
    p = generate_dataset(model, tmp_path / "c.h5", num_sims=2, num_frames=21, progress=False)
    with h5py.File(p) as f:
        assert f["fields/velocity"].chunks == (1, 11, N)  # 2 chunks of 11, not 16 + 5 in 32 slots


def test_same_config_and_seed_give_byte_identical_files(tmp_path, model):
    kw = dict(num_sims=3, num_frames=4, seed=7, progress=False)
    a = generate_dataset(model, tmp_path / "a.h5", **kw)
    time.sleep(1.1)  # a stored timestamp (1 s resolution) would now differ
    b = generate_dataset(Burgers(model.grid, dt=0.1, viscosity=0.5), tmp_path / "b.h5", **kw)
    c = generate_dataset(model, tmp_path / "c.h5", **{**kw, "seed": 8})
    assert sha256(a) == sha256(b)
    assert sha256(a) != sha256(c)


def test_params_callable_and_field_parameters(tmp_path, field_model):
    drawn = {}

    def draw(rng, n):
        base = field_model.true_params["viscosity"].numpy("x")
        drawn["v"] = base[None] * rng.uniform(0.5, 1.5, size=(n, 1))  # float64, unclipped
        return {"viscosity": drawn["v"]}

    p = generate_dataset(field_model, tmp_path / "f.h5", num_sims=3, num_frames=3, params=draw, progress=False)
    with DataManager(p) as dm:
        assert dm.param_kinds == {"viscosity": "field"}
        np.testing.assert_array_equal(dm.params("viscosity"), drawn["v"].astype(np.float32))
        # the stored parameters are the ones used: re-simulating with them reproduces the data
        init = field_model.random_state(3, seed=0)
        again = field_model.rollout(init, 2, {"viscosity": dm.params("viscosity")})
        np.testing.assert_array_equal(to_tensor(again["velocity"], ["batch", "time"]).numpy(),
                                      np.stack([dm.load(s, "velocity") for s in range(3)]))


def test_failure_mid_generation_leaves_no_file(tmp_path, model, monkeypatch):
    calls = []
    real = model.rollout

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "rollout", flaky)
    target = tmp_path / "x.h5"
    with pytest.raises(RuntimeError, match="simulated"):
        generate_dataset(model, target, num_sims=4, num_frames=3, batch_size=2, progress=False)
    assert len(calls) == 2 and not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too

    # an existing file survives a failed overwrite untouched
    monkeypatch.setattr(model, "rollout", real)
    generate_dataset(model, target, num_sims=2, num_frames=3, progress=False)
    before = sha256(target)
    calls.clear()
    monkeypatch.setattr(model, "rollout", flaky)
    with pytest.raises(RuntimeError):
        generate_dataset(model, target, num_sims=4, num_frames=3, batch_size=2, overwrite=True, progress=False)
    assert sha256(target) == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_existing_file_needs_overwrite(path, model):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_dataset(model, path, num_sims=2, num_frames=3, progress=False)
    generate_dataset(model, path, num_sims=2, num_frames=3, overwrite=True, progress=False)
    with DataManager(path) as dm:
        assert (dm.num_sims, dm.num_frames) == (2, 3)


def test_unstable_time_step_raises_before_writing(tmp_path):
    model = Burgers(GridSpec((N,), (50.0,)), dt=5.0, viscosity=0.5, substeps=1)  # limit 0.5 dx^2 / nu ~ 2.4
    with pytest.raises(StabilityError, match="substeps"):
        generate_dataset(model, tmp_path / "u.h5", num_sims=2, num_frames=3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_generation_argument_errors(tmp_path, model):
    with pytest.raises(KeyError, match="viscosity"):
        generate_dataset(model, tmp_path / "e.h5", num_sims=2, num_frames=3, params={"nu": 1.0}, progress=False)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        generate_dataset(model, tmp_path / "e.h5", num_sims=2, num_frames=3,
                         params={"viscosity": [0.1, 0.2, 0.3]}, progress=False)
    with pytest.raises(ValueError, match="num_frames >= 1"):
        generate_dataset(model, tmp_path / "e.h5", num_sims=2, num_frames=0, progress=False)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ DataManager
def test_data_manager_metadata_and_windows(path):
    dm = DataManager(path)
    assert dm.grid == GridSpec((N,), (50.0,)) and dm.dt == 0.1
    assert dm.field_names == ("velocity",) and dm.vector_fields == ()
    assert (dm.num_sims, dm.num_frames) == (SIMS, FRAMES)
    full = dm.load(2, "velocity")
    np.testing.assert_array_equal(dm.load(2, "velocity", FRAMES - 2), full[-2:])  # end of trajectory
    np.testing.assert_array_equal(dm.load(2, "velocity", 1, 4), full[1:4])
    dm.load(2, "velocity")[:] = 99  # a copy: the cache is not touched
    np.testing.assert_array_equal(dm.load(2, "velocity"), full)
    with pytest.raises(IndexError, match="stop"):
        dm.load(2, "velocity", 3, FRAMES + 1)
    with pytest.raises(IndexError, match="0..4"):
        dm.load(SIMS, "velocity")
    with pytest.raises(KeyError, match="velocity"):
        dm.load(0, "pressure")
    # pickled (as for DataLoader workers) it reopens lazily and reads the same
    clone = pickle.loads(pickle.dumps(dm))
    np.testing.assert_array_equal(clone.load(2, "velocity"), full)
    dm.close()
    np.testing.assert_array_equal(dm.load(2, "velocity"), full)  # reopens after close
    dm.close()


def test_cache_stays_within_its_budget(path):
    traj = FRAMES * N * 4  # bytes of one trajectory
    dm = DataManager(path, cache_mb=2.5 * traj / 2**20)  # room for two
    for s in (0, 1, 0, 2, 2, 3, 0, 1):
        dm.load(s, "velocity", 1, 3)
        info = dm.cache_info()
        assert info["bytes"] <= info["budget_bytes"] and info["entries"] <= 2
    info = dm.cache_info()
    # 0 miss, 1 miss, 0 hit, 2 miss (full: only the window is read), 2 miss again (admitted,
    # evicts 1), 3 miss (window only), 0 hit, 1 miss (window only: it was evicted)
    assert (info["hits"], info["misses"], info["bytes"]) == (2, 6, 2 * traj)
    no_cache = DataManager(path, cache_mb=0)  # bigger than the budget: read window by window
    np.testing.assert_array_equal(no_cache.load(3, "velocity", 2, 5), dm.load(3, "velocity")[2:5])
    assert no_cache.cache_info()["entries"] == 0


def test_non_hybridkit_files_are_rejected_clearly(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetFormatError, match="hybridkit dataset.*generate_dataset"):
        DataManager(plain)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DatasetFormatError, match="cannot be opened as HDF5"):
        DataManager(text)
    with pytest.raises(FileNotFoundError, match="generate_dataset"):
        DataManager(tmp_path / "missing.h5")


# ------------------------------------------------------------------ HybridDataset
@pytest.mark.parametrize("steps", [1, 3])
def test_sliding_windows_tensor_mode(path, steps):
    dm = DataManager(path)
    sims = [4, 1, 2]
    ds = HybridDataset(dm, sims, ["velocity"], num_predict_steps=steps)
    assert len(ds) == len(sims) * (FRAMES - steps)
    assert (ds.in_channels, ds.out_channels) == (1, 1)
    assert ds.window(len(ds) - 1) == (2, FRAMES - steps - 1)  # the last window ends on the last frame
    seen = set()
    for i in range(len(ds)):
        sim, start = ds.window(i)
        seen.add((sim, start))
        initial, targets = ds[i]
        traj = dm.load(sim, "velocity")
        assert initial.dtype == torch.float32 and initial.shape == (1, N)
        assert targets.shape == (steps, 1, N)
        np.testing.assert_array_equal(initial[0].numpy(), traj[start])
        np.testing.assert_array_equal(targets[:, 0].numpy(), traj[start + 1:start + 1 + steps])
    assert seen == {(s, t) for s in sims for t in range(FRAMES - steps)}


def test_sliding_windows_field_mode(path):
    dm = DataManager(path)
    ds = HybridDataset(dm, [0, 3], ["velocity"], num_predict_steps=2, return_fields=True)
    assert len(ds) == 2 * (FRAMES - 2)
    for i in range(len(ds)):
        sim, start = ds.window(i)
        initial, targets = ds[i]
        traj = dm.load(sim, "velocity")
        assert initial["velocity"].shape.batch.rank == 0
        assert targets["velocity"].shape.get_size("time") == 2
        np.testing.assert_array_equal(to_tensor(initial["velocity"]).numpy(), traj[start])
        np.testing.assert_array_equal(to_tensor(targets["velocity"], ["time"]).numpy(), traj[start + 1:start + 3])
        assert initial["velocity"].extrapolation == dm.grid.extrapolation


def test_non_overlapping_windows_and_num_frames(path):
    dm = DataManager(path)
    ds = HybridDataset(dm, [1], ["velocity"], num_predict_steps=2, use_sliding_window=False)
    assert [ds.window(i) for i in range(len(ds))] == [(1, 0), (1, 2), (1, 4)]  # floor((7-1)/2)
    short = HybridDataset(dm, [0, 1], ["velocity"], num_frames=4, num_predict_steps=1)
    assert len(short) == 2 * 3 and short.window(2) == (0, 2)
    np.testing.assert_array_equal(short[2][1][0, 0].numpy(), dm.load(0, "velocity")[3])


def test_static_field_channels(tmp_path, field_model):
    p = generate_dataset(field_model, tmp_path / "s.h5", num_sims=2, num_frames=4, progress=False)
    dm = DataManager(p)
    ds = HybridDataset(dm, [0, 1], ["velocity", "viscosity"], num_predict_steps=2)
    assert ds.dynamic_fields == ("velocity",) and ds.static_fields == ("viscosity",)
    assert (ds.in_channels, ds.out_channels) == (2, 1)
    initial, targets = ds[len(ds) - 1]
    sim, start = ds.window(len(ds) - 1)
    assert initial.shape == (2, N) and targets.shape == (2, 1, N)
    np.testing.assert_array_equal(initial[0].numpy(), dm.load(sim, "velocity")[start])
    np.testing.assert_array_equal(initial[1].numpy(), dm.params("viscosity", sims=sim))
    f_ds = HybridDataset(dm, [0], ["velocity", "viscosity"], num_predict_steps=1, return_fields=True)
    init_f, targ_f = f_ds[0]
    assert set(init_f) == {"velocity", "viscosity"} and set(targ_f) == {"velocity"}
    np.testing.assert_array_equal(to_tensor(init_f["viscosity"]).numpy(), dm.params("viscosity", sims=0))
    with pytest.raises(ValueError, match="constant in time"):
        HybridDataset(dm, [0], ["velocity"], static_fields=["velocity"])


def test_dataset_argument_errors(path):
    dm = DataManager(path)
    with pytest.raises(KeyError, match=r"\['pressure'\].*\['velocity'\]"):
        HybridDataset(dm, [0], ["pressure"])
    with pytest.raises(ValueError, match="num_predict_steps >= 1"):
        HybridDataset(dm, [0], ["velocity"], num_predict_steps=0)
    with pytest.raises(ValueError, match=f"at most {FRAMES - 1}"):
        HybridDataset(dm, [0], ["velocity"], num_predict_steps=FRAMES)
    with pytest.raises(ValueError, match="at most 2"):
        HybridDataset(dm, [0], ["velocity"], num_frames=3, num_predict_steps=3)
    with pytest.raises(IndexError, match=f"0..{SIMS - 1}"):
        HybridDataset(dm, [0, SIMS], ["velocity"])
    with pytest.raises(ValueError, match="non-empty"):
        HybridDataset(dm, [], ["velocity"])
    with pytest.raises(ValueError, match="num_frames in 2..7"):
        HybridDataset(dm, [0], ["velocity"], num_frames=FRAMES + 1)
    with pytest.raises(TypeError, match=r"\['velocity'\]"):
        HybridDataset(dm, [0], "velocity")


# ------------------------------------------------------------------ loaders
def test_loader_order_is_reproducible(path):
    ds = HybridDataset(DataManager(path), range(SIMS), ["velocity"], num_predict_steps=2)

    def order(seed, workers=0):
        return [t for _, t in make_loader(ds, batch_size=4, seed=seed, num_workers=workers)]

    a, b, c = order(1), order(1), order(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert sum(len(t) for t in a) == len(ds) and a[0].shape == (4, 2, 1, N)
    # worker processes open the file themselves and give the same batches in the same order
    assert all(torch.equal(x, y) for x, y in zip(a, order(1, workers=2)))


def test_field_mode_loader_stacks_along_batch(path):
    ds = HybridDataset(DataManager(path), [0, 1], ["velocity"], num_predict_steps=3, return_fields=True)
    initial, targets = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    assert initial["velocity"].shape.get_size("batch") == 3
    assert targets["velocity"].shape.get_size("batch") == 3 and targets["velocity"].shape.get_size("time") == 3
    i2, t2 = collate_fields([ds[0], ds[1], ds[2]])
    sub_initial, _ = next(iter(make_loader(torch.utils.data.Subset(ds, [4, 5]), batch_size=2)))
    assert sub_initial["velocity"].shape.get_size("batch") == 2
    np.testing.assert_array_equal(to_tensor(targets["velocity"], ["batch", "time"]).numpy(),
                                  to_tensor(t2["velocity"], ["batch", "time"]).numpy())


# ------------------------------------------------------------------ configs and the CLI
def test_ensure_dataset_reuses_and_regenerates(tmp_path):
    cfg = {"name": "tiny", "pde_params": {"resolution": [16], "domain_size": [50], "dt": 0.1, "viscosity": 0.5},
           "num_sims": 2, "num_frames": 3}
    p, generated = ensure_dataset(cfg, directory=tmp_path)
    assert generated and p == tmp_path / "tiny.h5"
    assert ensure_dataset(cfg, directory=tmp_path) == (p, False)
    p, generated = ensure_dataset({**cfg, "num_sims": 3}, directory=tmp_path)
    assert generated and DataManager(p).num_sims == 3
    with pytest.raises(ConfigError, match=r"move \['resolution', 'domain_size'\] into pde_params"):
        ensure_dataset({"name": "old", "resolution": [16], "domain_size": [50]}, directory=tmp_path)


@pytest.mark.slow
def test_demo_command(tmp_path):
    env = {**os.environ, "HYBRIDKIT_DATA": str(tmp_path)}
    run = [sys.executable, "-m", "hybridkit", "demo"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "velocity" in first.stdout and "(32, 21, 64)" in first.stdout
    assert "viscosity" in first.stdout and "generated" in first.stdout
    path = tmp_path / "datasets" / "burgers1d_default.h5"
    with DataManager(path) as dm:
        assert (dm.num_sims, dm.num_frames, dm.grid.resolution, dm.dt) == (32, 21, (64,), 0.1)
        np.testing.assert_array_equal(dm.params("viscosity"), np.full(32, 0.5, np.float32))
    again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "reused" in again.stdout


def test_vector_field_layout_2d(tmp_path):
    model = Burgers(GridSpec((8, 6), (40.0, 30.0)), dt=0.1, viscosity=0.5)
    p = generate_dataset(model, tmp_path / "v.h5", num_sims=2, num_frames=3, progress=False)
    dm = DataManager(p)
    assert dm.vector_fields == ("velocity",)
    u = dm.load(1, "velocity")
    assert u.shape == (3, 8, 6, 2)
    ds = HybridDataset(dm, [1], ["velocity"], num_predict_steps=2)
    initial, targets = ds[0]
    assert (ds.in_channels, ds.out_channels) == (2, 2) and initial.shape == (2, 8, 6)
    np.testing.assert_array_equal(initial.numpy(), np.moveaxis(u[0], -1, 0))  # channels x, y
    np.testing.assert_array_equal(targets.numpy(), np.moveaxis(u[1:], -1, 1))
    init_f, targ_f = HybridDataset(dm, [1], ["velocity"], num_predict_steps=2, return_fields=True)[0]
    assert init_f["velocity"].shape.get_item_names("vector") == ("x", "y")
    np.testing.assert_array_equal(to_tensor(targ_f["velocity"], ["time"]).numpy(), u[1:])
