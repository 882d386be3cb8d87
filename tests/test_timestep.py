"""Automatic time-step control, compiled steps shared between models, and under-resolved physics.

Reference solutions come from ``tests/_reference.py`` (numpy pseudo-spectral solvers that share no
code with hybridkit). Frame spacings are 5x the explicit limit of one RK3 substep, models use
their default settings (``substeps="auto"``).
"""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from phiml import math

from _reference import burgers_spectral, heat_spectral
from hybridkit import GridSpec
from hybridkit.convert import to_field, to_tensor
from hybridkit.data import DataManager, generate_dataset
from hybridkit.physics import (AdvectionDiffusion, Burgers, Diffusion, NavierStokes2D, ResolutionWarning,
                               StabilityError, StabilityWarning)
from hybridkit.physics._burgers import CELL_REYNOLDS_LIMIT

TWO_PI = 2 * np.pi
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning"),
              pytest.mark.usefixtures("one_torch_thread")]



def smooth_ic(x: np.ndarray) -> np.ndarray:
    """Two smooth periodic velocity profiles (rows), max |u| ~ 1.4 and ~ 1.1."""
    return np.stack([np.sin(x) + 0.5 * np.cos(2 * x + 1) + 0.3 * np.sin(3 * x + 2),
                     -0.8 * np.cos(x) + 0.4 * np.sin(4 * x)])


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Largest relative L2 error over frames and simulations (space is the last axis)."""
    return float(np.max(np.sqrt(((a - b) ** 2).sum(-1) / (b**2).sum(-1))))


def record_substeps(model) -> list:
    """Wrap ``model._stepper`` to record the number of substeps of every step."""
    used, stepper = [], model._stepper

    def spy(n, values):
        used.append(n)
        return stepper(n, values)
    model._stepper = spy
    return used


# ---------------------------------------------------------------------------- the reference itself
def test_reference_solvers_match_exact_solutions():
    """Cole-Hopf for Burgers, the decay of a Fourier mode for heat (1D and 2D)."""
    nu, grid = 0.2, GridSpec((128,), (TWO_PI,))
    x = grid.coordinates()[0]

    def cole_hopf(t):
        decay = np.exp(-nu * t)
        return 2 * nu * decay * np.sin(x) / (1.5 + decay * np.cos(x))

    u = burgers_spectral(cole_hopf(0.0), TWO_PI, nu, [0.0, 0.5, 1.0])
    assert np.abs(u - np.stack([cole_hopf(t) for t in (0.0, 0.5, 1.0)])).max() < 1e-9
    heat = heat_spectral(np.sin(3 * x), TWO_PI, 0.5, [1.0])
    assert np.abs(heat[0] - np.exp(-4.5) * np.sin(3 * x)).max() < 1e-14
    xx, yy = GridSpec((16, 8), (TWO_PI, np.pi)).coordinates()
    heat2 = heat_spectral(np.sin(xx) * np.cos(2 * yy), (TWO_PI, np.pi), 0.25, [0.5])
    assert np.abs(heat2[0] - np.exp(-0.25 * 5 * 0.5) * np.sin(xx) * np.cos(2 * yy)).max() < 1e-14


# ---------------------------------------------------------------------------- accuracy at 5x the limit
# Measured (float32, 10 frames): relative L2 7.08e-4 (nu 0.5) and 5.19e-3 (nu 0.05) on 128 cells,
# 2.83e-3 and 2.11e-2 on 64: a factor 4.0 per halving of dx, so the error is the scheme's second-order
# *spatial* error; a Richardson estimate from 384 cells, (u_128 - u_384) 9/8, gave the same numbers
# to 0.3 %. The time error (auto substeps against 10x as many) is 9e-6 / 4e-5. Bounds: 1.4x measured.
@pytest.mark.parametrize("nu, bound", [(0.5, 1.0e-3), (0.05, 7.3e-3)])
def test_burgers_at_5x_the_explicit_limit_matches_the_spectral_reference(nu, bound):
    frames = 10
    errors, models = {}, {}
    x128 = GridSpec((128,), (TWO_PI,)).coordinates()[0]
    dt = 5 * Burgers(GridSpec((128,), (TWO_PI,)), viscosity=nu).max_stable_dt(
        {"velocity": to_field(smooth_ic(x128), GridSpec((128,), (TWO_PI,)))})
    for n in (64, 128):
        grid = GridSpec((n,), (TWO_PI,))
        u0 = smooth_ic(grid.coordinates()[0]).astype(np.float32)
        model = models[n] = Burgers(grid, dt=dt, viscosity=nu)  # default settings: substeps="auto"
        state = {"velocity": to_field(u0, grid)}
        u = to_tensor(model.rollout(state, frames)["velocity"], ["time", "batch"]).numpy()
        errors[n] = rel_l2(u, burgers_spectral(u0.astype(np.float64), TWO_PI, nu, dt * np.arange(frames + 1)))
    state = {"velocity": to_field(smooth_ic(x128).astype(np.float32), models[128].grid)}
    assert models[128].substeps_for(state) == 5
    assert errors[128] < bound, errors
    assert 3.5 < errors[64] / errors[128] < 4.5, errors  # second order in space
    many = Burgers(models[128].grid, dt=dt, viscosity=nu, substeps=50)
    a = to_tensor(models[128].rollout(state, frames)["velocity"], ["time", "batch"]).numpy()
    b = to_tensor(many.rollout(state, frames)["velocity"], ["time", "batch"]).numpy()
    assert rel_l2(a, b) < 0.02 * errors[128]  # the time error is negligible


@pytest.mark.parametrize("resolution", [(128,), (64, 64)])
def test_diffusion_at_5x_the_explicit_limit_matches_the_exact_solution(resolution):
    """Both error sources are predicted per Fourier mode (the random states have modes ``|k_a| <= 4``):
    space, the central Laplacian's symbol ``s_a = 2 sin(k_a dx_a / 2) / dx_a`` for ``k_a``; time,
    SSP-RK3's amplification ``R(z) = 1 + z + z^2/2 + z^3/6`` per substep for ``exp(z)``. The relative
    L2 error of the field is at most the largest relative error of a mode."""
    d, frames = 0.5, 10
    grid = GridSpec(resolution, (TWO_PI,) * len(resolution))
    probe = Diffusion(grid, diffusivity=d)
    state = probe.random_state(3, seed=5)
    dt = 5 * probe.max_stable_dt(state)
    model = Diffusion(grid, dt=dt, diffusivity=d)  # default settings
    assert model.substeps_for(state) == 5
    traj = to_tensor(model.rollout(state, frames)["temperature"], ["time", "batch"]).numpy()
    t0 = to_tensor(state["temperature"]).numpy().astype(np.float64)
    times = dt * np.arange(frames + 1)
    exact = heat_spectral(t0, grid.domain_size, d, times)
    central = heat_spectral(t0, grid.domain_size, d, times, laplacian="central")
    # predicted relative errors of the worst mode present, over all frames
    ks = np.stack(np.meshgrid(*[np.arange(5)] * grid.ndim, indexing="ij"), -1).reshape(-1, grid.ndim)[1:]
    lam = d * np.sum((2 * np.sin(ks * np.array(grid.dx) / 2) / np.array(grid.dx)) ** 2, -1)
    k2 = d * np.sum(ks**2.0, -1)
    z = -lam * dt / 5
    steps = 5 * np.arange(1, frames + 1)[:, None]
    time_error = np.abs(((1 + z + z**2 / 2 + z**3 / 6) * np.exp(-z)) ** steps - 1).max()
    space_error = np.abs(np.exp((k2 - lam) * times[1:, None]) - 1).max()
    flat = lambda a: a.reshape(a.shape[: a.ndim - grid.ndim] + (-1,))  # noqa: E731
    err_central, err_exact = rel_l2(flat(traj), flat(central)), rel_l2(flat(traj), flat(exact))
    assert err_central < time_error + 2e-5  # float32 round-off on top
    assert err_exact < time_error + space_error + 2e-5
    assert err_exact > 100 * err_central  # what is left is the spatial error, not the large time step


# ---------------------------------------------------------------------------- where one substep suffices
MODELS = [
    lambda **kw: Burgers(GridSpec((32,), (TWO_PI,)), **kw),
    lambda **kw: Burgers(GridSpec((16, 16), (TWO_PI,)), viscosity=np.full((16, 16), 0.2), **kw),
    lambda **kw: Diffusion(GridSpec((32,), (TWO_PI,)), **kw),
    lambda **kw: AdvectionDiffusion(GridSpec((16, 16), (TWO_PI,)), velocity=(1.0, 0.5), **kw),
    lambda **kw: NavierStokes2D(GridSpec((16, 16), (TWO_PI,)), **kw),
]
IDS = ["burgers1d", "burgers2d-field", "diffusion", "advdiff2d", "navierstokes"]


@pytest.mark.parametrize("make", MODELS, ids=IDS)
def test_auto_takes_one_substep_where_one_is_stable_bit_for_bit(make):
    probe = make()
    state = probe.random_state(2, seed=11)
    dt = 0.9 * probe.max_stable_dt(state)
    auto, one = make(dt=dt), make(dt=dt, substeps=1)
    assert auto.substeps == "auto" and auto.substeps_for(state) == 1
    a, b = auto.rollout(state, 6), one.rollout(state, 6)
    for k in auto.field_names:
        assert torch.equal(to_tensor(a[k]), to_tensor(b[k]))
    cfg = auto.config()
    assert cfg["substeps"] == "auto" and type(auto)(GridSpec(**cfg.pop("grid")), **cfg).config() == auto.config()


def test_dataset_metadata_records_auto(tmp_path):
    model = Burgers(GridSpec((16,), (TWO_PI,)), dt=0.2, viscosity=0.5)  # needs 4 substeps
    path = generate_dataset(model, tmp_path / "b.h5", num_sims=2, num_frames=3, progress=False)
    with DataManager(path) as dm:
        assert dm.metadata["model_config"]["substeps"] == "auto"
        assert np.isfinite(dm.load(0, "velocity")).all()


# ---------------------------------------------------------------------------- user settings win, the cap
def test_user_set_substeps_win():
    grid = GridSpec((64,), (TWO_PI,))
    state = Burgers(grid).random_state(2, seed=3)
    dt = 5 * Burgers(grid).max_stable_dt(state)
    with pytest.raises(StabilityError, match=r"substeps=2\)\. Fix: increase substeps to at least 5 or reduce dt"):
        Burgers(grid, dt=dt, substeps=2).rollout(state, 1)
    with pytest.warns(StabilityWarning, match="increase substeps"):
        Burgers(grid, dt=dt, substeps=2, on_unstable="warn").rollout(state, 0)
    fixed, auto = Burgers(grid, dt=dt, substeps=7), Burgers(grid, dt=dt)
    assert fixed.substeps_for(state) == 7 and auto.substeps_for(state) == 5
    used = record_substeps(fixed)
    traj = to_tensor(fixed.rollout(state, 3)["velocity"])
    assert used == [7, 7, 7]
    v = {"velocity": state["velocity"].values}
    for i in range(3):  # the explicit argument overrides "auto"
        v = auto.step_values(v, substeps=7)
        assert torch.equal(to_tensor(v["velocity"]), traj[i + 1])


def test_more_substeps_than_the_cap_is_an_error_that_names_the_fix():
    grid = GridSpec((128,), (TWO_PI,))
    model = Burgers(grid, dt=1.0, viscosity=0.5)  # limit 0.5 dx^2 / nu = 2.4e-3: ~416 substeps
    state = model.random_state(1, seed=0)
    need = int(np.ceil(1.0 / model.max_stable_dt(state)))
    assert need > 256
    fix = (rf"more than max_substeps=256 substeps per step\. Fix: increase substeps to at least {need} or reduce "
           r"dt \(frames closer together\), or use a coarser grid or a smaller coefficient")
    with pytest.raises(StabilityError, match=fix):
        model.rollout(state, 1)
    with pytest.raises(StabilityError, match=fix):
        model.substeps_for(state)
    with pytest.raises(StabilityError, match="max_substeps=256"):
        model.step_values({"velocity": state["velocity"].values})
    assert Burgers(grid, dt=1.0, viscosity=0.5, max_substeps=need).substeps_for(state) == need
    with pytest.warns(StabilityWarning, match="max_substeps=256"):
        assert Burgers(grid, dt=1.0, viscosity=0.5, on_unstable="warn").substeps_for(state) == need


@pytest.mark.parametrize("kwargs, match", [
    ({"substeps": 0}, r"substeps as an integer >= 1, got 0\. Fix: .*substeps='auto'"),
    ({"substeps": 2.5}, r"substeps as an integer >= 1, got 2\.5"),
    ({"substeps": "fast"}, r"substeps as an integer >= 1, got 'fast'"),
    ({"substeps": True}, r"substeps as an integer >= 1, got True"),
    ({"max_substeps": 0}, r"max_substeps as an integer >= 1, got 0"),
])
def test_bad_substep_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Burgers(GridSpec((16,), (1.0,)), **kwargs)


def test_bad_substeps_argument_is_refused():
    model = Burgers(GridSpec((16,), (TWO_PI,)))
    values = {"velocity": model.random_state(1, seed=0)["velocity"].values}
    with pytest.raises(ValueError, match=r"substeps as an integer >= 1, got 0\. Fix: pass model.substeps_for"):
        model.step_values(values, substeps=0)


# ---------------------------------------------------------------------------- evolving states
def test_rollout_chooses_the_substeps_again_as_the_state_changes():
    """Advection-limited Burgers (cell Reynolds number 3.5 > 2): max|u| decays, and so does the
    number of substeps, ``ceil(dt / min(dx / max|u|, dx^2 / 2 nu))``."""
    grid = GridSpec((64,), (TWO_PI,))
    dx, x = grid.dx[0], grid.coordinates()[0]
    nu = 2.0 * dx / 3.5
    state = {"velocity": to_field((2.0 * np.sin(x))[None].astype(np.float32), grid)}
    model = Burgers(grid, dt=0.5, viscosity=nu, jit=False)  # eager: no trace per distinct n
    used = record_substeps(model)
    traj = model.rollout(state, 8)["velocity"].values
    peaks = [float(math.max(abs(traj.time[i]), traj.time[i].shape)) for i in range(9)]
    expected = [int(np.ceil(0.5 / min(dx / p, 0.5 * dx**2 / nu))) for p in peaks[:-1]]
    assert used == expected and used[0] > used[-1], (used, peaks)


@pytest.mark.slow
def test_forced_navier_stokes_stays_stable_as_it_spins_up():
    """From near rest the Kolmogorov forcing drives max|u| from 0.05 up to ~2: one substep per frame
    blows up, the automatic choice (which bounds the speed by the laminar amplitude) does not."""
    grid = GridSpec((16, 16), (TWO_PI,))
    kw = dict(dt=1.5, viscosity=0.05, forcing_amplitude=2.0, ic_amplitude=0.05)
    auto, one = NavierStokes2D(grid, **kw), NavierStokes2D(grid, substeps=1, on_unstable="ignore", **kw)
    state = auto.random_state(1, seed=0)
    peaks = {}
    for name, model in (("auto", auto), ("one", one)):
        traj = model.rollout(state, 4, check=False)["velocity"].values
        peaks[name] = [float(math.max(abs(traj.time[i]), traj.time[i].shape)) for i in range(5)]
    assert all(np.isfinite(peaks["auto"])) and max(peaks["auto"]) < 1.2 * auto.laminar_amplitude(), peaks
    assert peaks["auto"][-1] > 1.5  # it did spin up
    assert not np.isfinite(peaks["one"][-1]) or peaks["one"][-1] > 100, peaks


# ---------------------------------------------------------------------------- compiled steps
class CountingBurgers(Burgers):
    """Burgers that counts evaluations of its right-hand side (Python runs them only while tracing)."""

    rhs_calls = 0

    def _rhs(self, values, params):
        CountingBurgers.rhs_calls += 1
        return super()._rhs(values, params)


def test_jitted_stepping_traces_once_per_number_of_substeps_and_configuration():
    grid = GridSpec((32,), (TWO_PI,))
    model = CountingBurgers(grid, dt=0.01, viscosity=0.3)
    v = {"velocity": model.random_state(2, seed=1)["velocity"].values}

    def calls(fn):
        before = CountingBurgers.rhs_calls
        fn()
        return CountingBurgers.rhs_calls - before

    assert calls(lambda: model.step_values(v)) > 0  # first call: traced
    assert calls(lambda: [model.step_values(v, {"viscosity": nu}) for nu in (0.1, 0.2, 0.3)]) == 0
    assert calls(lambda: model.step_values(v, substeps=3)) > 0  # a new n: one new trace
    assert calls(lambda: [model.step_values(v, substeps=n) for n in (3, 1, 3)]) == 0
    assert calls(lambda: model.rollout({"velocity": to_field(to_tensor(v["velocity"]), grid)}, 5)) == 0
    fresh = CountingBurgers(grid, dt=0.01, viscosity=0.7)  # same configuration: the same traces
    assert calls(lambda: fresh.step_values(v)) == 0
    other = CountingBurgers(grid, dt=0.02, viscosity=0.3)  # another dt: its own
    assert calls(lambda: other.step_values(v)) > 0


@pytest.mark.filterwarnings("ignore:PyTorch does not support nested tracing")
def test_inside_a_trace_auto_substeps_are_fixed_and_say_so():
    """A caller compiling a whole rollout passes substeps=n; without it the trace's n is kept, and a
    value above 1 is announced."""
    grid = GridSpec((32,), (TWO_PI,))
    model = Burgers(grid, dt=0.2, viscosity=0.3)
    v = {"velocity": model.random_state(1, seed=1)["velocity"].values}
    n = model.substeps_for(v)
    assert n > 1

    def two_steps(values, nu):
        for _ in range(2):
            values = model.step_values(values, {"viscosity": nu})
        return values["velocity"]

    with pytest.warns(StabilityWarning, match=rf"n={n}, chosen from the values the trace is made with"):
        traced = math.jit_compile(two_steps)(v, math.tensor(0.3))
    eager = v
    for _ in range(2):
        eager = model.step_values(eager, substeps=n)
    assert float(math.max(abs(traced - eager["velocity"]), traced.shape)) < 1e-6

    def fixed(values, nu):
        for _ in range(2):
            values = model.step_values(values, {"viscosity": nu}, substeps=n)
        return values["velocity"]

    with warnings.catch_warnings():
        warnings.simplefilter("error", StabilityWarning)
        out = math.jit_compile(fixed)(v, math.tensor(0.3))
    assert float(math.max(abs(out - eager["velocity"]), out.shape)) < 1e-6


@pytest.mark.slow
def test_fresh_jitted_models_do_not_grow_memory():
    """20 fresh models stepped and rolled out: RSS grows < 50 MB (it grew ~120 MB when every model
    compiled its own step, torch keeping each trace)."""
    code = textwrap.dedent("""
        import gc
        import numpy as np
        from hybridkit import GridSpec
        from hybridkit.physics import Burgers, Diffusion

        def rss_mb():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

        def fresh():
            for model in (Burgers(GridSpec((64,), (100.0,)), dt=0.1, viscosity=0.5),
                          Diffusion(GridSpec((32, 32), (6.0,)), dt=0.01, diffusivity=np.full((32, 32), 0.3))):
                state = model.random_state(4, seed=0)
                state = model.step(model.step(state))
                model.rollout(state, 2)

        fresh(); gc.collect()
        start = rss_mb()
        for _ in range(20):
            fresh()
        gc.collect()
        print(rss_mb() - start)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    growth = float(out.stdout.strip().splitlines()[-1])
    assert growth < 50, growth


