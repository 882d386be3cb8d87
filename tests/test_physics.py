"""Physical models against exact solutions, convergence orders, stability and gradients.

Order tests run in float64 (``math.precision(64)``) with time steps small enough that the
third-order time error is negligible next to the second-order space error.
"""
import warnings

import numpy as np
import pytest
import torch
from phiml import math

from hybridkit import GridSpec
from hybridkit.convert import to_field, to_tensor
from hybridkit.physics import (AdvectionDiffusion, Burgers, Diffusion, NavierStokes2D, StabilityError,
                               StabilityWarning)

TWO_PI = 2 * np.pi
# phiml's jit_compile traces with torch.jit.trace, which torch 2.13 deprecates; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning"),
              pytest.mark.usefixtures("one_torch_thread")]



@pytest.fixture
def seed():
    return 1234


# ---------------------------------------------------------------------------- helpers
def simulate(model, u0: np.ndarray, n_steps: int, params=None) -> np.ndarray:
    """Step ``model`` (one field) ``n_steps`` times from ``u0`` (storage layout, no batch) in float64."""
    name = model.field_names[0]
    with math.precision(64):
        values = {name: to_field(u0[None], model.grid, vector=name in model.vector_fields).values}
        p = model.prepare_params(params)
        for _ in range(n_steps):
            values = model.step_values(values, p)
        return to_tensor(values[name]).numpy()[0]


def observed_orders(errors) -> np.ndarray:
    """``log2(e_N / e_2N)`` for errors at resolutions ``N, 2N, 4N, ...``."""
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def cole_hopf(x, t, nu, a=1.5, b=1.0, k=1.0):
    """Exact periodic viscous Burgers solution ``u = -2 nu phi_x / phi``, ``phi = a + b cos(kx) e^{-nu k^2 t}``."""
    decay = b * np.exp(-nu * k**2 * t)
    return 2 * nu * k * decay * np.sin(k * x) / (a + decay * np.cos(k * x))


def burgers_1d_error(n, nu=0.2, t_end=1.0, dt=0.002):
    grid = GridSpec((n,), (TWO_PI,))
    x = grid.coordinates()[0]
    with math.precision(64):
        model = Burgers(grid, dt=dt, viscosity=nu)
    u = simulate(model, cole_hopf(x, 0.0, nu), round(t_end / dt))
    exact = cole_hopf(x, t_end, nu)
    return np.abs(u - exact).max() / np.abs(exact).max(), u


# ---------------------------------------------------------------------------- Burgers
def test_burgers_1d_matches_cole_hopf_at_second_order():
    errors = [burgers_1d_error(n)[0] for n in (32, 64, 128)]
    orders = observed_orders(errors)
    print("Burgers 1D rel. max errors", errors, "orders", orders)
    assert errors[-1] < 1e-3
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


def test_burgers_2d_reproduces_an_x_only_solution():
    """``u = (f(x, t), 0)`` solves 2D Burgers when ``f`` solves 1D Burgers: check it against Cole-Hopf."""
    nu, dt, n_steps = 0.2, 0.002, 500
    errors = []
    for n in (32, 64):
        grid = GridSpec((n, 4), (TWO_PI, 1.0))
        x = grid.coordinates()[0]
        u0 = np.stack([cole_hopf(x, 0.0, nu), np.zeros_like(x)], -1)
        with math.precision(64):
            model = Burgers(grid, dt=dt, viscosity=nu)
        u = simulate(model, u0, n_steps)
        exact = cole_hopf(x, dt * n_steps, nu)
        assert np.abs(u[..., 1]).max() == 0.0  # nothing creates a y-velocity
        assert np.abs(u[..., 0] - u[:, :1, 0]).max() < 1e-14  # stays independent of y
        errors.append(np.abs(u[..., 0] - exact).max() / np.abs(exact).max())
    # 2D uses the convective form (1D the skew-symmetric one): same order, a larger constant.
    print("Burgers 2D rel. max errors", errors, "order", observed_orders(errors))
    assert errors[-1] < 5e-3 and 1.8 < observed_orders(errors)[0] < 2.3, errors


