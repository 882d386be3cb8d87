"""Parametric coefficient fields: values against independent numpy formulas, gradients against finite
differences, bounds, plain-data round trips, refused inputs, and their use as true and learnable
coefficients of a model."""
import numpy as np
import pytest
import torch
import yaml
from phiml import math

from hybridkit import GridSpec
from hybridkit.convert import to_tensor
from hybridkit.physics import (AdvectionDiffusion, Burgers, Diffusion, FourierModes, GaussianBumps, PiecewiseLinear,
                               learnable, parametrization_from_dict)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
GRID_1D = GridSpec((64,), (100.0,))
GRID_2D = GridSpec((16, 12), (2.0, 3.0), boundary="zero")
PARAMETRIZATIONS = [GaussianBumps(2), GaussianBumps(1, base=False), FourierModes(2), FourierModes(1, log=False),
                    PiecewiseLinear(5), PiecewiseLinear((3, 4))]
PAR_IDS = ["bumps", "bumps-nobase", "fourier-log", "fourier", "linear", "linear-3x4"]
# every parametrisation on both grids, except knots per axis for two axes on the 1D grid
CASES = [pytest.param(par, grid, id=f"{pid}-{gid}") for par, pid in zip(PARAMETRIZATIONS, PAR_IDS)
         for grid, gid in ((GRID_1D, "1d-periodic"), (GRID_2D, "2d-zero")) if pid != "linear-3x4" or grid is GRID_2D]


def inside(par, grid, seed=0, value_range=(0.05, 2.0)) -> np.ndarray:
    """Random numbers strictly inside ``par``'s bounds."""
    b = par.bounds(grid, value_range)
    return b[:, 0] + np.random.default_rng(seed).uniform(0.2, 0.8, len(b)) * (b[:, 1] - b[:, 0])


# ---------------------------------------------------------------------------- values
def test_gaussian_bumps_match_the_formula_and_wrap_periodically():
    bumps = GaussianBumps(2)
    theta = [0.2, 1.0, 30.0, 8.0, 0.5, 95.0, 12.0]  # base; bump at x=30 (w 8); bump at x=95 (w 12)
    x = GRID_1D.coordinates()[0]
    chord2 = lambda c: (100 / np.pi * np.sin(np.pi * (x - c) / 100)) ** 2  # noqa: E731
    expected = 0.2 + np.exp(-chord2(30) / 128) + 0.5 * np.exp(-chord2(95) / 288)
    np.testing.assert_allclose(bumps.evaluate_numpy(theta, GRID_1D), expected, rtol=1e-12)
    # the second bump straddles x = 0: the field is continuous across the periodic boundary
    field = bumps.evaluate_numpy(theta, GRID_1D)
    assert abs(field[0] - field[-1]) < 0.1 * abs(field[1] - field[0]) + 0.02
    # a bump centred on a cell centre peaks there at base + amplitude
    centre = x[20]
    peak = bumps.evaluate_numpy([0.2, 1.0, centre, 3.0, 0.0, 50.0, 3.0], GRID_1D)
    assert np.argmax(peak) == 20 and peak[20] == pytest.approx(1.2, rel=1e-12)
    # zero-boundary grids use the plain distance
    xx, yy = GRID_2D.coordinates()
    two = GaussianBumps(1).evaluate_numpy([0.1, 2.0, 0.5, 1.0, 0.4], GRID_2D)
    np.testing.assert_allclose(two, 0.1 + 2.0 * np.exp(-((xx - 0.5) ** 2 + (yy - 1.0) ** 2) / 0.32), rtol=1e-12)


