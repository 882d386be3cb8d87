"""Joint initial states (errors-in-variables): each window's initial state fitted with the coefficients."""
import numpy as np
import pytest
import torch
from phiml import math

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit.data import ObservationMask, add_noise, spatial_mask
from hybridkit.physics import Burgers, learnable
from hybridkit.training import PhysicalConfig, PhysicalTrainer

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
GRID = GridSpec((48,), (75.0,))
NU = 0.5


def fit(model, initial, targets, joint, **kw):
    trainer = PhysicalTrainer({"num_predict_steps": 10, "fit_initial_state": joint, "on_failure": "warn"}, model,
                              [learnable("viscosity", 2.0)], **kw)
    return trainer, trainer.fit(initial, targets, progress=False)


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_in_the_initial_states_no_longer_biases_the_viscosity(seed):
    """10 % noise on every frame, the initial ones included. Measured (seeds 0, 1, 2): plain fit 0.55 /
    0.52 / 0.45 relative error, outside its own 95 % interval; joint 0.15 / 0.15 / 0.20, inside it."""
    model = Burgers(GRID, dt=0.2, viscosity=NU)
    traj = model.rollout(model.random_state(4, seed=seed), 10)["velocity"]
    noisy = add_noise(traj, 0.10, seed=seed + 10)
    initial, targets = {"velocity": noisy.time[0]}, {"velocity": noisy.time[1:]}
    _, plain = fit(model, initial, targets, False)
    trainer, joint = fit(model, initial, targets, True)
    err_plain, err_joint = (abs(r.params["viscosity"] / NU - 1) for r in (plain, joint))
    print(f"\nseed {seed}: plain {err_plain:.3f}, joint {err_joint:.3f} ({joint.evaluations} evals, {joint.seconds:.1f} s)")
    assert joint.status == "converged" and err_joint < 0.25 and err_joint < 0.5 * err_plain
    lo, hi = joint.interval("viscosity")
    assert lo <= NU <= hi  # its standard error accounts for the fitted states
    assert joint.num_samples == 4 and len(trainer.history) == 1  # one batched problem, not one per window
    states = joint.initial_states["velocity"]
    clean = traj.time[0].values.numpy(["batch", "x"])
    observed = noisy.time[0].values.numpy(["batch", "x"])
    assert states.shape == (4, 48)
    assert np.sqrt(np.mean((states - clean) ** 2)) < 0.6 * np.sqrt(np.mean((observed - clean) ** 2))  # denoised
    assert joint.initial_state_loss > 0


@pytest.mark.slow
def test_unobserved_cells_of_an_initial_state_are_left_to_the_dynamics():
    """Half the domain observed; the initial states' unobserved half is garbage (zeros). The plain fit
    rolls the garbage into the observed half; the joint fit frees those cells (they have no misfit term)."""
    model = Burgers(GRID, dt=0.2, viscosity=NU)
    traj = model.rollout(model.random_state(2, seed=4), 10)["velocity"]
    mask = spatial_mask(GRID, region=[(0.0, 37.5)])
    obs = ObservationMask(spatial=mask)
    u0 = traj.time[0].values * math.tensor(mask.astype(np.float32), GRID.spatial_shape)
    _, plain = fit(model, {"velocity": u0}, {"velocity": traj.time[1:].values}, False, observation=obs)
    _, joint = fit(model, {"velocity": u0}, {"velocity": traj.time[1:].values}, True, observation=obs)
    assert abs(plain.params["viscosity"] / NU - 1) > 0.2  # measured 0.41
    assert abs(joint.params["viscosity"] / NU - 1) < 0.01  # measured 3e-4
    states, true = joint.initial_states["velocity"], traj.time[0].values.numpy(["batch", "x"])
    assert np.abs(states[:, mask] - true[:, mask]).max() < 0.01  # the observed cells stay put


def test_initial_state_options_are_checked_and_default_off():
    assert PhysicalConfig().fit_initial_state is False and PhysicalConfig().initial_state_weight == 1.0
    with pytest.raises(ConfigError, match="initial_state_weight >= 0"):
        PhysicalTrainer({"initial_state_weight": -1.0}, Burgers(GRID), [learnable("viscosity", 1.0)])
    with pytest.raises(ConfigError, match="fit_initial_state.* to be true or false"):
        PhysicalTrainer({"fit_initial_state": "yes"}, Burgers(GRID), [learnable("viscosity", 1.0)])
