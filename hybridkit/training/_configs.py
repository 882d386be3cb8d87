"""The trainers' typed configs, and the one place where a plain dict becomes one of them.

Each trainer takes its dataclass. At the public boundary it also accepts what the original
design note passes around: the ``trainer_params`` section of an experiment config, or the whole
config (``{"model": ..., "data": ..., "trainer_params": {...}}``) with the keys of *both*
trainers in one ``trainer_params`` (the note hands the same ``config`` to the synthetic and the
physical trainer). :func:`trainer_config` converts that once: keys that belong to the other
trainer, or to the code that builds the data and calls ``train()`` (``epochs``, ``batch_size``,
``train_sim``, ``val_sim``), are accepted and ignored; any other unknown key is an error that
names the closest known key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from .._checks import is_integer
from .._config import ConfigError, from_dict
from ..physics import PENALTIES as REGULARIZERS

__all__ = ["TensorConfig", "SyntheticConfig", "FieldConfig", "PhysicalConfig", "HybridConfig", "trainer_config", "CALLER_KEYS"]

T = TypeVar("T")

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "exponential", "step", "cosine")
ON_NAN = ("raise", "rollback")
# Gradient-based methods phiml's minimize can run. Checked up front: an unknown scipy method
# raises inside phiml's worker thread, which then never releases the main thread.
METHODS = ("auto", "L-BFGS-B", "BFGS", "CG", "TNC", "GD")  # SLSQP breaks phiml's callback
STARTS = ("real", "fresh", "mixed")
REGIONS = ("unobserved", "all")
WEIGHTINGS = ("skill", "fixed")
#: trainer_params keys read by the code that builds the data and calls ``train()``, not by a trainer
CALLER_KEYS = ("epochs", "batch_size", "train_sim", "val_sim")


@dataclass(frozen=True)
class TensorConfig:
    """Options of every torch trainer: the optimizer, its learning-rate schedule, device, seed."""

    learning_rate: float = 1e-3  # initial step size of the optimizer
    optimizer: str = "adam"  # "adam" or "adamw"
    weight_decay: float = 0.0  # L2 (adam) or decoupled (adamw) weight decay
    lr_schedule: str = "constant"  # "constant", "exponential", "step" or "cosine"; stepped once per epoch
    lr_gamma: float = 0.95  # factor per epoch ("exponential") or per lr_period epochs ("step")
    lr_period: int = 100  # epochs per decay ("step") or of the half cosine down to 0 ("cosine")
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    seed: int = 0  # seeds the trainer's random generator (the model's initial weights: the caller)
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ValueError(f"Expected learning_rate > 0, got {self.learning_rate}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Expected optimizer in {list(OPTIMIZERS)}, got {self.optimizer!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"Expected lr_schedule in {list(LR_SCHEDULES)}, got {self.lr_schedule!r}.")
        if not is_integer(self.lr_period) or self.lr_period < 1 or not self.lr_gamma > 0:
            raise ValueError(f"Expected an integer lr_period >= 1 and lr_gamma > 0, got {self.lr_period}, "
                             f"{self.lr_gamma}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"Expected grad_clip > 0 or None, got {self.grad_clip}.")


@dataclass(frozen=True)
class SyntheticConfig(TensorConfig):
    """Options of :class:`~hybridkit.training.SyntheticTrainer` (``trainer_params``)."""

    num_predict_steps: int = 1  # rollout length of the loss, unless rollout_schedule says otherwise
    # ((epoch, steps), ...): from global epoch `epoch` on (counted over all train() calls), roll out
    # `steps` steps; before the first entry num_predict_steps. E.g. ((0, 1), (20, 4)).
    rollout_schedule: tuple | None = None
    # std of Gaussian noise added to the dynamic channels of each initial state: teaches the
    # network to correct small errors of its own rollouts (0: off)
    noise_std: float = 0.0
    # a non-finite loss in an epoch (divergence): "raise" DivergenceError, or "rollback": restore
    # the state of the epoch's start, multiply the learning rate by nan_lr_factor and retry the
    # epoch (at most nan_retries times, a DivergenceWarning each time). Either way the trainer is
    # left at the last good state; NaN / inf in the data is a ValueError, never retried.
    on_nan: str = "raise"
    nan_lr_factor: float = 0.5  # learning-rate factor per rollback, in (0, 1)
    nan_retries: int = 3  # rollbacks per epoch before giving up with DivergenceError

    def __post_init__(self):
        super().__post_init__()
        if not is_integer(self.num_predict_steps) or self.num_predict_steps < 1:
            raise ValueError(f"Expected an integer num_predict_steps >= 1, got {self.num_predict_steps!r}.")
        if self.noise_std < 0:
            raise ValueError(f"Expected noise_std >= 0, got {self.noise_std}.")
        if self.on_nan not in ON_NAN:
            raise ValueError(f"Expected on_nan in {ON_NAN}, got {self.on_nan!r}.")
        if not 0 < self.nan_lr_factor < 1 or not is_integer(self.nan_retries) or self.nan_retries < 0:
            raise ValueError(f"Expected 0 < nan_lr_factor < 1 and an integer nan_retries >= 0, got "
                             f"{self.nan_lr_factor}, {self.nan_retries!r}.")
        object.__setattr__(self, "rollout_schedule", _parse_schedule(self.rollout_schedule))

    @property
    def max_rollout_steps(self) -> int:
        """The longest rollout of the loss over all epochs (what the data's windows must hold)."""
        return max([self.num_predict_steps] + [s for _, s in self.rollout_schedule or ()])


@dataclass
class FieldConfig:
    """Options of every PhiFlow-side trainer: how ``phi.math.minimize`` runs and what a failed fit does."""

    method: str = "L-BFGS-B"  # any scipy.optimize.minimize method with gradients, or "GD"
    abs_tol: float = 1e-8  # scipy `tol`; the objective is 1 at the initial guess, so it is relative
    max_iterations: int = 100  # optimiser iterations per fit
    suppress_convergence: bool = False  # True: a fit that ran out of iterations is accepted quietly
    on_failure: str = "raise"  # diverged / not converged / not identifiable: "raise" FitError or "warn" and go on
    # lower non-negative parameters' upper bound to what the explicit scheme can integrate: with
    # substeps="auto" what max_substeps substeps per frame can, with a user-set substeps its stability limit
    clamp_to_stable: bool = True
    # standard errors of the fitted numbers at the optimum (a few extra rollouts; see FitResult.std)
    uncertainty: bool = True

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Expected method in {METHODS}, got {self.method!r}.")
        if not is_integer(self.max_iterations) or self.max_iterations < 1:
            raise ValueError(f"Expected an integer max_iterations >= 1, got {self.max_iterations!r}.")
        if not float(self.abs_tol) > 0:
            raise ValueError(f"Expected abs_tol > 0, got {self.abs_tol}.")
        if self.on_failure not in ("raise", "warn"):
            raise ValueError(f"Expected on_failure 'raise' or 'warn', got {self.on_failure!r}.")


@dataclass
class PhysicalConfig(FieldConfig):
    """Options of :class:`~hybridkit.training.PhysicalTrainer` (``trainer_params``)."""

    num_predict_steps: int = 10  # rollout steps per sample the loss compares against targets
    regularizer: str | None = None  # on field parameters: "gradient" (H1), "tv" or "laplacian"
    reg_weight: float = 0.0  # weight of the regulariser, in units of the data loss
    max_samples: int | None = None  # data items per fit (evenly spaced if indexable); None: all
    # fit each window's initial state together with the coefficients (errors-in-variables, as 4D-Var):
    # noise in the initial states then no longer biases the coefficients; unobserved cells of an
    # initial state are constrained by the dynamics only
    fit_initial_state: bool = False
    # weight of an observed initial-state point relative to an observed target point (1: the same
    # noise in every frame; 0: the initial states are free, only the dynamics constrain them)
    initial_state_weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.fit_initial_state, bool):
            raise ValueError(f"Expected fit_initial_state as true or false, got {self.fit_initial_state!r}.")
        if not 0 <= float(self.initial_state_weight) < float("inf"):
            raise ValueError(f"Expected a finite initial_state_weight >= 0, got {self.initial_state_weight!r}.")
        if not is_integer(self.num_predict_steps) or self.num_predict_steps < 1:
            raise ValueError(f"Expected an integer num_predict_steps >= 1, got {self.num_predict_steps!r}.")
        if self.regularizer is not None and self.regularizer not in REGULARIZERS:
            raise ValueError(f"Expected regularizer in {REGULARIZERS} or None, got {self.regularizer!r}.")
        if float(self.reg_weight) < 0 or (self.regularizer is None and self.reg_weight):
            raise ValueError(f"Expected reg_weight >= 0 and, when > 0, a regularizer; got reg_weight="
                             f"{self.reg_weight}, regularizer={self.regularizer!r}.")
        if self.max_samples is not None and (not is_integer(self.max_samples) or self.max_samples < 1):
            raise ValueError(f"Expected an integer max_samples >= 1 or None, got {self.max_samples!r}.")


