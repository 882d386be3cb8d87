"""PhysicalTrainer: coefficient recovery against known answers, partial observations, failures."""
import json
import warnings

import numpy as np
import pytest
import torch
from phiml import math

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit.data import ObservationMask, add_noise, masked_mse, spatial_mask, temporal_mask
from hybridkit.physics import AdvectionDiffusion, Burgers, Diffusion, LearnableParam, learnable
from hybridkit.training import FitError, FitResult, FitWarning, PhysicalConfig, PhysicalTrainer
from hybridkit.physics import smoothness_penalty as regularizer

torch.set_num_threads(1)

GRID = GridSpec((64,), (100.0,))
NU = 0.5


@pytest.fixture
def seed():
    return 0


@pytest.fixture(scope="module")
def burgers_data():
    """Two clean Burgers trajectories, 10 steps: (model, initial (batch, x), targets (batch, time, x))."""
    model = Burgers(GRID, viscosity=NU)
    traj = model.rollout(model.random_state(2, seed=0), 10)["velocity"]
    return model, {"velocity": traj.time[0]}, {"velocity": traj.time[1:]}


def items_of(initial, targets):
    """Split a batch into the data items a HybridDataset(return_fields=True) yields."""
    n = initial["velocity"].shape.get_size("batch")
    return [({"velocity": initial["velocity"].batch[i]}, {"velocity": targets["velocity"].batch[i]})
            for i in range(n)]


def rel_err(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- the seed's usage
def test_seed_usage_block_runs(tmp_path):
    from phi.math import math as phimath  # noqa: F401  (the seed's import line works)

    from hybridkit.data import DataManager, HybridDataset, generate_dataset
    from hybridkit.models import ModelRegistry
    from hybridkit.physics import learnable
    from hybridkit.training.physical import PhysicalTrainer

    config = {
        "model": {"physical": {"resolution": [64], "domain_size": [100.0], "dt": 0.1, "viscosity": NU}},
        "data": {"fields": ["velocity"]},
        "trainer_params": {"num_predict_steps": 10, "method": "L-BFGS-B", "abs_tol": 1e-8,
                           "max_iterations": 100, "suppress_convergence": False},
    }
    path = generate_dataset(Burgers(GRID, viscosity=NU), tmp_path / "burgers.h5", num_sims=2,
                            num_frames=11, seed=0, progress=False)

    # 1. Create model and parameters externally
    model = ModelRegistry.get_physical_model("BurgersPDE", config=config["model"]["physical"])
    learnable_params = [
        learnable("viscosity", 0.01),  # the seed's pseudo-code: math.tensor(0.01, name="viscosity")
    ]
    # 2. Create trainer with model and params
    trainer = PhysicalTrainer(config, model, learnable_params)
    # 3. Create data externally (using HybridDataset with return_fields=True)
    data_manager = DataManager(path)
    dataset = HybridDataset(
        data_manager=data_manager,
        sim_indices=[0],
        field_names=config["data"]["fields"],
        num_frames=config["trainer_params"]["num_predict_steps"] + 1,
        num_predict_steps=config["trainer_params"]["num_predict_steps"],
        return_fields=True,
        use_sliding_window=True,
    )
    # 4. Train with explicit data
    run = trainer.train(data_source=dataset, num_epochs=1, progress=False)
    assert run[0].status == "converged"
    assert abs(trainer.params["viscosity"] / NU - 1) < 1e-3
    # 5. Reuse trainer with different data: it continues from the estimate
    augmented_dataset = HybridDataset(data_manager=data_manager, sim_indices=[1], num_predict_steps=10,
                                      num_frames=11, return_fields=True, use_sliding_window=True)
    run2 = trainer.train(data_source=augmented_dataset, num_epochs=1, progress=False)
    assert run2[0].initial_loss < 1e-3 * run[0].initial_loss
    assert abs(trainer.params["viscosity"] / NU - 1) < 1e-3
    assert len(trainer.history) == 2 and trainer.epoch == 2


def test_field_loader_batches_are_fitted_as_one_problem(tmp_path):
    from hybridkit.data import DataManager, HybridDataset, generate_dataset, make_loader

    path = generate_dataset(Burgers(GRID, viscosity=NU), tmp_path / "b.h5", num_sims=2, num_frames=11,
                            seed=1, progress=False)
    dataset = HybridDataset(DataManager(path), sim_indices=[0, 1], num_predict_steps=5, return_fields=True)
    loader = make_loader(dataset, batch_size=4, shuffle=True, seed=0)
    trainer = PhysicalTrainer({"num_predict_steps": 5}, Burgers(GRID), [learnable("viscosity", 0.1)])
    run = trainer.train(loader, num_epochs=1, progress=False)
    assert run[0].num_samples == len(dataset) == 12
    assert abs(trainer.params["viscosity"] / NU - 1) < 1e-3


# ----------------------------------------------------------------------------- scalar recovery
@pytest.mark.parametrize("guess", [NU * 5, NU / 5])
def test_scalar_viscosity_recovered_from_5x_off(burgers_data, guess):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, [learnable("viscosity", guess)])
    run = trainer.train(items_of(initial, targets), num_epochs=1, progress=False)
    result = run[0]
    err = abs(trainer.params["viscosity"] / NU - 1)
    print(f"\nscalar viscosity from {guess}: rel err {err:.2e}, {result.iterations} it, "
          f"{result.evaluations} evals, {result.seconds:.2f} s")
    assert err < 1e-3
    assert result.status == "converged" and result.final_loss < 1e-4 * result.initial_loss
    assert result.num_samples == 2 and len(run) == 1  # one problem, not one per sample
    assert result.iterations >= 1 and result.evaluations >= result.iterations
    assert result.seconds < 30


