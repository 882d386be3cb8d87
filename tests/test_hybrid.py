"""HybridTrainer: the cycle mechanics (reversion, resume, errors) and the evidence that it helps."""

import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit.data import CacheManager, DataManager, HybridDataset, generate_dataset
from hybridkit.experiment import experiment_config, run_experiment
from hybridkit.models import UNet
from hybridkit.physics import Burgers, learnable
from hybridkit.training import HybridConfig, HybridTrainer, PhysicalTrainer, SyntheticTrainer


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    path = tmp_path_factory.mktemp("hy") / "real.h5"
    model = Burgers(GridSpec((32,), (100.0,)), viscosity=0.5)
    generate_dataset(model, path, num_sims=2, num_frames=11, seed=0, progress=False)
    return model, HybridDataset(DataManager(path), [0, 1], ["velocity"], num_predict_steps=2)


def _trainers(model, nu0=2.5, seed=0):
    torch.manual_seed(seed)
    net = UNet(in_channels=1, out_channels=1, ndim=1, features=4, levels=1)
    s = SyntheticTrainer({"num_predict_steps": 2, "learning_rate": 3e-3}, net)
    p = PhysicalTrainer({"num_predict_steps": 5, "on_failure": "warn"}, model, [learnable("viscosity", nu0)])
    return s, p


def _state(s, p):
    return {k: v.clone() for k, v in s.model.state_dict().items()}, dict(p.params), s.epoch


def test_resume_from_checkpoint_gives_the_uninterrupted_result(real, tmp_path):
    model, data = real
    cfg = HybridConfig(warmup_epochs=2, synthetic_epochs=2, physical_trajectories=3, batch_size=8, seed=1)
    s, p = _trainers(model)
    HybridTrainer(cfg, s, p, cache=CacheManager(tmp_path / "c1")).train(data, 2, progress=False)
    full = _state(s, p)

    s, p = _trainers(model)
    ckpt = tmp_path / "ckpt" / "hybrid.pt"
    HybridTrainer(cfg, s, p, cache=CacheManager(tmp_path / "c2")).train(data, 1, progress=False, checkpoint=ckpt)
    # a new process: fresh objects, state only from the checkpoint file
    s, p = _trainers(model, seed=123)
    resumed = HybridTrainer(cfg, s, p, cache=CacheManager(tmp_path / "c3"))
    resumed.load_checkpoint(ckpt)
    assert resumed.cycle == 1
    resumed.train(data, 1, progress=False, checkpoint=ckpt)
    again = _state(s, p)
    assert again[2] == full[2]
    assert again[1] == full[1]
    for k in full[0]:
        assert torch.equal(full[0][k], again[0][k]), k
    after = HybridTrainer(cfg, *_trainers(model, seed=7))
    after.load_checkpoint(ckpt)
    assert after.cycle == 2 and [r.cycle for r in after.history] == [1, 2]


def test_load_checkpoint_refuses_another_config(real, tmp_path):
    model, data = real
    s, p = _trainers(model)
    cfg = HybridConfig(warmup_epochs=1, synthetic_epochs=1, physical_trajectories=2)
    HybridTrainer(cfg, s, p).train(data, 1, progress=False, checkpoint=tmp_path / "hybrid.pt")
    s, p = _trainers(model)
    other = HybridTrainer(HybridConfig(warmup_epochs=1, synthetic_epochs=3, physical_trajectories=2), s, p)
    with pytest.raises(ValueError, match="another hybrid config"):
        other.load_checkpoint(tmp_path / "hybrid.pt")
    with pytest.raises(FileNotFoundError):
        HybridTrainer(cfg, s, p).load_checkpoint(tmp_path / "nothing-here.pt")


def test_worse_synthetic_update_is_reverted_to_what_the_next_epoch_starts_from(real):
    model, data = real
    s, p = _trainers(model, nu0=8.0)  # P generates with a viscosity 16x too high
    cfg = HybridConfig(warmup_epochs=15, synthetic_epochs=3, physical_trajectories=8, alpha_synthetic=50.0,
                       physical_epochs=0, batch_size=8)
    hybrid = HybridTrainer(cfg, s, p)
    hybrid.train(data, 0, progress=False)  # warm-up only
    before = _state(s, p)
    opt_before = {k: v.clone() for k, v in s.optimizer.state_dict()["state"][0].items() if torch.is_tensor(v)}
    (entry,) = hybrid.train(data, 1, progress=False)
    assert entry.synthetic.reverted, entry
    assert entry.synthetic.real_loss_after > entry.synthetic.real_loss_before
    after = _state(s, p)
    assert after[2] == before[2]  # epoch counter (and so the rollout schedule) restored
    for k in before[0]:
        assert torch.equal(before[0][k], after[0][k])
    opt_after = s.optimizer.state_dict()["state"][0]
    assert all(torch.equal(opt_before[k], opt_after[k]) for k in opt_before)
    held_out = hybrid._views(data).held_s  # reversion is judged on the windows the update did not train on
    assert np.isclose(hybrid._synthetic_real_loss(held_out), entry.synthetic.real_loss_before)


