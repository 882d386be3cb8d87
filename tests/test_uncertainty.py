"""Uncertainty and identifiability of a physical fit: calibrated intervals, constant states, fields.

Standard errors are Gauss-Newton / Laplace at the optimum with the noise level estimated from the
residual (``hybridkit/training/_uncertainty.py``); a number whose standard deviation exceeds a
quarter of its range is reported as not identifiable.
"""
import warnings

import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit.convert import to_field
from hybridkit.data import ObservationMask, add_noise, spatial_mask
from hybridkit.physics import Burgers, Diffusion, GaussianBumps, learnable
from hybridkit.training import FitError, FitResult, FitWarning, PhysicalTrainer

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")


@pytest.mark.slow
def test_95_percent_intervals_of_a_viscosity_cover_the_truth_over_20_noise_draws():
    """Measured: 18 / 20 (z-scores' std 0.98) on these data; 40 / 40 on another initial state."""
    grid = GridSpec((32,), (50.0,))
    model = Burgers(grid, dt=0.5, viscosity=0.5)
    traj = model.rollout(model.random_state(2, seed=0), 6)["velocity"]
    covered, z = 0, []
    for draw in range(20):
        noisy = add_noise({"velocity": traj.time[1:]}, 0.05, seed=100 + draw)
        trainer = PhysicalTrainer({"num_predict_steps": 6}, model, [learnable("viscosity", 2.0)])
        result = trainer.fit({"velocity": traj.time[0]}, noisy, progress=False)
        lo, hi = result.interval("viscosity", 0.95)
        covered += lo <= 0.5 <= hi
        z.append((result.params["viscosity"] - 0.5) / result.std["viscosity"])
        assert result.status == "converged" and 0 < result.std["viscosity"] < 0.1
    print(f"\ncoverage {covered}/20, z-scores: mean {np.mean(z):.2f}, std {np.std(z):.2f}")
    assert covered >= 17  # >= 85 %
    assert 0.5 < np.std(z) < 1.6  # neither over- nor under-confident by much


def test_a_fit_to_constant_states_is_not_identifiable_never_converged():
    grid = GridSpec((32,), (100.0,))
    for model, name in ((Burgers(grid, viscosity=2.0), "velocity"), (Diffusion(grid, diffusivity=0.5), "temperature")):
        flat = {name: to_field(np.full((2, 32), 0.7, dtype=np.float32), grid)}
        traj = model.rollout(flat, 4)[name]
        trainer = PhysicalTrainer({"num_predict_steps": 4}, model, [learnable(model.param_names[0], 1.0)])
        with pytest.raises(FitError, match="not_identifiable.*do not constrain " + model.param_names[0]) as info:
            trainer.fit({name: traj.time[0]}, {name: traj.time[1:]}, progress=False)
        assert info.value.result.unidentified == (model.param_names[0],)
        assert trainer.params[model.param_names[0]] == 1.0  # nothing adopted
        trainer.config.on_failure = "warn"
        with pytest.warns(FitWarning, match="not_identifiable"):
            assert trainer.fit({name: traj.time[0]}, {name: traj.time[1:]}, progress=False).status == "not_identifiable"


@pytest.fixture(scope="module")
def bumps_data():
    """Heat with a diffusivity of two Gaussian bumps (base 0.2; 1.0 at x=30, width 8; 0.6 at x=70, width 12)."""
    grid = GridSpec((32,), (100.0,))
    bumps = GaussianBumps(2)
    true = np.array([0.2, 1.0, 30.0, 8.0, 0.6, 70.0, 12.0])
    model = Diffusion(grid, dt=1.0, diffusivity=bumps.evaluate_numpy(true, grid))
    traj = model.rollout(model.random_state(4, seed=1), 10)["temperature"]
    guess = learnable("diffusivity", [0.5, 0.5, 40.0, 15.0, 0.5, 60.0, 15.0], parametrization=bumps)
    return model, bumps.evaluate_numpy(true, grid), traj, guess