def test_train_sample_returns_params_and_loss(burgers_data):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, {"viscosity": 1.0})
    params, loss = trainer._train_sample(*items_of(initial, targets)[0])
    assert abs(params["viscosity"] / NU - 1) < 1e-3 and loss < 1e-8
    assert trainer.params == params


def test_max_samples_takes_evenly_spaced_items(burgers_data):
    model, initial, targets = burgers_data
    items = items_of(initial, targets) * 3
    trainer = PhysicalTrainer({"num_predict_steps": 10, "max_samples": 3}, model, [learnable("viscosity", 1.0)])
    run = trainer.train(items, 1, progress=False)
    assert run[0].num_samples == 3


def test_temporal_mask_few_frames_still_recovers(burgers_data):
    model, initial, targets = burgers_data
    obs = ObservationMask(temporal=temporal_mask(10, every=5))  # frames 5 and 10 only
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, [learnable("viscosity", 2.5)], observation=obs)
    result = trainer.fit(initial, targets, progress=False)
    assert result.status == "converged" and abs(trainer.params["viscosity"] / NU - 1) < 1e-3


def test_per_sample_masks_are_combined(burgers_data):
    model, initial, targets = burgers_data
    (i0, t0), (i1, t1) = items_of(initial, targets)
    left = ObservationMask(spatial=spatial_mask(GRID, region=[(0.0, 50.0)]))
    late = ObservationMask(temporal=temporal_mask(10, frames=[9]))
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, [learnable("viscosity", 2.5)])
    init, tgt, w = trainer._gather([(i0, t0, left), (i1, t1, late)])
    assert w.shape.sizes == (2, 10, 64) and float(math.sum(w, w.shape)) == 10 * 32 + 64
    result = trainer.fit_items([(i0, t0, left), (i1, t1, late)])
    assert result.status == "converged" and abs(trainer.params["viscosity"] / NU - 1) < 1e-3


def test_recovery_with_5_percent_noise_is_bounded():
    model = Burgers(GRID, viscosity=NU)
    traj = model.rollout(model.random_state(4, seed=0), 20)["velocity"]
    noisy = add_noise({"velocity": traj.time[1:]}, 0.05, seed=0)
    trainer = PhysicalTrainer({"num_predict_steps": 20}, model, [learnable("viscosity", 2.5)])
    result = trainer.fit({"velocity": traj.time[0]}, noisy, progress=False)
    err = abs(trainer.params["viscosity"] / NU - 1)
    print(f"\n5% noise (4 trajectories x 20 steps): viscosity rel err {err:.3e}")
    assert result.status == "converged"
    assert err < 0.1


