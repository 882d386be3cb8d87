"""Data that do not match the model are refused by every trainer, naming both values and the fix."""
import numpy as np
import pytest
import torch
from phiml import math

from hybridkit import GridSpec
from hybridkit.convert import to_field
from hybridkit.data import (DataManager, DataMismatchError, DatasetFormatError, HybridDataset, check_data_matches,
                            generate_dataset, import_arrays, make_loader)
from hybridkit.models import ConvNet
from hybridkit.physics import Burgers, Diffusion, learnable
from hybridkit.training import HybridTrainer, PhysicalTrainer, SyntheticTrainer

torch.set_num_threads(1)
GRID = GridSpec((64,), (100.0,))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small datasets, each different from a 64-cell 1D Burgers at dt 0.1 in one respect."""
    d = tmp_path_factory.mktemp("match")

    def make(name, model):
        return generate_dataset(model, d / f"{name}.h5", num_sims=2, num_frames=4, seed=0, progress=False)
    return {
        "same": make("same", Burgers(GRID, dt=0.1)),
        "cells32": make("cells32", Burgers(GridSpec((32,), (100.0,)), dt=0.1)),
        "dt02": make("dt02", Burgers(GRID, dt=0.2)),
        "2d": make("2d", Burgers(GridSpec((16, 16), (100.0, 100.0)), dt=0.1)),
        "domain": make("domain", Burgers(GridSpec((64,), (50.0,)), dt=0.1)),
        "diffusion": make("diffusion", Diffusion(GRID, dt=0.1)),
    }


def windows(path, steps=2, fields=True):
    dm = DataManager(path)
    return HybridDataset(dm, range(dm.num_sims), num_predict_steps=steps, return_fields=fields)


def physical():
    return PhysicalTrainer({"num_predict_steps": 2}, Burgers(GRID, dt=0.1), [learnable("viscosity", 1.0)])


@pytest.mark.parametrize("name, match", [
    ("cells32", r"resolution: the data have \(32,\) cells, the model \(64,\)"),
    ("dt02", r"dt: the data's frames are 0\.2 apart, the model steps 0\.1 per frame"),
    ("2d", r"dimension: the data are 2D \(resolution \(16, 16\)\), the model is 1D \(\(64,\)\)"),
    ("domain", r"domain size: the data span \(50\.0,\), the model \(100\.0,\)"),
    ("diffusion", r"equation: the data were written by 'Diffusion', the model is 'Burgers'.*missing \['velocity'\]"),
])
def test_physical_trainer_refuses_data_of_another_model_naming_both(files, name, match):
    trainer = physical()
    with pytest.raises(DataMismatchError, match=match) as info:
        trainer.train(windows(files[name]) if name != "diffusion" else DataManager(files[name]), 1, progress=False)
    assert "Fix: build the model for the data" in str(info.value)
    assert trainer.epoch == 0 and trainer.params["viscosity"] == 1.0  # nothing fitted


def test_matching_data_and_a_loader_over_them_pass(files):
    check_data_matches(windows(files["same"]), Burgers(GRID, dt=0.1))
    loader = make_loader(windows(files["same"]), batch_size=4)
    with pytest.raises(DataMismatchError, match="dt"):  # found behind the DataLoader too
        check_data_matches(make_loader(windows(files["dt02"]), batch_size=4), Burgers(GRID, dt=0.1))
    run = physical().train(loader, 1, progress=False)
    assert run[0].num_samples == len(loader.dataset)


def test_imported_data_without_an_equation_are_compared_on_grid_and_dt(tmp_path):
    x = GRID.coordinates()[0]
    u = np.stack([np.stack([np.sin(2 * np.pi * x / 100 + t) for t in range(4)])] * 2).astype(np.float32)
    path = import_arrays(tmp_path / "own.h5", {"velocity": u}, periodic=True, dt=0.1, domain_size=100.0)
    check_data_matches(DataManager(path), Burgers(GRID, dt=0.1))  # pde "unknown": not compared
    with pytest.raises(DataMismatchError, match="0.1 apart, the model steps 0.05"):
        check_data_matches(DataManager(path), Burgers(GRID, dt=0.05))
    labelled = import_arrays(tmp_path / "labelled.h5", {"velocity": u}, periodic=True, dt=0.1, domain_size=100.0,
                             pde="Burgers (my spectral solver)")
    check_data_matches(DataManager(labelled), Burgers(GRID, dt=0.1))  # a free label naming the model
    other = import_arrays(tmp_path / "other.h5", {"velocity": u}, periodic=True, dt=0.1, domain_size=100.0,
                          pde="Diffusion, from FEniCS")
    with pytest.raises(DataMismatchError, match="labelled 'Diffusion, from FEniCS' \\(Diffusion\\), the model is 'Burgers'"):
        check_data_matches(DataManager(other), Burgers(GRID, dt=0.1))


def test_raw_tensors_of_another_grid_are_refused():
    trainer = physical()
    small = Burgers(GridSpec((32,), (100.0,)), viscosity=2.0)
    traj = small.rollout(small.random_state(2, seed=0), 2)["velocity"]
    with pytest.raises(DataMismatchError, match=r"initial state 'velocity' has spatial dims \(x=32\), the model "
                                                r"Burgers has \(x=64\)"):
        trainer.fit({"velocity": traj.time[0]}, {"velocity": traj.time[1:]}, progress=False)
    flat = Burgers(GridSpec((16, 16), (100.0, 100.0)), viscosity=4.0)
    t2 = flat.rollout(flat.random_state(1, seed=0), 2)["velocity"]
    with pytest.raises(DataMismatchError, match=r"spatial dims \(x=16, y=16\)"):
        trainer.fit({"velocity": t2.time[0]}, {"velocity": t2.time[1:]}, progress=False)
    half = to_field(np.zeros((2, 64), np.float32), GridSpec((64,), (50.0,)))
    with pytest.raises(DataMismatchError, match=r"spans a domain \(50\.0,\), the model Burgers \(100\.0,\)"):
        trainer.fit({"velocity": half}, {"velocity": math.stack([half.values] * 2, math.batch("time"))},
                    progress=False)


def test_synthetic_trainer_refuses_batches_of_another_layout(files):
    net = ConvNet(in_channels=2, out_channels=2, ndim=1, width=4, depth=1)
    trainer = SyntheticTrainer({"num_predict_steps": 1}, net)
    loader = make_loader(windows(files["same"], steps=1, fields=False), batch_size=4)
    with pytest.raises(DataMismatchError, match="in_channels: the data have 1, the network 2; out_channels: the data "
                                                "have 1, the network 2.*in_channels=dataset.in_channels"):
        trainer.train(loader, 1, progress=False)
    flat = make_loader(windows(files["2d"], steps=1, fields=False), batch_size=4)
    with pytest.raises(DataMismatchError, match="ndim: the data have 2, the network 1"):
        SyntheticTrainer({"num_predict_steps": 1}, ConvNet(in_channels=2, out_channels=2, ndim=1, width=4,
                                                           depth=1)).train(flat, 1, progress=False)


def test_hybrid_trainer_refuses_real_data_of_another_model(files):
    net = ConvNet(in_channels=1, out_channels=1, ndim=1, width=4, depth=1)
    hybrid = HybridTrainer({"warmup_epochs": 0}, SyntheticTrainer({"num_predict_steps": 1}, net), physical())
    with pytest.raises(DataMismatchError, match="dt: the data's frames are 0.2 apart"):
        hybrid.train(windows(files["dt02"], steps=1, fields=False), 1, progress=False)
    with pytest.raises(DataMismatchError, match=r"resolution: the data have \(32,\)"):
        hybrid.train(windows(files["cells32"], steps=1, fields=False), 1, progress=False)


def test_forged_dt_is_a_format_error(files, tmp_path):
    import shutil

    import h5py
    for value in (-0.1, np.nan):
        path = tmp_path / f"forged_{value}.h5"
        shutil.copy(files["same"], path)
        with h5py.File(path, "r+") as f:
            f.attrs["dt"] = value
        with pytest.raises(DatasetFormatError, match="forged or damaged attributes"):
            DataManager(path)