def test_fourier_modes_match_the_formula():
    x = GRID_1D.coordinates()[0]
    modes = FourierModes(2)  # mean, cos_1, sin_1, cos_2, sin_2 of log f
    assert modes.component_names(GRID_1D) == ("mean", "cos_1", "sin_1", "cos_2", "sin_2")
    theta = [np.log(0.5), 0.3, -0.2, 0.0, 0.1]
    k = 2 * np.pi * x / 100
    expected = 0.5 * np.exp(0.3 * np.cos(k) - 0.2 * np.sin(k) + 0.1 * np.sin(2 * k))
    np.testing.assert_allclose(modes.evaluate_numpy(theta, GRID_1D), expected, rtol=1e-12)
    xx, yy = GRID_2D.coordinates()
    flat = FourierModes(1, log=False)
    names = flat.component_names(GRID_2D)
    assert names == ("mean", "cos_0_1", "sin_0_1", "cos_1_-1", "sin_1_-1", "cos_1_0", "sin_1_0", "cos_1_1",
                     "sin_1_1")  # 2K(K+1) = 4 wavevectors in a half plane
    theta = np.zeros(9)
    theta[0], theta[names.index("sin_1_-1")] = 1.0, 0.25
    expected = 1.0 + 0.25 * np.sin(2 * np.pi * (xx / 2.0 - yy / 3.0))
    np.testing.assert_allclose(flat.evaluate_numpy(theta, GRID_2D), expected, rtol=1e-12, atol=1e-15)


def test_piecewise_linear_interpolates_its_knots():
    x = GRID_1D.coordinates()[0]
    knots = np.array([1.0, 3.0, 2.0, 0.5])
    periodic = PiecewiseLinear(4).evaluate_numpy(knots, GRID_1D)  # knots at 0, 25, 50, 75 (wrapping)
    np.testing.assert_allclose(periodic, np.interp(x, [0, 25, 50, 75, 100], np.append(knots, knots[0])), rtol=1e-12)
    xx, yy = GRID_2D.coordinates()
    values = np.arange(12.0).reshape(3, 4) ** 1.5  # 3 knots along x (0, 1, 2), 4 along y (0, 1, 2, 3)
    field = PiecewiseLinear((3, 4)).evaluate_numpy(values.reshape(-1), GRID_2D)
    along_x = np.stack([np.interp(xx[:, 0], [0, 1, 2], values[:, j]) for j in range(4)], -1)
    expected = np.stack([np.interp(yy[0], [0, 1, 2, 3], along_x[i]) for i in range(16)])
    np.testing.assert_allclose(field, expected, rtol=1e-12)