def test_vector_velocity_and_linear_diffusivity_recovered_together():
    grid = GridSpec((64,), (100.0,))
    model = AdvectionDiffusion(grid, dt=0.5, velocity=(1.0,), diffusivity=0.1, substeps=1)  # user-set: clamped
    traj = model.rollout(model.random_state(2, seed=0), 10)["concentration"]
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model,
                              [learnable("velocity", np.array([0.3])), learnable("diffusivity", 0.5)])
    result = trainer.fit({"concentration": traj.time[0]}, {"concentration": traj.time[1:]}, progress=False)
    assert result.status == "converged"
    assert trainer.params["velocity"] == pytest.approx([1.0], rel=1e-4)
    assert trainer.params["diffusivity"] == pytest.approx(0.1, rel=1e-3)
    # diffusivity's range (0, 10) is linear; its upper bound was lowered to the stability limit
    assert result.bounds["diffusivity"][1] < 10 and result.bounds["velocity"] == (-10.0, 10.0)
    again = model.rollout({"concentration": traj.time[0]}, 10, trainer.param_tensors())["concentration"]
    assert float(math.max(abs(again.values - traj.values), again.shape)) < 1e-4


def test_2d_burgers_with_a_spatial_mask():
    grid = GridSpec((16, 16), (20.0, 20.0))
    model = Burgers(grid, dt=0.1, viscosity=0.3)
    traj = model.rollout(model.random_state(2, seed=0), 5)["velocity"]
    obs = ObservationMask(spatial=spatial_mask(grid, region=[(0.0, 10.0), (0.0, 20.0)]))
    trainer = PhysicalTrainer({"num_predict_steps": 5}, model, [learnable("viscosity", 1.0)], observation=obs)
    result = trainer.fit({"velocity": traj.time[0]}, {"velocity": traj.time[1:]}, progress=False)
    assert result.status == "converged" and trainer.params["viscosity"] == pytest.approx(0.3, rel=1e-3)


# ----------------------------------------------------------------------------- field recovery
@pytest.fixture(scope="module")
def diffusion_data():
    grid = GridSpec((32,), (100.0,))
    x = grid.coordinates()[0]
    true = np.sin(np.pi * x / 100.0) ** 2
    model = Diffusion(grid, dt=1.0, diffusivity=true)
    traj = model.rollout(model.random_state(4, seed=1), 20)["temperature"]
    return model, true, {"temperature": traj.time[0]}, {"temperature": traj.time[1:]}


@pytest.mark.slow
def test_field_diffusivity_recovered_from_full_observations(diffusion_data):
    model, true, initial, targets = diffusion_data
    trainer = PhysicalTrainer({"num_predict_steps": 20, "max_iterations": 500}, model,
                              [learnable("diffusivity", 0.3, kind="field")])
    result = trainer.fit(initial, targets, progress=False)
    err = rel_err(trainer.params["diffusivity"], true)
    print(f"\nfield diffusivity, full observation: rel L2 {err:.2e} ({result.iterations} it, {result.seconds:.1f} s)")
    assert result.status == "converged"
    assert err < 1e-2


@pytest.mark.slow
def test_field_diffusivity_half_domain_is_reported(diffusion_data):
    """Half the domain observed: the observed half is recovered, the other half is not (reported)."""
    model, true, initial, targets = diffusion_data
    x = model.grid.coordinates()[0]
    left = x < 50
    obs = ObservationMask(spatial=spatial_mask(model.grid, region=[(0.0, 50.0)]))
    trainer = PhysicalTrainer({"num_predict_steps": 20, "max_iterations": 500, "on_failure": "warn"}, model,
                              [learnable("diffusivity", 0.3, kind="field")], observation=obs)
    result = trainer.fit(initial, targets, progress=False)
    p = trainer.params["diffusivity"]
    err_all, err_obs, err_un = rel_err(p, true), rel_err(p[left], true[left]), rel_err(p[~left], true[~left])
    print(f"\nhalf domain observed: rel L2 {err_all:.3f} (observed half {err_obs:.2e}, "
          f"unobserved half {err_un:.3f}); status {result.status}")
    assert err_obs < 0.05 < err_un  # the mask really hides the right half


