"""The Cramér-Rao bound of an experiment's scalar coefficients (hybridkit.experiment.information_bound)."""
import numpy as np
import pytest
from phiml import math

from hybridkit import GridSpec
from hybridkit.__main__ import main
from hybridkit._config import ConfigError
from hybridkit.experiment import information_bound, load_config
from hybridkit.experiment._bound import _trajectory_information
from hybridkit.physics import Diffusion

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
N, L, D, DT, STEPS, SIGMA = 32, 10.0, 0.3, 0.05, 12, 0.01


def _sine_trajectory(model):
    """One Fourier mode, decaying at the discrete Laplacian's rate (exact in space; RK3 in time)."""
    x = (np.arange(N) + 0.5) * L / N
    k = 2 * np.pi / L
    k2 = (2 * N / L * np.sin(k * L / N / 2)) ** 2  # -eigenvalue of the 3-point Laplacian
    t = np.arange(STEPS + 1)[:, None] * DT
    return np.sin(k * x)[None] * np.exp(-D * k2 * t), k2, t


def _information(mask=None, free=False):
    model = Diffusion(GridSpec((N,), (L,)), dt=DT, diffusivity=D)
    u, k2, t = _sine_trajectory(model)
    with math.precision(64):
        info = _trajectory_information(model, {"temperature": u}, {"diffusivity": D}, {"temperature": SIGMA}, mask,
                                       free=free)
    return float(info[0, 0]), u, k2, t


def test_known_initial_state_bound_matches_the_analytic_sensitivity():
    """du/dD = -k^2 t u for a decaying mode: the information is sum (k^2 t u)^2 / sigma^2."""
    info, u, k2, t = _information()
    exact = float(np.sum((k2 * t[1:] * u[1:]) ** 2)) / SIGMA**2
    assert info == pytest.approx(exact, rel=2e-3)


def test_half_the_domain_observed_gives_half_the_information():
    """sin^2 has period L/2: the left half of the cells holds exactly half of the mode's information."""
    full, *_ = _information()
    half, *_ = _information(mask=np.arange(N) < N // 2)
    assert half == pytest.approx(full / 2, rel=1e-6)


def test_unknown_initial_states_can_only_lose_information():
    known, *_ = _information()
    free, *_ = _information(free=True)
    assert 0 < free < known


def test_the_evidence_bound_and_its_command(capsys):
    """`python -m hybridkit bound` prints what information_bound returns; known states bound it from below."""
    cfg, _ = load_config("configs/evidence_a_noisy_viscosity.yaml", ["data.seed=0"])
    free = information_bound(cfg)["viscosity"]
    known = information_bound(cfg, initial="known")["viscosity"]
    assert 0 < known["relative_std"] < free["relative_std"] < 1
    assert free["mean_abs_error"] == pytest.approx(np.sqrt(2 / np.pi) * free["relative_std"])
    assert main(["bound", "configs/evidence_a_noisy_viscosity.yaml", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert f"| viscosity | 0 | {free['relative_std']:.3g} | {free['mean_abs_error']:.3g} |" in out


@pytest.mark.parametrize("config, override, pattern", [
    ("evidence_a_noisy_viscosity", "data.noise=0", "no noise"),
    ("evidence_c_partial_field", "data.noise=0.1", "scalar coefficient"),  # a field coefficient only
])
def test_a_bound_that_cannot_be_computed_says_why(config, override, pattern):
    cfg, _ = load_config(f"configs/{config}.yaml", [override, "data.num_test=1"])
    with pytest.raises(ConfigError, match=pattern):
        information_bound(cfg)
    with pytest.raises(ConfigError, match="Expected initial="):
        information_bound(load_config("configs/evidence_a_noisy_viscosity.yaml")[0], initial="exact")


def test_the_evidence_table_states_the_bound_of_a_noisy_scenario():
    from hybridkit.experiment._evidence import evidence_table, scenario_bound

    cfg, _ = load_config("configs/evidence_a_noisy_viscosity.yaml", ["data.seed=0"])
    bound = scenario_bound(cfg)
    assert bound == {"viscosity": pytest.approx(information_bound(cfg)["viscosity"]["mean_abs_error"])}
    assert scenario_bound(load_config("configs/evidence_b_few_trajectories.yaml")[0]) is None  # noiseless
    record = {"scenario": "a", "seed": 0, "metric": "viscosity: relative error", "physical": 0.1, "synthetic": None,
              "hybrid": 0.1, "ratio": 1.0}
    text = evidence_table([record], bounds={"a": [{"viscosity": 0.05}, {"viscosity": 0.07}]})
    assert "a, viscosity: the Cramér-Rao bound (initial states unknown) allows a mean relative error of no less " \
           "than 0.06 for an unbiased estimate (0.05-0.07 over the 2 seeds" in text


@pytest.mark.slow
def test_the_joint_initial_state_fit_of_evidence_a_is_at_its_bound(one_torch_thread):
    """Evidence (a)'s clean data of seed 0 with 16 fresh noise draws: the joint fit's errors spread as the
    bound says (measured with 20 draws: spread 0.144 against a bound of 0.122, mean error -0.03) and are
    not biased; an estimator that lost information (the plain fit, or a bug in the bound) would not be."""
    from hybridkit.convert import to_field
    from hybridkit.data import DataManager, add_noise
    from hybridkit.experiment import prepare_data
    from hybridkit.physics import learnable
    from hybridkit.training import PhysicalTrainer

    cfg, _ = load_config("configs/evidence_a_noisy_viscosity.yaml", ["data.seed=0"])
    bound = information_bound(cfg)["viscosity"]["relative_std"]
    data = prepare_data(cfg)
    model = data.model
    with DataManager(data.clean) as dm:
        clean = np.stack([dm.load(s, "velocity") for s in data.train_sims])
    errors = []
    for k in range(16):
        y = add_noise(clean, cfg.data.noise, seed=1000 + k)
        trainer = PhysicalTrainer({"num_predict_steps": clean.shape[1] - 1, "fit_initial_state": True,
                                   "on_failure": "warn"}, model, [learnable("viscosity", 2.5)])
        r = trainer.fit({"velocity": to_field(y[:, 0], model.grid)},
                        {"velocity": to_field(y[:, 1:], model.grid, batch_names=("batch", "time"))}, progress=False)
        errors.append(r.params["viscosity"] / 0.5 - 1)
    errors = np.asarray(errors)
    spread = errors.std(ddof=1)
    print(f"\nbound {bound:.3f}, spread {spread:.3f}, mean error {errors.mean():+.3f}")
    assert 0.6 * bound < spread < 1.6 * bound
    assert abs(errors.mean()) < 3 * spread / np.sqrt(len(errors))