@pytest.mark.parametrize("model_cls, resolution", [
    (Burgers, (32,)), (Burgers, (16, 16)), (Diffusion, (32,)), (Diffusion, (16, 16)),
])
def test_constant_field_coefficient_reproduces_scalar_model(model_cls, resolution, seed):
    grid = GridSpec(resolution, (TWO_PI,))
    name = "viscosity" if model_cls is Burgers else "diffusivity"
    scalar = model_cls(grid, dt=0.05, **{name: 0.3})
    field = model_cls(grid, dt=0.05, **{name: np.full(resolution, 0.3)})
    assert field.spec(name).kind == "field" and scalar.spec(name).kind == "scalar"
    state = scalar.random_state(2, seed=seed)
    a, b = scalar.rollout(state, 10), field.rollout(state, 10)
    key = scalar.field_names[0]
    diff = math.max(abs(a[key].values - b[key].values), a[key].shape)
    assert float(diff) < 1e-6 * float(math.max(abs(a[key].values), a[key].shape))


# ---------------------------------------------------------------------------- diffusion
def test_heat_equation_fourier_mode_decays_at_second_order():
    d, k, t_end, dt = 0.5, 2, 0.5, 0.001
    errors = []
    for n in (16, 32, 64):
        grid = GridSpec((n,), (TWO_PI,))
        x = grid.coordinates()[0]
        with math.precision(64):
            model = Diffusion(grid, dt=dt, diffusivity=d)
        u = simulate(model, np.sin(k * x), round(t_end / dt))
        errors.append(np.abs(u - np.exp(-d * k**2 * t_end) * np.sin(k * x)).max())
    orders = observed_orders(errors)
    print("heat 1D max errors", errors, "orders", orders)
    assert errors[-1] < 1e-2 * np.exp(-d * k**2 * t_end)
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


def test_heat_equation_2d_mode_with_field_diffusivity():
    """A constant-valued *field* diffusivity in 2D gives the exact decay ``exp(-D |k|^2 t)``."""
    grid = GridSpec((32, 16), (TWO_PI, np.pi))
    x, y = grid.coordinates()
    u0 = np.sin(x) * np.cos(2 * y)  # |k|^2 = 1 + 4 on this box
    with math.precision(64):
        model = Diffusion(grid, dt=0.002, diffusivity=np.full(grid.resolution, 0.25))
    u = simulate(model, u0, 250)
    exact = np.exp(-0.25 * 5 * 0.5) * u0
    # the five-point stencil's eigenvalue: D sum_a 4 sin^2(k_a dx_a / 2) / dx_a^2 (= D |k|^2 + O(dx^2))
    lam = 0.25 * sum(4 * np.sin(k * d / 2) ** 2 / d**2 for k, d in zip((1, 2), grid.dx))
    assert np.abs(u - np.exp(-lam * 0.5) * u0).max() < 1e-9  # only the RK3 time error is left
    assert np.abs(u - exact).max() < 1e-2 * np.abs(exact).max()


def test_variable_diffusivity_conserves_heat_and_converges():
    """``D(x) = 1 + 0.5 sin x``: total heat conserved to round-off, self-convergence at second order."""
    sols = {}
    for n in (32, 64, 128):
        grid = GridSpec((n,), (TWO_PI,))
        x = grid.coordinates()[0]
        with math.precision(64):
            model = Diffusion(grid, dt=5e-4, diffusivity=0.5 + 0.25 * np.sin(x))
        u0 = np.exp(np.cos(x))
        sols[n] = simulate(model, u0, 400)
        assert abs(sols[n].sum() - u0.sum()) < 1e-11 * u0.sum()
    # cell-centred grids do not nest: restrict fine solutions by averaging cell pairs (also O(h^2))
    restrict = lambda u: u.reshape(-1, 2).mean(1)  # noqa: E731
    e1 = np.abs(sols[32] - restrict(sols[64])).max()
    e2 = np.abs(sols[64] - restrict(sols[128])).max()
    assert 1.8 < np.log2(e1 / e2) < 2.2, (e1, e2)


# ---------------------------------------------------------------------------- advection-diffusion
def test_pure_advection_is_an_exact_shift_at_second_order():
    v, t_end, dt = 1.0, 1.0, 0.002
    errors = []
    for n in (32, 64, 128):
        grid = GridSpec((n,), (TWO_PI,))
        x = grid.coordinates()[0]
        with math.precision(64):
            model = AdvectionDiffusion(grid, dt=dt, velocity=(v,), diffusivity=0.0)
        c = simulate(model, np.exp(np.sin(x)), round(t_end / dt))
        errors.append(np.abs(c - np.exp(np.sin(x - v * t_end))).max())
    orders = observed_orders(errors)
    print("advection 1D max errors", errors, "orders", orders)
    assert errors[-1] < 2e-3
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