def test_regularizer_values_match_discrete_formulas():
    grid = GridSpec((32,), (10.0,))
    model = Diffusion(grid, diffusivity=np.ones(32))
    x = grid.coordinates()[0]
    k, dx = 2 * np.pi / 10.0, grid.dx[0]
    p = math.tensor(torch.as_tensor(np.sin(k * x)), grid.spatial_shape)
    kd2 = (2 * np.sin(k * dx / 2) / dx) ** 2  # the discrete wavenumber squared
    assert float(regularizer(p, "gradient", model)) == pytest.approx(kd2 / 2, rel=1e-5)
    assert float(regularizer(p, "laplacian", model)) == pytest.approx(kd2**2 / 2, rel=1e-5)
    assert float(regularizer(p * 0 + 3.0, "tv", model)) == pytest.approx(1e-6, rel=1e-3)


def test_regularized_field_fit_reports_reg_loss(diffusion_data):
    model, true, initial, targets = diffusion_data
    trainer = PhysicalTrainer({"num_predict_steps": 5, "regularizer": "gradient", "reg_weight": 1e-4,
                               "max_iterations": 30, "suppress_convergence": True}, model,
                              [learnable("diffusivity", 0.3, kind="field")])
    sub = {"temperature": targets["temperature"].time[:5]}
    result = trainer.fit(initial, sub, progress=False)
    assert result.reg_loss > 0 and result.final_loss < result.initial_loss


# ----------------------------------------------------------------------------- failures
def test_absurd_time_step_is_diverged_never_success(burgers_data):
    _, initial, targets = burgers_data
    absurd = Burgers(GRID, dt=50.0, viscosity=NU, on_unstable="ignore", substeps=1)
    trainer = PhysicalTrainer({"num_predict_steps": 10}, absurd, [learnable("viscosity", 2.5)])
    with pytest.raises(FitError) as info:
        trainer.fit(initial, targets, progress=False)
    assert info.value.result.status == "diverged" and "not finite" in info.value.result.message
    assert trainer.params["viscosity"] == 2.5  # nothing adopted
    trainer.config.on_failure = "warn"
    with pytest.warns(FitWarning, match="diverged"):
        result = trainer.fit(initial, targets, progress=False)
    assert result.status == "diverged" and trainer.params["viscosity"] == 2.5


def test_range_excluding_the_truth_is_not_converged(burgers_data):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 10, "on_failure": "warn"}, model,
                              [learnable("viscosity", 5.0, bounds=(4.0, 10.0))])
    with pytest.warns(FitWarning, match="not_converged"):
        result = trainer.fit(initial, targets, progress=False)
    assert result.status == "not_converged" and "bound" in result.message


def test_out_of_iterations_raises_or_is_accepted_per_config(burgers_data):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 10, "max_iterations": 1}, model, [learnable("viscosity", 2.5)])
    with pytest.raises(FitError, match="not_converged"):
        trainer.fit(initial, targets, progress=False)
    assert trainer.params["viscosity"] == 2.5
    trainer.config.suppress_convergence = True
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        result = trainer.fit(initial, targets, progress=False)
    assert result.status == "not_converged" and result.iterations == 1
    assert result.final_loss < result.initial_loss and trainer.params["viscosity"] != 2.5