@dataclass(frozen=True)
class HybridConfig:
    """Options of :class:`~hybridkit.training.HybridTrainer` (the ``hybrid`` section)."""

    warmup_epochs: int = 20  # synthetic-only epochs on the real data before the first cycle
    synthetic_epochs: int = 10  # synthetic epochs per cycle (real + P-generated windows)
    physical_epochs: int = 1  # physical fits per cycle (real + S-generated targets)
    batch_size: int = 16  # windows per synthetic batch
    # --- physical -> synthetic
    physical_trajectories: int = 16  # fresh initial states P rolls out per cycle
    physical_frames: int | None = None  # frames per P rollout; None: as many as the real data have
    alpha_synthetic: float = 1.0  # w_S: weight of a P-generated window relative to a real one
    generated_per_real: float | None = None  # count-based augmentation; None: every generated window
    # scale w_S by n_real / n_generated so the generated part weighs alpha_synthetic times the real
    # part in total, whatever the counts
    proportional: bool = False
    # --- synthetic -> physical
    synthetic_trajectories: int = 8  # S rollouts per cycle that serve P as targets
    synthetic_start: str = "real"  # where they start: "real" data states, "fresh" random ones, "mixed"
    alpha_physical: float = 1.0  # w_P: the pull of S's targets on P relative to the data term
    # how much S's targets count, per point (see HybridTrainer): "skill" multiplies alpha_physical
    # by S's demonstrated skill, the inverse-variance weight sigma_D^2 / (E_S - sigma_D^2) clipped
    # to [0, 1] from the held-out windows (sigma_D^2: P's misfit there, the noise floor; E_S: S's);
    # "fixed": alpha_physical alone
    target_weighting: str = "skill"
    # where S's targets count: "all" points, or only the "unobserved" ones (where data are missing)
    interaction_region: str = "all"
    # weight of S's targets where nothing is observed (outside the observation mask), relative to
    # the observed points: S was never checked there, and what it predicts there it learned from
    # P's own trajectories; 0 keeps P's fit there to the data and its regulariser (do no harm), 1
    # lets the network's inductive bias act as a prior (the HYCO authors' choice)
    unobserved_weight: float = 0.0
    # --- safeguards
    # with target_weighting="skill": the network's targets may move a fitted number at most this
    # many standard errors of the data-only fit (its Gauss-Newton errors: what the data pin down);
    # a larger move keeps the data-only estimate. Numbers the data do not constrain (infinite or
    # unknown error) move freely: that is where cooperation can help. None: no limit
    max_shift_std: float | None = 2.0
    revert: bool = True  # undo an update that makes the loss on the observed windows (see holdout) worse
    revert_tolerance: float = 0.0  # relative worsening tolerated before reverting
    # every `holdout`-th window start of the physical model's observed windows is held out of its
    # fit: the windows that judge its reversion and measure S's skill (0, or windows with fewer
    # start frames than that: judged on the training windows, and with target_weighting="skill"
    # S's targets get no weight, its skill being unmeasurable). The network trains on every
    # observed window and its reversion is judged on them
    holdout: int = 5
    seed: int = 0  # seeds fresh initial states, draws and loader order (per cycle)

    def __post_init__(self):
        for name in ("warmup_epochs", "synthetic_epochs", "physical_epochs"):
            _count(self, name, 0)
        for name in ("batch_size", "physical_trajectories", "synthetic_trajectories"):
            _count(self, name, 1)
        if self.physical_frames is not None:
            _count(self, "physical_frames", 2)
        if self.max_shift_std is not None and not float(self.max_shift_std) > 0:
            raise ValueError(f"Expected max_shift_std > 0 (standard errors) or None (no limit), got "
                             f"{self.max_shift_std!r}.")
        for name in ("alpha_synthetic", "alpha_physical", "revert_tolerance"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"Expected {name} >= 0, got {getattr(self, name)}.")
        if self.synthetic_start not in STARTS:
            raise ValueError(f"Expected synthetic_start in {STARTS}, got {self.synthetic_start!r}.")
        if self.interaction_region not in REGIONS:
            raise ValueError(f"Expected interaction_region in {REGIONS}, got {self.interaction_region!r}.")
        if self.target_weighting not in WEIGHTINGS:
            raise ValueError(f"Expected target_weighting in {WEIGHTINGS}, got {self.target_weighting!r}.")
        if not 0 <= float(self.unobserved_weight) <= 1:
            raise ValueError(f"Expected 0 <= unobserved_weight <= 1, got {self.unobserved_weight}.")
        if not is_integer(self.holdout) or self.holdout == 1 or self.holdout < 0:
            raise ValueError(f"Expected holdout as 0 (none) or an integer >= 2 (every k-th window start), got "
                             f"{self.holdout!r}.")


