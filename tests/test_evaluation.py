"""evaluation: network rollouts paired with the truth, exact on known maps; vorticity against calculus."""
import numpy as np
import pytest
import torch
from torch import nn

from hybridkit import GridSpec
from hybridkit.convert import to_field, to_tensor
from hybridkit.data import DataManager, generate_dataset, write_trajectories
from hybridkit.evaluation import Rollout, rollout_dataset, rollout_solver, vorticity
from hybridkit.physics import Burgers, Diffusion, NavierStokes2D

torch.set_num_threads(1)

GRID = GridSpec((16,), (16.0,))


@pytest.fixture
def seed():
    return 0


class Shift(nn.Module):
    """``u -> roll(u, 1)`` along x on the dynamic channel: exactly the dynamics of ``shift_file``."""

    def forward(self, x):
        return torch.roll(x[:, :1], 1, -1)


@pytest.fixture
def shift_file(tmp_path, seed):
    """Trajectories ``u_t = roll(u_0, t)``: 3 sims x 6 frames, written in the dataset format."""
    u0 = np.random.default_rng(seed).standard_normal((3, 16)).astype(np.float32)
    frames = np.stack([np.roll(u0, t, -1) for t in range(6)], 1)
    return write_trajectories(Burgers(GRID), tmp_path / "shift.h5", {"velocity": frames})


def test_exact_network_has_zero_error_and_frames_match_the_file(shift_file):
    dm = DataManager(shift_file)
    r = rollout_dataset(Shift(), dm, [2, 0])
    assert isinstance(r, Rollout) and r.sims == (2, 0) and r.num_steps == 5 and r.dt == dm.dt
    assert r.truth["velocity"].shape == r.prediction["velocity"].shape == (2, 6, 16)
    np.testing.assert_array_equal(r.truth["velocity"][0], dm.load(2, "velocity"))
    np.testing.assert_array_equal(r.prediction["velocity"], r.truth["velocity"])
    assert r.errors().shape == (2, 5) and np.all(r.errors() == 0)


def test_identity_network_equals_the_baseline_and_shorter_rollouts(shift_file):
    dm = DataManager(shift_file)
    r = rollout_dataset(lambda x: x, dm, [0, 1], num_steps=3)
    assert r.truth["velocity"].shape == (2, 4, 16)
    np.testing.assert_array_equal(r.prediction["velocity"][:, 3], r.truth["velocity"][:, 0])
    np.testing.assert_allclose(r.errors(), r.baseline_errors())
    # u_0 vs roll(u_0, k): ||roll(u, k) - u|| / ||u||, by hand
    u = r.truth["velocity"][0, 0].astype(np.float64)
    expected = [np.linalg.norm(u - np.roll(u, k)) / np.linalg.norm(u) for k in (1, 2, 3)]
    np.testing.assert_allclose(r.baseline_errors()[0], expected, rtol=1e-6)


def test_too_many_steps_says_what_the_dataset_holds(shift_file):
    with pytest.raises(ValueError, match="holds 6 frames"):
        rollout_dataset(Shift(), DataManager(shift_file), [0], num_steps=6)


def test_static_channels_are_fed_and_not_predicted(tmp_path):
    grid = GridSpec((8,), (8.0,))
    path = generate_dataset(Diffusion(grid, dt=0.1, diffusivity=np.linspace(0.1, 0.5, 8)), tmp_path / "d.h5",
                            num_sims=2, num_frames=4, progress=False)
    seen = []

    def net(x):
        seen.append(x.shape[1])
        return x[:, :1] * 0.5

    r = rollout_dataset(net, DataManager(path), [0, 1], field_names=["temperature", "diffusivity"])
    assert seen == [2, 2, 2] and set(r.prediction) == {"temperature"}
    np.testing.assert_allclose(r.prediction["temperature"][:, 3], 0.125 * r.truth["temperature"][:, 0], rtol=1e-6)


def test_model_mode_is_restored(shift_file):
    net = nn.Sequential(nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular"))
    net.train()
    rollout_dataset(net, DataManager(shift_file), [0])
    assert net.training


def test_solver_as_network_reproduces_the_solver():
    """A 'network' that calls the solver's own step predicts the truth to float round-off."""
    pde = Burgers(GridSpec((32,), (100.0,)), dt=0.2, viscosity=0.5)

    def solver_net(x):  # (batch, 1, x) -> (batch, 1, x)
        return to_tensor(pde.step(to_field(x[:, 0], pde.grid)))[:, None]

    state = pde.random_state(3, seed=1)
    r = rollout_solver(solver_net, pde, state, 5)
    direct = to_tensor(pde.rollout(state, 5)["velocity"], ("batch", "time")).numpy()
    np.testing.assert_array_equal(r.truth["velocity"], direct)
    assert r.errors().max() < 1e-5 and r.baseline_errors()[:, -1].min() > 1e-3
    # initial states as plain arrays give the same truth
    r2 = rollout_solver(lambda x: x, pde, {"velocity": direct[:, 0]}, 5)
    np.testing.assert_array_equal(r2.truth["velocity"], direct)
    np.testing.assert_allclose(r2.errors(), r2.baseline_errors())


def test_solver_rollout_of_a_vector_field_keeps_components_in_order():
    pde = NavierStokes2D(GridSpec((16, 16), (2 * np.pi, 2 * np.pi)), dt=0.05, substeps=1)
    swap = lambda x: x.flip(1)  # noqa: E731  (u, v) -> (v, u)
    r = rollout_solver(swap, pde, pde.random_state(2, seed=0), 2)
    u0 = r.truth["velocity"][:, 0]
    assert r.prediction["velocity"].shape == (2, 3, 16, 16, 2)
    np.testing.assert_array_equal(r.prediction["velocity"][:, 1], u0[..., ::-1])
    np.testing.assert_array_equal(r.prediction["velocity"][:, 2], u0)


def test_vorticity_of_shear_waves_matches_the_discrete_derivative():
    grid = GridSpec((32, 16), (2 * np.pi, np.pi))
    x, y = grid.coordinates()
    kx, ky = 2.0, 4.0
    u = np.stack([np.cos(ky * y), np.sin(kx * x)], -1)  # w = kx cos(kx x) + ky sin(ky y)
    sinc = lambda k, d: np.sin(k * d) / (k * d)  # noqa: E731  central difference of a wave
    dx, dy = grid.dx
    expected = kx * sinc(kx, dx) * np.cos(kx * x) + ky * sinc(ky, dy) * np.sin(ky * y)
    np.testing.assert_allclose(vorticity(u[None], grid)[0], expected, atol=1e-12)


def test_vorticity_on_a_closed_box_is_exact_for_linear_flow():
    grid = GridSpec((8, 8), (1.0, 1.0), boundary="zero")
    x, y = grid.coordinates()
    u = np.stack([3.0 * y, -2.0 * x], -1)  # w = -2 - 3
    np.testing.assert_allclose(vorticity(torch.as_tensor(u), grid), -5.0, atol=1e-12)
    with pytest.raises(ValueError, match="2D velocity"):
        vorticity(u[..., :1], grid)