def test_unstable_upper_bound_is_lowered_to_the_stability_limit(burgers_data):
    _, initial, targets = burgers_data
    # a user-set substeps keeps its explicit limit nu <= 0.5 dx^2 / dt = 2.44 (substeps="auto" takes more
    # substeps instead: test_fit_timestep.py)
    model = Burgers(GRID, dt=0.5, viscosity=NU, substeps=1)
    trainer = PhysicalTrainer({"num_predict_steps": 2}, model, [learnable("viscosity", 2.0)])
    traj = model.rollout({"velocity": initial["velocity"]}, 2)["velocity"]
    result = trainer.fit(initial, {"velocity": traj.time[1:]}, progress=False)
    assert "stability limit" in result.message and result.nonfinite_evaluations == 0
    assert abs(trainer.params["viscosity"] / NU - 1) < 1e-3


def test_exception_in_loss_is_raised_not_hung(burgers_data):
    """An error inside phiml's minimize (its worker threads) surfaces as an exception."""
    _, initial, targets = burgers_data
    model = Burgers(GRID, viscosity=NU, jit=False)  # compiled steps would not call the Python step again
    calls, step = [0], model.step_values

    def failing_step(values, params=None, **kwargs):
        calls[0] += 1
        if calls[0] > 15:  # the initial loss (10 steps) works, the first optimiser evaluation fails
            raise RuntimeError("boom")
        return step(values, params, **kwargs)

    model.step_values = failing_step
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, [learnable("viscosity", 1.0)])
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(initial, targets, progress=False)
    assert trainer.params["viscosity"] == 1.0


# ----------------------------------------------------------------------------- observation tools
def test_masked_mse_is_mean_over_observed_points_independent_of_field_count():
    sm = np.zeros(8, dtype=bool)
    sm[:2] = True
    w = ObservationMask(spatial=sm, temporal=np.array([False, True, True])).weights(GridSpec((8,), (1.0,)), 3)
    err = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    pred = math.tensor(torch.as_tensor(err), math.batch("time"), math.spatial("x"))
    zero = pred * 0
    expected = np.mean(err[1:, :2] ** 2)
    one = float(masked_mse({"a": pred}, {"a": zero}, w))
    two = float(masked_mse({"a": pred, "b": pred}, {"a": zero, "b": zero}, w))
    assert one == pytest.approx(expected) and two == pytest.approx(expected)


def test_masks_that_observe_nothing_are_errors():
    with pytest.raises(ValueError, match="observes nothing"):
        ObservationMask(spatial=np.zeros(8, dtype=bool))
    with pytest.raises(ValueError, match="no cell"):
        spatial_mask(GridSpec((8,), (1.0,)), region=[(2.0, 3.0)])
    with pytest.raises(ValueError, match="observes no frame"):
        temporal_mask(4, frames=[])


def test_masks_and_noise_are_as_specified(seed):
    g = GridSpec((10,), (10.0,))
    assert spatial_mask(g, region=[(0.0, 5.0)]).tolist() == [True] * 5 + [False] * 5
    m = spatial_mask(g, fraction=0.3, seed=seed)
    assert m.sum() == 3 and np.array_equal(m, spatial_mask(g, fraction=0.3, seed=seed))
    assert temporal_mask(10, every=5).nonzero()[0].tolist() == [4, 9]
    data = np.random.default_rng(seed).standard_normal((200, 50)) * 3.0
    a, b = add_noise(data, 0.05, seed=1), add_noise(data, 0.05, seed=1)
    assert np.array_equal(a, b)
    assert np.std(a - data) == pytest.approx(0.05 * data.std(), rel=0.02)


# ----------------------------------------------------------------------------- config, params, I/O
def test_config_from_seed_layout_and_unknown_keys():
    cfg = PhysicalTrainer({"trainer_params": {"num_predict_steps": 3, "abs_tol": 1e-9}, "model": {}},
                          Burgers(GRID), [learnable("viscosity", 1.0)]).config
    assert isinstance(cfg, PhysicalConfig) and cfg.num_predict_steps == 3 and cfg.abs_tol == 1e-9
    with pytest.raises(ConfigError, match="max_iteration"):
        PhysicalTrainer({"trainer_params": {"max_iteration": 5}}, Burgers(GRID), [learnable("viscosity", 1.0)])
    with pytest.raises(ConfigError):
        PhysicalTrainer({"on_failure": "ignore"}, Burgers(GRID), [learnable("viscosity", 1.0)])
    with pytest.raises(ConfigError, match="not fields"):
        PhysicalTrainer({"regularizer": "tv", "reg_weight": 1.0}, Burgers(GRID), [learnable("viscosity", 1.0)])