def trainer_config(cls: type[T], config: Mapping[str, Any] | T | None) -> T:
    """The typed config ``cls`` of a trainer from what its constructor was given.

    Accepted: an instance of ``cls`` (as is), None (the defaults), the ``trainer_params``
    section as a dict, or a whole experiment config holding one (``config["trainer_params"]``;
    nothing else of it is read). Keys of the other trainers' configs and :data:`CALLER_KEYS` are
    accepted and ignored, so one dict can serve both trainers.

    Raises:
        ConfigError: a key no trainer knows (with the closest known key), a whole experiment
            config without ``trainer_params``, or a value the dataclass refuses.
    """
    if config is None or isinstance(config, cls):
        return from_dict(cls, config)
    if not isinstance(config, Mapping):
        raise ConfigError(f"Expected a dict or a {cls.__name__}, got {type(config).__name__}.")
    where = "trainer_params"
    if "trainer_params" in config:
        section = config["trainer_params"]
        where = 'config["trainer_params"]'
    elif {"model", "data", "run_params"} & set(config):
        raise ConfigError(
            "The experiment config has no 'trainer_params' section. Fix: add trainer_params: "
            f"{{...}} with {cls.__name__} keys, or pass a {cls.__name__}."
        )
    else:
        section = config
    if not isinstance(section, Mapping):
        raise ConfigError(f"Expected {where} to be a dict, got {type(section).__name__}.")
    own = {f.name for f in dataclasses.fields(cls)}
    foreign = set(CALLER_KEYS) | {f.name for c in _TRAINER_CONFIGS if c is not cls for f in dataclasses.fields(c)}
    kept = {k: v for k, v in section.items() if k in own or k not in foreign}
    return from_dict(cls, kept, where=f"{where} ({cls.__name__})")


_TRAINER_CONFIGS = (SyntheticConfig, PhysicalConfig)


def _count(cfg, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if not is_integer(value) or value < minimum:
        raise ValueError(f"Expected {name} as an integer >= {minimum}, got {value!r}.")


def _parse_schedule(schedule) -> tuple | None:
    if schedule is None:
        return None
    try:
        entries = tuple((int(e), int(s)) for e, s in schedule)
    except (TypeError, ValueError):
        entries = None
    epochs = [e for e, _ in entries or ()]
    if not entries or any(e < 0 or s < 1 for e, s in entries) or epochs != sorted(set(epochs)):
        raise ValueError(
            f"Expected rollout_schedule as [(epoch, steps), ...] with strictly increasing epochs >= 0 "
            f"and steps >= 1, got {schedule!r}. Example: [(0, 1), (20, 4)]."
        )
    return entries