def test_advection_diffusion_2d_travelling_decaying_mode():
    v, d, t_end = (0.7, -0.4), 0.05, 1.0
    grid = GridSpec((32, 32), (TWO_PI,))
    x, y = grid.coordinates()
    phase = lambda t: x + 2 * y - (v[0] + 2 * v[1]) * t  # noqa: E731
    with math.precision(64):
        model = AdvectionDiffusion(grid, dt=0.005, velocity=v, diffusivity=d)
    c = simulate(model, np.sin(phase(0.0)), round(t_end / 0.005))
    exact = np.exp(-d * 5 * t_end) * np.sin(phase(t_end))
    assert np.abs(c - exact).max() < 2e-2
    # the discrete solution exactly: central differences turn k_a into sin(k_a dx_a) / dx_a
    # (phase speed) and 2 sin(k_a dx_a / 2) / dx_a (decay)
    dx = grid.dx
    omega = sum(va * np.sin(k * h) / h for va, k, h in zip(v, (1, 2), dx))
    lam = d * sum(4 * np.sin(k * h / 2) ** 2 / h**2 for k, h in zip((1, 2), dx))
    discrete = np.exp(-lam * t_end) * np.sin(x + 2 * y - omega * t_end)
    assert np.abs(c - discrete).max() < 1e-7


def test_advection_diffusion_rejects_wrong_velocity_length():
    with pytest.raises(ValueError, match="one component per axis"):
        AdvectionDiffusion(GridSpec((16, 16), (1.0,)), velocity=(1.0,))


def test_diagonal_advection_limit_counts_both_axes():
    """At the reported limit a diagonal flow is stable; at 2x (the per-axis CFL) it blows up."""
    grid = GridSpec((16, 16), (1.0,))
    noise = np.random.default_rng(0).normal(size=(1, 16, 16))
    model = AdvectionDiffusion(grid, dt=1.0, velocity=(1.0, 1.0), diffusivity=0.0, on_unstable="ignore")
    state = {"concentration": to_field(noise, grid)}
    limit = model.max_stable_dt(state)
    assert limit == pytest.approx(0.5 / 16)
    growth = {}
    for factor in (1.0, 2.0):
        # one substep: the explicit scheme itself at 1x and 2x its limit (the default, "auto", would
        # take two substeps at 2x and stay stable)
        m = AdvectionDiffusion(grid, dt=factor * limit, velocity=(1.0, 1.0), diffusivity=0.0, substeps=1)
        c = m.rollout(state, 200, include_init=False, check=False)["concentration"].values.time[-1]
        growth[factor] = float(math.max(abs(c), c.shape)) / np.abs(noise).max()
    assert growth[1.0] <= 1.0 and growth[2.0] > 10, growth


# ---------------------------------------------------------------------------- Navier-Stokes
def _relative_divergence(model, u: math.Tensor) -> float:
    scale = float(math.max(abs(u), u.shape)) / min(model.grid.dx)
    return float(math.max(abs(model.divergence(u)), u.shape)) / scale


def test_navier_stokes_stays_divergence_free(seed):
    model = NavierStokes2D(GridSpec((32, 32), (TWO_PI,)), dt=0.1, viscosity=0.05, substeps=2)
    state = model.random_state(2, seed=seed)
    assert _relative_divergence(model, state["velocity"].values) < 1e-6
    traj = model.rollout(state, 30)["velocity"].values
    assert traj.dtype.precision == 32
    rel = [_relative_divergence(model, traj.time[i]) for i in range(traj.shape.get_size("time"))]
    assert max(rel) < 1e-6, max(rel)
    assert float(math.max(abs(traj.time[-1]), traj.shape.without("time"))) > 0.1  # it still moves