@pytest.mark.parametrize("par, grid", CASES)
def test_phiml_evaluation_matches_numpy_and_broadcasts_over_batch(par, grid):
    theta = np.stack([inside(par, grid, seed) for seed in (0, 1)])
    with math.precision(64):  # phiml evaluates lazily: read the values inside
        field = par.evaluate(par.theta_tensor(theta, grid), grid)
        values = [field.batch[i].numpy(list(grid.axes)) for i in range(2)]
    assert set(field.shape.names) == {"batch", *grid.axes}
    for i in range(2):
        np.testing.assert_allclose(values[i], par.evaluate_numpy(theta[i], grid), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("par, grid", CASES)
def test_gradients_with_respect_to_theta_match_finite_differences(par, grid):
    theta0 = inside(par, grid, seed=3)
    weights = np.random.default_rng(4).normal(size=tuple(grid.resolution))
    names = ",".join(par.component_names(grid))

    def loss(t: torch.Tensor) -> torch.Tensor:
        field = par.evaluate(math.tensor(t, math.channel(param=names)), grid)
        return (to_tensor(field) * torch.as_tensor(weights)).sum()

    with math.precision(64):
        t = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(loss(t), t)
        eps = 1e-6 * np.maximum(1.0, np.abs(theta0))
        fd = np.array([(float(loss(torch.tensor(theta0 + e))) - float(loss(torch.tensor(theta0 - e)))) / (2 * e[i])
                       for i, e in enumerate(np.diag(eps))])
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
    assert np.abs(fd).max() > 1e-3  # the field depends on theta


# ---------------------------------------------------------------------------- bounds
def test_bounds_follow_the_grid_and_the_coefficient_range():
    b = GaussianBumps(2).bounds(GRID_2D, (0.1, 5.0))
    names = GaussianBumps(2).component_names(GRID_2D)
    assert names[:6] == ("base", "amplitude_0", "centre_x_0", "centre_y_0", "width_0", "amplitude_1")
    rows = dict(zip(names, map(tuple, b)))
    assert rows["base"] == (0.1, 5.0) and rows["amplitude_0"] == (0.0, 4.9)
    assert rows["centre_x_0"] == (0.0, 2.0) and rows["centre_y_1"] == (0.0, 3.0)
    assert rows["width_1"] == (0.25, 3.0)  # the coarsest spacing (3 / 12) to the largest side
    assert np.all(PiecewiseLinear(3).bounds(GRID_1D, (0.1, 5.0)) == [0.1, 5.0])
    fb = FourierModes(1).bounds(GRID_1D, (0.1, 10.0))
    np.testing.assert_allclose(fb, [[np.log(0.1), np.log(10.0)], [-np.log(10.0), np.log(10.0)],
                                    [-np.log(10.0), np.log(10.0)]])
    with pytest.raises(ValueError, match=r"log=True\) needs a positive lower bound .* FourierModes\(\.\.\., log=Fal"):
        FourierModes(1).bounds(GRID_1D, (0.0, 10.0))
    with pytest.raises(ValueError, match=r"low < high, got \(5.0, 1.0\)"):
        GaussianBumps(1).bounds(GRID_1D, (5.0, 1.0))


@pytest.mark.parametrize("par", [GaussianBumps(3), PiecewiseLinear(6), FourierModes(2)], ids=["bumps", "linear",
                                                                                                "fourier-log"])
def test_numbers_inside_their_bounds_give_a_positive_coefficient(par):
    lo, hi = 0.05, 2.0
    for seed in range(20):
        b = par.bounds(GRID_1D, (lo, hi))
        theta = b[:, 0] + np.random.default_rng(seed).uniform(0, 1, len(b)) * (b[:, 1] - b[:, 0])
        field = par.evaluate_numpy(theta, GRID_1D)
        assert field.min() >= (lo if not isinstance(par, FourierModes) else 0) - 1e-12
        if isinstance(par, PiecewiseLinear):
            assert field.max() <= hi + 1e-12


# ---------------------------------------------------------------------------- plain data
@pytest.mark.parametrize("par", PARAMETRIZATIONS, ids=PAR_IDS)
def test_to_dict_from_dict_round_trips_through_safe_yaml(par):
    data = yaml.safe_load(yaml.safe_dump(par.to_dict()))
    back = parametrization_from_dict(data)
    assert back == par and type(back) is type(par) and back.to_dict() == par.to_dict()
    theta = inside(par, GRID_2D)
    np.testing.assert_array_equal(back.evaluate_numpy(theta, GRID_2D), par.evaluate_numpy(theta, GRID_2D))


@pytest.mark.parametrize("data, match", [
    ({"type": "Bumps", "num_bumps": 2}, r"'type': one of \['FourierModes', 'GaussianBumps', 'PiecewiseLinear'\]"),
    ("GaussianBumps(2)", r"got 'str'"),
    ({"type": "GaussianBumps", "num_bumps": 2, "width": 3}, r"Unknown key\(s\) \['width'\] for GaussianBumps"),
    ({"type": "FourierModes"}, r"FourierModes needs 'num_modes'"),
    ({"type": "GaussianBumps", "num_bumps": 0}, r"num_bumps as an integer >= 1, got 0"),
    ({"type": "GaussianBumps", "num_bumps": 2, "base": "yes"}, r"base as True or False, got 'yes'"),
    ({"type": "PiecewiseLinear", "num_knots": 1}, r"num_knots as an integer >= 2, got 1"),
])
def test_bad_plain_data_is_refused(data, match):
    with pytest.raises(ValueError, match=match):
        parametrization_from_dict(data)


# ---------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("make, match", [
    (lambda: GaussianBumps(1.5), r"num_bumps as an integer >= 1, got 1\.5"),
    (lambda: FourierModes("3"), r"num_modes as an integer >= 1, got '3'"),
    (lambda: PiecewiseLinear(()), r"num_knots as an integer >= 2"),
    (lambda: PiecewiseLinear((3, 4)).evaluate_numpy(np.ones(12), GridSpec((8, 8, 8), (1.0,))),
     r"one knot count per axis \('x', 'y', 'z'\)"),
    (lambda: GaussianBumps(1).evaluate_numpy([0.1, 1.0, 50.0], GRID_1D),
     r"Expected 4 numbers .* in the order \['base', 'amplitude_0', 'centre_x_0', 'width_0'\], got \(3,\)"),
    (lambda: GaussianBumps(1).evaluate_numpy([0.1, np.nan, 50.0, 3.0], GRID_1D), r"NaN/inf in \['amplitude_0'\]"),
    (lambda: GaussianBumps(1).evaluate_numpy([0.1, 1.0, 50.0, 0.0], GRID_1D), r"widths > 0 .* \['width_0'\]"),
    (lambda: GaussianBumps(1).evaluate(math.tensor(np.ones(3), math.channel(param=3)), GRID_1D),
     r"one channel dim of 4 items .* got shape"),
])
def test_bad_inputs_are_refused_with_the_expected_form(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------- learnables
BUMPS_TRUE = [0.2, 1.0, 30.0, 8.0, 0.5, 70.0, 12.0]
BUMPS_GUESS = [0.3, 0.8, 40.0, 10.0, 0.8, 60.0, 10.0]


def test_a_parametric_learnable_optimises_numbers_and_gives_the_model_a_field():
    bumps = GaussianBumps(2)
    model = Diffusion(GRID_1D, dt=1.0, diffusivity=bumps.evaluate_numpy(BUMPS_TRUE, GRID_1D))
    p = learnable("diffusivity", BUMPS_GUESS, parametrization=bumps).resolve(model)
    assert p.kind == "parametric" and p.transform == "linear" and p.value.shape == (7,)
    lo, hi = p.lower_upper()
    np.testing.assert_allclose(np.stack([lo, hi], -1), bumps.bounds(GRID_1D, model.spec("diffusivity").bounds))
    z = p.numbers(model)
    assert z.shape.channel.item_names[0] == bumps.component_names(GRID_1D)
    field = p.coefficient(model, z)
    assert field.shape == GRID_1D.spatial_shape
    np.testing.assert_allclose(to_tensor(p.tensor(model)).numpy(), bumps.evaluate_numpy(BUMPS_GUESS, GRID_1D),
                               rtol=1e-5)
    # the true numbers, as a trainer would pass them, reproduce the model's own rollout
    state = model.random_state(2, seed=0)
    own = model.rollout(state, 5)["temperature"].values
    via = model.rollout(state, 5, {"diffusivity": p.tensor(model, BUMPS_TRUE)})["temperature"].values
    assert float(math.max(abs(own - via), own.shape)) < 1e-5
    # per-component bounds given explicitly, and a coefficient range
    narrow = learnable("diffusivity", BUMPS_GUESS, parametrization=bumps, bounds=(0.05, 2.0)).resolve(model)
    assert narrow.bounds[0] == (0.05, 2.0) and narrow.bounds[1] == (0.0, 1.95)
    explicit = np.stack([lo, hi], -1)
    explicit[2] = (35.0, 45.0)
    assert learnable("diffusivity", BUMPS_GUESS, parametrization=bumps, bounds=explicit).resolve(model).bounds[2] \
        == (35.0, 45.0)


@pytest.mark.slow
def test_a_two_bump_diffusion_rolls_out_and_its_misfit_has_the_right_gradient():
    """What the physical trainer does with theta: field -> fixed-substep steps -> misfit -> gradient."""
    bumps = GaussianBumps(2)
    model = Diffusion(GRID_1D, dt=5.0, diffusivity=bumps.evaluate_numpy(BUMPS_TRUE, GRID_1D))
    state = model.random_state(2, seed=1)
    traj = model.rollout(state, 6)["temperature"].values
    total, scale = math.sum(traj, "x"), float(math.sum(abs(traj.time[0]), traj.time[0].shape))
    assert float(math.max(abs(total - total.time[0]), total.shape)) < 1e-6 * scale  # heat is conserved
    assert float(math.max(abs(traj.time[-1]), traj.shape.without("time"))) < float(
        math.max(abs(traj.time[0]), traj.shape.without("time")))  # it diffused
    p = learnable("diffusivity", BUMPS_GUESS, parametrization=bumps).resolve(model)
    lo, hi = p.lower_upper()
    n = model.substeps_for(state, {"diffusivity": bumps.evaluate_numpy(np.where(
        [name.startswith(("base", "amplitude")) for name in bumps.component_names(GRID_1D)], hi, BUMPS_GUESS),
        GRID_1D)})
    assert n > 1
    target = traj.time[1:4]
    names = ",".join(bumps.component_names(GRID_1D))

    def misfit(t: torch.Tensor) -> torch.Tensor:
        diffusivity = p.coefficient(model, math.tensor(t, math.channel(param=names)))
        v, loss = {"temperature": state["temperature"].values}, 0
        for i in range(3):
            v = model.step_values(v, {"diffusivity": diffusivity}, substeps=n)
            loss = loss + to_tensor((v["temperature"] - target.time[i]) ** 2, ["batch"]).sum()
        return loss

    with math.precision(64):
        t = torch.tensor(BUMPS_GUESS, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(misfit(t), t)
        eps = 1e-6 * np.maximum(1.0, np.abs(BUMPS_GUESS))
        guess = np.asarray(BUMPS_GUESS)
        fd = np.array([(float(misfit(torch.tensor(guess + e))) - float(misfit(torch.tensor(guess - e)))) / (2 * e[i])
                       for i, e in enumerate(np.diag(eps))])
        assert float(misfit(torch.tensor(BUMPS_TRUE, dtype=torch.float64))) < 1e-6 * float(misfit(t.detach()))
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("make, match", [
    (lambda m: learnable("diffusivity", [0.3, 0.8, 140.0, 10.0, 0.8, 60.0, 10.0], parametrization=GaussianBumps(2)),
     r"inside their bounds, got centre_x_0=140 not in \[0, 100\]"),
    (lambda m: learnable("diffusivity", [0.3, 0.8, 40.0], parametrization=GaussianBumps(2)),
     r"Expected 7 numbers"),
    (lambda m: learnable("diffusivity", None, parametrization=GaussianBumps(2)), r"Expected initial numbers theta"),
    (lambda m: learnable("diffusivity", BUMPS_GUESS, kind="field", parametrization=GaussianBumps(2)),
     r"of kind 'parametric', got kind='field'"),
    (lambda m: learnable("diffusivity", BUMPS_GUESS, transform="log", parametrization=GaussianBumps(2)),
     r"transform='log' is not available"),
    (lambda m: learnable("diffusivity", BUMPS_GUESS, kind="parametric"), r"Expected parametrization="),
    (lambda m: learnable("diffusivity", BUMPS_GUESS, parametrization=GaussianBumps(2), bounds=(0.0, 50.0)),
     r"inside the model's valid range \(0\.0001, 10\.0\)"),
    (lambda m: learnable("diffusivity", BUMPS_GUESS, parametrization=GaussianBumps(2), bounds=np.ones((3, 2))),
     r"\(num_params, 2\) pairs with low < high"),
    (lambda m: learnable("diffusivity", [0.1, -0.5, 0.0], parametrization=FourierModes(1, log=False)),
     r"'diffusivity' made by FourierModes\(num_modes=1, log=False\) from the initial numbers >= 0"),
])
def test_bad_parametric_learnables_are_refused(make, match):
    model = Diffusion(GRID_1D, dt=1.0, diffusivity=0.5)
    with pytest.raises(ValueError, match=match):
        make(model).resolve(model)


def test_a_parametrization_on_a_vector_coefficient_is_refused():
    model = AdvectionDiffusion(GRID_1D, velocity=(1.0,))
    with pytest.raises(ValueError, match=r"'velocity' of AdvectionDiffusion is a vector .* does not apply"):
        learnable("velocity", [1.0, 0.5, 50.0, 5.0], parametrization=GaussianBumps(1)).resolve(model)


def test_scalar_field_and_vector_learnables_keep_their_behaviour():
    model = Burgers(GRID_1D, viscosity=0.5)
    s = learnable("viscosity", 0.3).resolve(model)
    assert (s.kind, s.bounds, s.transform) == ("scalar", (1e-4, 10.0), "log")
    assert s.numbers(model).shape.rank == 0 and float(s.tensor(model)) == pytest.approx(0.3)
    assert [a.tolist() for a in s.lower_upper()] == [1e-4, 10.0]
    f = learnable("viscosity", 0.3, kind="field", bounds=(0.1, 1.0)).resolve(model)
    assert f.kind == "field" and f.value.shape == (64,) and f.tensor(model).shape == GRID_1D.spatial_shape
    lo, hi = f.lower_upper()
    assert lo.shape == (64,) and np.all(lo == 0.1) and np.all(hi == 1.0)
    v = learnable("velocity", (0.5,)).resolve(AdvectionDiffusion(GRID_1D))
    assert v.kind == "vector" and v.tensor(AdvectionDiffusion(GRID_1D)).shape.channel.names == ("vector",)
    with pytest.raises(ValueError, match="is not resolved"):
        learnable("viscosity", 0.3).lower_upper()