def test_worse_physical_update_is_reverted(real, tmp_path):
    model, data = real
    s, p = _trainers(model, nu0=0.5)  # P starts at the truth
    # S untrained (its residual output starts as the identity), its rollouts count everywhere with a
    # large weight: fitting them pulls the viscosity away from the truth -> worse on the real data
    cfg = HybridConfig(warmup_epochs=0, synthetic_epochs=0, physical_trajectories=2, alpha_physical=100.0,
                       interaction_region="all", synthetic_trajectories=4, target_weighting="fixed")
    hybrid = HybridTrainer(cfg, s, p)
    (entry,) = hybrid.train(data, 1, progress=False)
    assert entry.physical.generated_samples == 4
    assert entry.physical.reverted, entry
    assert p.params["viscosity"] == pytest.approx(0.5)
    assert p.last_result.params["viscosity"] != pytest.approx(0.5, rel=1e-2)


def test_generated_trajectory_shorter_than_window_is_an_error(real):
    model, data = real
    s, p = _trainers(model)
    hybrid = HybridTrainer(HybridConfig(warmup_epochs=0, physical_frames=2, physical_trajectories=2), s, p)
    with pytest.raises(ValueError, match="physical_frames"):
        hybrid.train(data, 1, progress=False)


@pytest.mark.slow
def test_hybrid_network_beats_synthetic_only_with_two_trajectories(tmp_path, monkeypatch):
    """Scenario (b) at small size: with two observed trajectories the physical model recovers the
    viscosity, and its rollouts from fresh initial states make the network generalise better."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    cfg = experiment_config({
        "mode": "compare", "cycles": 2,
        "data": {"pde": "Burgers", "pde_params": {"resolution": [32], "domain_size": [100.0], "dt": 0.2,
                                                  "viscosity": 0.5},
                 "num_train": 2, "num_test": 6, "num_frames": 11},
        "synthetic": {"model": "UNet", "model_params": {"features": 8, "levels": 1},
                      "trainer_params": {"learning_rate": 3e-3, "num_predict_steps": 1}, "batch_size": 8},
        "physical": {"initial": {"viscosity": 2.5}, "trainer_params": {"num_predict_steps": 5}},
        "hybrid": {"warmup_epochs": 10, "synthetic_epochs": 5, "physical_trajectories": 12, "batch_size": 8},
        "evaluate": {"steps": 5},
    })
    result = run_experiment(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    m = result["modes"]
    synthetic_only = m["synthetic"]["synthetic_rollout_error"][-1]
    hybrid = m["hybrid"]["synthetic_rollout_error"][-1]
    print(f"5-step rollout error: synthetic only {synthetic_only:.3g}, hybrid {hybrid:.3g}")
    assert m["hybrid"]["param_error"]["viscosity"] < 1e-3
    assert hybrid < 0.7 * synthetic_only


@pytest.mark.parametrize("network", [{"model": "UNet", "model_params": {"features": 8, "levels": 1}},
                                     {"model": "NeuralField", "model_params": {"width": 32, "features": 16}}],
                         ids=["stepper", "neural field"])
@pytest.mark.slow
def test_cooperation_does_no_harm_to_a_field_observed_on_half_the_domain(tmp_path, monkeypatch, network):
    """A (c)-type case at small size: a diffusivity field, data on the left half only. The network
    cannot know the unobserved half; the hybrid's field must not be worse than the physics-only fit
    (the old hybrid made it 3-5x worse), with either formulation of the network."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    cfg = experiment_config({
        "mode": "compare", "cycles": 2,
        "data": {"pde": "Diffusion", "pde_params": {"resolution": [32], "domain_size": [100.0], "dt": 1.0,
                                                    "diffusivity": "0.1 + 0.9 * sin(pi * x / L)**2"},
                 "num_train": 4, "num_test": 4, "num_frames": 11, "observed_region": [[0.0, 50.0]]},
        "synthetic": {**network, "trainer_params": {"learning_rate": 3e-3, "num_predict_steps": 2}, "batch_size": 8},
        "physical": {"initial": {"diffusivity": 0.5}, "bounds": {"diffusivity": [0.01, 5.0]},
                     "trainer_params": {"num_predict_steps": 5, "max_iterations": 150, "regularizer": "gradient",
                                        "reg_weight": 0.001}},
        "hybrid": {"warmup_epochs": 5, "synthetic_epochs": 3, "physical_trajectories": 4},
        "evaluate": {"steps": 5},
    })
    m = run_experiment(cfg, tmp_path / "run", progress=False, log=lambda m: None)["modes"]
    physical, hybrid = m["physical"]["param_error"]["diffusivity"], m["hybrid"]["param_error"]["diffusivity"]
    print(f"field error: physical only {physical:.4g}, hybrid {hybrid:.4g}")
    assert hybrid <= 1.05 * physical
    assert m["hybrid"]["param_error_unobserved"]["diffusivity"] <= 1.05 * m["physical"]["param_error_unobserved"][
        "diffusivity"]