def test_navier_stokes_approaches_laminar_kolmogorov_flow():
    """From rest, ``u = a(t) sin(kappa y)`` with ``a = A / lam (1 - e^{-lam t})``, ``lam = nu kappa^2 + alpha``;
    the nonlinear term vanishes exactly for this flow, the error is the Laplacian's O(dy^2)."""
    nu, amp, k, drag, t_end = 0.1, 1.0, 2, 0.2, 2.0
    lam = nu * k**2 + drag
    errors = []
    for n in (16, 32):
        grid = GridSpec((8, n), (TWO_PI,))
        y = grid.coordinates()[1]
        with math.precision(64):
            model = NavierStokes2D(grid, dt=0.05, viscosity=nu, forcing_amplitude=amp, forcing_wavenumber=k,
                                   drag=drag, substeps=1)
        u = simulate(model, np.zeros(grid.resolution + (2,)), round(t_end / 0.05))
        exact = amp / lam * (1 - np.exp(-lam * t_end)) * np.sin(k * y)
        assert np.abs(u[..., 1]).max() < 1e-12
        errors.append(np.abs(u[..., 0] - exact).max() / np.abs(exact).max())
        # with the five-point Laplacian's eigenvalue the solution is exact up to the RK3 time error
        dy = grid.dx[1]
        lam_d = nu * 4 * np.sin(k * dy / 2) ** 2 / dy**2 + drag
        discrete = amp / lam_d * (1 - np.exp(-lam_d * t_end)) * np.sin(k * y)
        assert np.abs(u[..., 0] - discrete).max() < 1e-6
    print("laminar Kolmogorov rel. max errors", errors, "order", observed_orders(errors))
    assert errors[-1] < 5e-3 and 1.9 < observed_orders(errors)[0] < 2.1, errors
    assert model.laminar_amplitude() == pytest.approx(amp / lam)


def test_navier_stokes_taylor_green_decay_at_second_order():
    """Unforced Taylor-Green vortex ``(sin x cos y, -cos x sin y) e^{-2 nu t}``: the nonlinear term is a
    gradient, removed by the projection; checks advection + projection + viscosity together."""
    nu, t_end, dt = 0.1, 1.0, 0.01
    errors = []
    for n in (16, 32, 64):
        grid = GridSpec((n, n), (TWO_PI,))
        x, y = grid.coordinates()
        u0 = np.stack([np.sin(x) * np.cos(y), -np.cos(x) * np.sin(y)], -1)
        with math.precision(64):
            model = NavierStokes2D(grid, dt=dt, viscosity=nu, forcing_amplitude=0.0, drag=0.0, substeps=1)
        u = simulate(model, u0, round(t_end / dt))
        errors.append(np.abs(u - u0 * np.exp(-2 * nu * t_end)).max())
    orders = observed_orders(errors)
    print("Taylor-Green max errors", errors, "orders", orders)
    assert errors[-1] < 5e-3
    assert np.all((orders > 1.8) & (orders < 2.3)), orders


def test_navier_stokes_inviscid_energy_is_conserved(seed):
    """Skew-symmetric advection and an orthogonal projection: with nu = A = alpha = 0 kinetic energy
    changes only by the RK3 time error."""
    grid = GridSpec((16, 16), (TWO_PI,))
    with math.precision(64):
        model = NavierStokes2D(grid, dt=0.02, viscosity=0.0, forcing_amplitude=0.0, drag=0.0)
        u0 = model.random_state(1, seed=seed)["velocity"].values
        u = simulate(model, u0.numpy(["batch", "x", "y", "vector"])[0], 50)
    e0, e1 = float(math.sum(u0**2, u0.shape)), float(np.sum(u**2))
    assert abs(e1 - e0) < 1e-6 * e0, (e0, e1)


def test_navier_stokes_rejects_non_periodic_or_non_2d_grid():
    with pytest.raises(ValueError, match="2D periodic"):
        NavierStokes2D(GridSpec((16,), (1.0,)))
    with pytest.raises(ValueError, match="2D periodic"):
        NavierStokes2D(GridSpec((16, 16), (1.0,), boundary="zero"))


# ---------------------------------------------------------------------------- PhiFlow / phiml pin
def test_phiml_1d_semi_lagrangian_works():
    """phiml 1.16.1 crashed here (``grid_sampler(): expected 5D input``); pyproject pins 1.15.1."""
    from phi.physics import advect

    grid = GridSpec((32,), (TWO_PI,))
    x = grid.coordinates()[0]
    profile = to_field(np.exp(np.sin(x)), grid, batch_names=())
    velocity = to_field(np.ones((32, 1)), grid, vector=True, batch_names=())
    moved = advect.semi_lagrangian(profile, velocity, dt=grid.dx[0])  # exactly one cell
    assert moved.values.default_backend.name == "torch"
    np.testing.assert_allclose(to_tensor(moved).numpy(), np.roll(np.exp(np.sin(x)), 1), atol=1e-5)