def test_learnable_forms_and_errors():
    model = Burgers(GRID)
    p = learnable("viscosity", 0.01)
    assert isinstance(p, LearnableParam)
    for given in ([p], {"viscosity": 0.01}, [("viscosity", 0.01)], 0.01, math.tensor(0.01)):
        (r,) = PhysicalTrainer({}, model, given).learnables
        assert r.name == "viscosity" and r.kind == "scalar" and float(r.value) == pytest.approx(0.01)
        assert r.bounds == (1e-4, 10.0) and r.transform == "log"
    (f,) = PhysicalTrainer({}, model, [learnable("viscosity", 0.2, kind="field")]).learnables
    assert f.value.shape == (64,) and np.all(f.value == 0.2)
    with pytest.raises(KeyError, match="viscosity"):
        PhysicalTrainer({}, model, [learnable("diffusivity", 0.1)])
    with pytest.raises(ValueError, match="inside its bounds"):
        PhysicalTrainer({}, model, [learnable("viscosity", 50.0)])
    with pytest.raises(ValueError, match="valid range"):
        PhysicalTrainer({}, model, [learnable("viscosity", 1.0, bounds=(0.0, 100.0))])
    with pytest.raises(ValueError, match="shape"):
        PhysicalTrainer({}, model, [learnable("viscosity", np.ones(10))])


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_params_save_load_roundtrip_is_exact(tmp_path, suffix):
    model = Burgers(GRID)
    rng = np.random.default_rng(3)
    field = rng.uniform(0.1, 2.0, 64)
    a = PhysicalTrainer({}, model, [learnable("viscosity", field, kind="field")])
    path = a.save_params(tmp_path / f"p{suffix}")
    b = PhysicalTrainer({}, model, [learnable("viscosity", 1.0, kind="field")])
    loaded = b.load_params(path)
    assert np.array_equal(loaded["viscosity"], field) and np.array_equal(b.params["viscosity"], field)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left nothing behind
    c = PhysicalTrainer({}, model, [learnable("viscosity", 1.0)])
    with pytest.raises(ValueError, match="shape"):
        c.load_params(path)


def test_load_rejects_foreign_json(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"viscosity": 1.0}))
    t = PhysicalTrainer({}, Burgers(GRID), [learnable("viscosity", 1.0)])
    with pytest.raises(ValueError, match="format"):
        t.load_params(tmp_path / "x.json")


def test_wrong_target_length_is_a_clear_error(burgers_data):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 5}, model, [learnable("viscosity", 1.0)])
    with pytest.raises(ValueError, match="num_predict_steps=5"):
        trainer.fit(initial, targets, progress=False)


def test_fit_result_is_a_dataclass_with_history(burgers_data):
    model, initial, targets = burgers_data
    trainer = PhysicalTrainer({"num_predict_steps": 10}, model, [learnable("viscosity", 1.0)])
    result = trainer.fit(initial, targets, progress=False)
    assert isinstance(result, FitResult) and result.loss_history[0] == pytest.approx(1.0)
    assert min(result.loss_history) == pytest.approx(result.final_loss / result.initial_loss, rel=1e-3)
    assert trainer.last_result is result


def test_public_names_have_docstrings():
    import inspect

    import hybridkit.data._observation as obs
    import hybridkit.physics._learnable as lrn
    import hybridkit.training._physical as phys

    missing = []
    for mod in (obs, lrn, phys):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not inspect.getdoc(obj):
                missing.append(name)
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if not attr.startswith("_") and callable(getattr(member, "fget", member)):
                    if not inspect.getdoc(getattr(member, "fget", member)):
                        missing.append(f"{name}.{attr}")
    assert not missing