@pytest.mark.slow
def test_two_gaussian_bumps_from_full_observations(bumps_data):
    model, field, traj, guess = bumps_data
    trainer = PhysicalTrainer({"num_predict_steps": 10, "max_iterations": 300}, model, [guess])
    result = trainer.fit({"temperature": traj.time[0]}, {"temperature": traj.time[1:]}, progress=False)
    err = np.linalg.norm(trainer.coefficients["diffusivity"] - field) / np.linalg.norm(field)
    print(f"\ntwo bumps, full observation: field rel L2 {err:.2e} ({result.evaluations} evals)")
    assert result.status == "converged" and err < 0.02
    assert result.params["diffusivity"].shape == (7,) and result.covariance.shape == (7, 7)


@pytest.mark.slow
def test_two_gaussian_bumps_from_a_quarter_of_the_domain_come_with_their_uncertainty(bumps_data):
    """Only x in [0, 25) observed (1 % noise): the bump at 30 is recovered, the one at 70 cannot be
    (heat diffuses ~3 units in 10 steps): the fit says so and its band is wide there."""
    model, field, traj, guess = bumps_data
    x = model.grid.coordinates()[0]
    observed = x < 25
    noisy = add_noise({"temperature": traj.time[1:]}, 0.01, seed=3)
    trainer = PhysicalTrainer({"num_predict_steps": 10, "max_iterations": 300, "on_failure": "warn"}, model, [guess],
                              observation=ObservationMask(spatial=spatial_mask(model.grid, region=[(0.0, 25.0)])))
    with pytest.warns(FitWarning, match="not_identifiable"):
        result = trainer.fit({"temperature": traj.time[0]}, noisy, progress=False)
    fitted, band = trainer.coefficients["diffusivity"], result.field_std["diffusivity"]
    err = np.linalg.norm(fitted - field) / np.linalg.norm(field)
    covered = np.mean(np.abs(fitted - field) <= 1.96 * band)
    print(f"\nquarter observed: field rel L2 {err:.3f}; 95 % band covers the truth in {covered:.0%} of cells; band "
          f"mean {band[observed].mean():.3g} observed / {band[~observed].mean():.3g} elsewhere; "
          f"not identifiable: {result.unidentified}")
    assert any(name.endswith("_1 of 'diffusivity'") for name in result.unidentified)  # the far bump
    assert covered >= 0.85 and band[~observed].mean() > 3 * band[observed].mean()
    near = (x > 20) & (x < 35)  # around the observed bump
    assert np.abs(fitted - field)[near].max() < 0.1


@pytest.mark.slow
def test_a_free_field_half_observed_names_the_cells_the_data_do_not_constrain():
    grid = GridSpec((32,), (100.0,))
    x = grid.coordinates()[0]
    model = Diffusion(grid, dt=1.0, diffusivity=np.sin(np.pi * x / 100.0) ** 2)
    traj = model.rollout(model.random_state(4, seed=1), 10)["temperature"]
    obs = ObservationMask(spatial=spatial_mask(grid, region=[(0.0, 50.0)]))
    trainer = PhysicalTrainer({"num_predict_steps": 10, "max_iterations": 300, "on_failure": "warn"}, model,
                              [learnable("diffusivity", 0.3, kind="field")], observation=obs)
    result = trainer.fit({"temperature": traj.time[0]}, {"temperature": traj.time[1:]}, progress=False)
    loose = result.unconstrained["diffusivity"]
    assert loose.any() and not loose[x < 50].any()  # only unobserved cells are unconstrained
    assert "not constrained by the data" in result.message
    std = result.std["diffusivity"]
    assert np.median(std[x >= 50]) > 100 * np.median(std[x < 50])


def test_fit_result_with_uncertainty_round_trips_through_plain_data(bumps_data):
    model, _, traj, guess = bumps_data
    trainer = PhysicalTrainer({"num_predict_steps": 4, "max_iterations": 5, "suppress_convergence": True}, model,
                              [guess])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainer.fit({"temperature": traj.time[0]}, {"temperature": traj.time[1:5]}, progress=False)
    again = FitResult.from_dict(result.to_dict())
    assert np.array_equal(again.covariance, result.covariance) and again.unidentified == result.unidentified
    assert np.array_equal(again.std["diffusivity"], result.std["diffusivity"])
    assert again.noise_std == result.noise_std and again.substeps == result.substeps
    assert again.bounds["diffusivity"][0].shape == (7,)  # per-component bounds of the parametric field