# ---------------------------------------------------------------------------- stability, ICs
ALL_MODELS = [
    lambda **kw: Burgers(GridSpec((32,), (TWO_PI,)), **kw),
    lambda **kw: Burgers(GridSpec((16, 16), (TWO_PI,)), **kw),
    lambda **kw: Diffusion(GridSpec((32,), (TWO_PI,)), **kw),
    lambda **kw: AdvectionDiffusion(GridSpec((16, 16), (TWO_PI,)), velocity=(1.0, 0.5), **kw),
    lambda **kw: NavierStokes2D(GridSpec((16, 16), (TWO_PI,)), **kw),
]
MODEL_IDS = ["burgers1d", "burgers2d", "diffusion", "advdiff2d", "navierstokes"]


@pytest.mark.parametrize("make", ALL_MODELS, ids=MODEL_IDS)
def test_absurd_dt_raises_with_the_fix_or_warns(make, seed):
    model = make(dt=100.0)
    state = model.random_state(1, seed=seed)
    with pytest.raises(StabilityError, match=r"increase substeps to at least \d+ or reduce dt"):
        model.rollout(state, 1)
    warner = make(dt=100.0, on_unstable="warn")
    with pytest.warns(StabilityWarning, match="substeps"):
        warner.check_stability({k: v.values for k, v in state.items()}, warner.true_params)
    fine = make(dt=0.5 * model.max_stable_dt(state))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine.rollout(state, 0)


@pytest.mark.parametrize("make", ALL_MODELS, ids=MODEL_IDS)
def test_random_states_are_seeded_and_config_round_trips(make, seed):
    model = make()
    a, b, c = (model.random_state(3, seed=s) for s in (seed, seed, seed + 1))
    for name in model.field_names:
        ta, tb, tc = to_tensor(a[name]), to_tensor(b[name]), to_tensor(c[name])
        assert ta.dtype == torch.float32 and ta.shape[0] == 3
        assert torch.equal(ta, tb) and not torch.allclose(ta, tc)
        assert not torch.allclose(ta[0], ta[1])  # simulations differ within a batch
        assert ta.abs().max() == pytest.approx(1.0, rel=1e-5)
    cfg = model.config()
    rebuilt = type(model)(GridSpec(**cfg.pop("grid")), **cfg)
    assert rebuilt.config() == model.config()
    for spec in model.param_specs:
        lo, hi = spec.bounds
        value = to_tensor(model.true_params[spec.name]).numpy()
        assert value.shape == spec.shape(model.grid)
        assert lo < hi and np.all((value >= lo) & (value <= hi)), (spec, value)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("jit", [True, False])
def test_viscosity_gradient_matches_finite_difference(jit):
    grid = GridSpec((32,), (TWO_PI,))
    x = grid.coordinates()[0]
    with math.precision(64):
        model = Burgers(grid, dt=0.05, viscosity=0.3, jit=jit)
        u0 = {"velocity": to_field(np.sin(x)[None] + 0.5 * np.cos(2 * x)[None], grid).values}

        def loss(nu):
            v = u0
            for _ in range(5):
                v = model.step_values(v, {"viscosity": nu})
            return (to_tensor(v["velocity"]) ** 2).sum()

        nu = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(loss(nu), nu)
        eps = 1e-6
        with torch.no_grad():
            fd = (loss(torch.tensor(0.3 + eps, dtype=torch.float64))
                  - loss(torch.tensor(0.3 - eps, dtype=torch.float64))) / (2 * eps)
    assert grad.dtype == torch.float64
    assert float(grad) == pytest.approx(float(fd), rel=1e-6)
    assert abs(float(grad)) > 1e-3


def test_navier_stokes_viscosity_gradient_through_projection(seed):
    grid = GridSpec((16, 16), (TWO_PI,))
    with math.precision(64):
        model = NavierStokes2D(grid, dt=0.05, viscosity=0.05)
        u0 = {"velocity": model.random_state(1, seed=seed)["velocity"].values}

        def loss(nu):
            v = u0
            for _ in range(3):
                v = model.step_values(v, {"viscosity": nu})
            return (to_tensor(v["velocity"]) ** 2).sum()

        nu = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(loss(nu), nu)
        eps = 1e-6
        with torch.no_grad():
            fd = (loss(torch.tensor(0.05 + eps, dtype=torch.float64))
                  - loss(torch.tensor(0.05 - eps, dtype=torch.float64))) / (2 * eps)
    assert float(grad) == pytest.approx(float(fd), rel=1e-6) and float(grad) < 0