# ---------------------------------------------------------------------------- resolution
def _burgers_at_cell_reynolds(re: float, **kw):
    grid = GridSpec((128,), (TWO_PI,))
    x = grid.coordinates()[0]
    state = {"velocity": to_field(np.sin(x)[None].astype(np.float32), grid)}  # max|u| = 1
    return Burgers(grid, dt=0.1, viscosity=grid.dx[0] / re, **kw), state


def test_under_resolved_burgers_warns_with_the_fix():
    model, state = _burgers_at_cell_reynolds(16.0)
    assert model.cell_reynolds(state) == pytest.approx(16.0, rel=1e-3)
    issue = model.resolution_issue(state)
    assert issue and "cell Reynolds number max|u| dx / nu is 16" in issue
    assert "Fix: a finer grid (about (512,) cells), or a larger viscosity (about 4 times" in issue
    with pytest.warns(ResolutionWarning, match="does not resolve the flow"):
        model.rollout(state, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        model.rollout(state, 1, check=False)  # check=False: no checks


def test_resolved_burgers_is_silent():
    model, state = _burgers_at_cell_reynolds(1.0)
    assert model.resolution_issue(state) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)
        model.rollout(state, 20)


def test_growth_of_max_u_during_a_rollout_is_reported():
    """Even when the initial state looks resolved, a max|u| that grows (Burgers cannot) warns."""
    model, state = _burgers_at_cell_reynolds(4 * CELL_REYNOLDS_LIMIT)
    model._resolution_issue = lambda values, params: None  # the initial check silenced
    with pytest.warns(ResolutionWarning, match=r"max\|velocity\| grew by a factor 1\.\d+ during the rollout"):
        model.rollout(state, 25)
