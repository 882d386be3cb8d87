"""One state protocol: every trainer's state_dict() restores into a fresh trainer, and training
continues bit for bit as if it had never stopped; checkpoints of all three share one format and
one error type."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit.data import DataManager, HybridDataset, generate_dataset, make_loader
from hybridkit.models import UNet
from hybridkit.physics import Burgers, learnable
from hybridkit.training import (CheckpointError, EpochRecord, FitResult, HybridConfig, HybridTrainer, PhysicalTrainer,
                                SyntheticTrainer)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("state") / "burgers.h5"
    model = Burgers(GridSpec((16,), (100.0,)), dt=0.2, viscosity=0.5)
    generate_dataset(model, path, num_sims=3, num_frames=8, seed=0, progress=False)
    return model, DataManager(path)


def _synthetic(seed=0):
    torch.manual_seed(seed)  # a fresh trainer starts from other weights than the saved one
    net = UNet(in_channels=1, out_channels=1, ndim=1, features=4, levels=1)
    # noise on the inputs and an exponential LR schedule: the generator and scheduler states matter
    return SyntheticTrainer({"num_predict_steps": 2, "learning_rate": 3e-3, "noise_std": 0.01,
                             "lr_schedule": "exponential", "lr_gamma": 0.9}, net)


def _loader(dm):
    return make_loader(HybridDataset(dm, [0, 1, 2], num_predict_steps=2), batch_size=4, seed=3, epoch_keyed=True)


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_synthetic_state_restores_into_a_fresh_trainer_and_continues_bit_identically(data):
    _, dm = data
    uninterrupted = _synthetic()
    uninterrupted.train(_loader(dm), 4, progress=False)

    first = _synthetic()
    first.train(_loader(dm), 2, progress=False)
    state = first.state_dict()
    fresh = _synthetic(seed=123)
    assert not all(torch.equal(a, b) for a, b in zip(_weights(fresh).values(), _weights(first).values()))
    fresh.load_state_dict(state)
    fresh.train(_loader(dm), 2, progress=False)

    assert fresh.epoch == 4 and fresh.history == uninterrupted.history
    assert all(isinstance(r, EpochRecord) for r in fresh.history)
    for k, v in _weights(uninterrupted).items():
        assert torch.equal(v, _weights(fresh)[k]), k
    assert fresh.learning_rate == uninterrupted.learning_rate
    assert torch.equal(fresh.generator.get_state(), uninterrupted.generator.get_state())


def _fit_fields(model, dm, sims, steps=4):
    ds = HybridDataset(dm, sims, num_frames=steps + 1, num_predict_steps=steps, return_fields=True)
    return ds


def _physical(model, nu0=2.5):
    return PhysicalTrainer({"num_predict_steps": 4, "max_iterations": 3, "on_failure": "warn"}, model,
                           [learnable("viscosity", nu0)])


def _result_fields(r: FitResult) -> dict:
    d = dataclasses.asdict(r)
    d.pop("seconds")  # wall time: the one field two identical fits do not share
    return d


def test_physical_state_restores_into_a_fresh_trainer_and_continues_bit_identically(data):
    model, dm = data
    fits = _fit_fields(model, dm, [0, 1])
    with pytest.warns(UserWarning):  # 3 iterations per fit: not converged, which is the point here
        uninterrupted = _physical(model)
        uninterrupted.train(fits, 2, progress=False)
        first = _physical(model)
        first.train(fits, 1, progress=False)
        fresh = _physical(model, nu0=7.0)
        fresh.load_state_dict(first.state_dict())
        assert fresh.params == first.params and fresh.epoch == 1
        fresh.train(fits, 1, progress=False)
    assert fresh.params == uninterrupted.params
    assert [_result_fields(r) for r in fresh.history] == [_result_fields(r) for r in uninterrupted.history]


def _hybrid(model, seed=0):
    s = _synthetic(seed)
    p = PhysicalTrainer({"num_predict_steps": 3, "on_failure": "warn"}, model, [learnable("viscosity", 2.0)])
    cfg = HybridConfig(warmup_epochs=1, synthetic_epochs=1, physical_trajectories=2, synthetic_trajectories=2,
                       batch_size=4, seed=5)
    return HybridTrainer(cfg, s, p)


def test_hybrid_state_restores_into_a_fresh_trainer_and_continues_bit_identically(data):
    model, dm = data
    real = HybridDataset(dm, [0, 1], num_predict_steps=2)
    uninterrupted = _hybrid(model)
    uninterrupted.train(real, 2, progress=False)
    first = _hybrid(model)
    first.train(real, 1, progress=False)
    fresh = _hybrid(model, seed=9)
    fresh.load_state_dict(first.state_dict())
    fresh.train(real, 1, progress=False)
    assert fresh.cycle == 2 and fresh.history == uninterrupted.history
    assert fresh.physical.params == uninterrupted.physical.params
    for k, v in _weights(uninterrupted.synthetic).items():
        assert torch.equal(v, _weights(fresh.synthetic)[k]), k


def test_checkpoints_of_all_three_are_one_format_and_refuse_each_other(data, tmp_path):
    model, dm = data
    hybrid = _hybrid(model)
    trainers = {"SyntheticTrainer": hybrid.synthetic, "PhysicalTrainer": hybrid.physical, "HybridTrainer": hybrid}
    paths = {k: t.save_checkpoint(tmp_path / f"{k}.pt") for k, t in trainers.items()}
    for kind, path in paths.items():
        doc = torch.load(path, weights_only=True)
        assert (doc["format"], doc["version"], doc["kind"]) == ("hybridkit.checkpoint", 1, kind)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    blob = paths["HybridTrainer"].read_bytes()
    (tmp_path / "half.pt").write_bytes(blob[: len(blob) // 2])
    for kind, trainer in trainers.items():
        other = next(p for k, p in paths.items() if k != kind)
        with pytest.raises(CheckpointError, match=r"is a checkpoint of a .*, not of a " + kind):
            trainer.load_checkpoint(other)
        for bad in ("text.pt", "half.pt"):
            with pytest.raises(CheckpointError, match=r"cannot be read .* Fix"):
                trainer.load_checkpoint(tmp_path / bad)
        trainer.load_checkpoint(paths[kind])  # its own loads


def test_invalid_states_are_refused_and_nothing_changes(data, tmp_path):
    """All-NaN weights, a negative epoch or parameters outside their bounds: CheckpointError, and the
    trainer keeps the state it had."""
    model, _ = data
    synthetic = _synthetic()
    state = synthetic.state_dict()
    nan = {**state, "model": {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                              for k, v in state["model"].items()}}
    before = _weights(synthetic)
    for bad, pattern in ((nan, "weights are not finite"), ({**state, "epoch": -7}, "epoch counter >= 0")):
        path = tmp_path / "bad.pt"
        torch.save({"format": "hybridkit.checkpoint", "version": 1, "kind": "SyntheticTrainer", "state": bad}, path)
        with pytest.raises(CheckpointError, match=pattern):
            synthetic.load_checkpoint(path)
        assert synthetic.epoch == 0 and all(torch.equal(v, _weights(synthetic)[k]) for k, v in before.items())
    physical = _physical(model)
    state = physical.state_dict()
    with pytest.raises(CheckpointError, match=r"within \(0\.0001, 10\.0\)"):
        physical.restore({**state, "params": {"viscosity": torch.tensor(50.0, dtype=torch.float64)}})
    assert physical.params["viscosity"] == 2.5
    assert np.isfinite(physical.params["viscosity"])