@pytest.mark.slow
def test_a_parametric_coefficient_goes_through_every_stage_of_a_cycle(tmp_path, monkeypatch):
    """Two Gaussian bumps (7 numbers) as the learnable, written as plain data in the config: the
    physical model's generated trajectories use the field its numbers make (they were once given
    the numbers themselves), and cooperation leaves the field no worse than the physics-only fit."""
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "data"))
    bumps = {"type": "GaussianBumps", "num_bumps": 2}
    cfg = experiment_config({
        "mode": "compare", "cycles": 2,
        "data": {"pde": "Diffusion", "pde_params": {
            "resolution": [32], "domain_size": [100.0], "dt": 1.0,
            "diffusivity": {"parametrization": bumps, "theta": [0.2, 1.0, 30.0, 8.0, 0.6, 70.0, 12.0]}},
            "num_train": 3, "num_test": 2, "num_frames": 11},
        "synthetic": {"model": "ConvNet", "model_params": {"width": 8, "depth": 2},
                      "trainer_params": {"learning_rate": 3e-3, "num_predict_steps": 2}, "batch_size": 8},
        "physical": {"initial": {"diffusivity": {"parametrization": bumps,
                                                 "theta": [0.5, 0.5, 40.0, 15.0, 0.5, 60.0, 15.0]}},
                     "bounds": {"diffusivity": [0.01, 5.0]},
                     "trainer_params": {"num_predict_steps": 5, "max_iterations": 150}},
        "hybrid": {"warmup_epochs": 3, "synthetic_epochs": 2, "physical_trajectories": 2},
        "evaluate": {"steps": 5},
    })
    m = run_experiment(cfg, tmp_path / "run", progress=False, log=lambda m: None)["modes"]
    physical, hybrid = m["physical"]["param_error"]["diffusivity"], m["hybrid"]["param_error"]["diffusivity"]
    print(f"two bumps, field error: physical only {physical:.3g}, hybrid {hybrid:.3g}")
    assert physical < 0.05 and hybrid <= 1.05 * physical + 1e-3
    assert np.shape(m["hybrid"]["params"]["diffusivity"]) == (32,)  # reported as the field


class _SolverNetwork(torch.nn.Module):
    """A 'network' that steps the diffusion solver with a wrong diffusivity: skilled enough on
    noisy data to earn its targets full weight, and biased."""

    def __init__(self, solver):
        super().__init__()
        self.solver = solver
        self.unused = torch.nn.Parameter(torch.zeros(()))  # an optimiser needs something to hold

    def forward(self, x):  # (batch, 1, x) -> (batch, 1, x)
        from hybridkit.convert import to_field, to_tensor
        return to_tensor(self.solver.step(to_field(x[:, 0], self.solver.grid)))[:, None] + 0 * self.unused


@pytest.mark.parametrize("limit", [2.0, None], ids=["guarded", "unguarded"])
def test_a_biased_network_cannot_pull_a_number_the_data_pin_down(tmp_path, limit):
    """Diffusivity 0.5 observed with 5 % noise on every point; the network steps the solver with
    0.8. Its targets get full weight (its error is within the noise), so the combined fit moves the
    estimate towards 0.8 by many standard errors; with ``max_shift_std`` the data-only estimate is
    kept and the cycle says so."""
    from hybridkit.data import add_noise, write_trajectories
    from hybridkit.physics import Diffusion

    grid = GridSpec((32,), (100.0,))
    truth = Diffusion(grid, dt=1.0, diffusivity=0.5)
    traj = truth.rollout(truth.random_state(4, seed=2), 10)["temperature"]
    noisy = add_noise({"temperature": traj.numpy(("batch", "time", "x"))}, 0.05, seed=7)
    path = tmp_path / "noisy.h5"
    write_trajectories(truth, path, noisy, seed=0, overwrite=True)
    real = HybridDataset(DataManager(path), [0, 1, 2, 3], ["temperature"], num_predict_steps=2)
    synthetic = SyntheticTrainer({"num_predict_steps": 2}, _SolverNetwork(Diffusion(grid, dt=1.0, diffusivity=0.8)))
    physical = PhysicalTrainer({"num_predict_steps": 5, "on_failure": "warn"}, Diffusion(grid, dt=1.0),
                               [learnable("diffusivity", 1.5)])
    cfg = HybridConfig(warmup_epochs=0, synthetic_epochs=0, synthetic_trajectories=4, physical_trajectories=2,
                       batch_size=8, max_shift_std=limit)
    record, = HybridTrainer(cfg, synthetic, physical, cache=CacheManager(tmp_path / "c")).train(real, 1, progress=False)
    d = physical.params["diffusivity"]
    data_only = physical.history[-2]  # the cycle's first fit: the observed windows alone
    moved = abs(physical.history[-1].params["diffusivity"] - data_only.params["diffusivity"])
    print(f"data-only {data_only.params['diffusivity']:.4f} +- {data_only.std['diffusivity']:.4f}, "
          f"with the network's targets moved by {moved:.4f}; kept {d:.4f}")
    assert record.physical.target_weight > 0.5 and moved > 5 * data_only.std["diffusivity"]
    if limit is None:
        assert not record.physical.pull_rejected and d > 0.55
    else:
        assert record.physical.pull_rejected and d == data_only.params["diffusivity"] and abs(d - 0.5) < 0.1
