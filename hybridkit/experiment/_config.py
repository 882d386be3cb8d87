"""Experiment configs: YAML read as data, checked against small dataclasses, overridable."""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .._checks import check_count, check_real
from .._config import ConfigError, from_dict
from .._yaml import load_yaml, read_yaml
from ..training import HybridConfig, PhysicalConfig, SyntheticConfig

MODES = ("physical", "synthetic", "hybrid", "compare")


@dataclass(frozen=True)
class DataSection:
    """The system and what is observed of it.

    The layout of a named dataset's config (:class:`hybridkit.data.DatasetConfig`: ``pde``,
    ``pde_params``, ``num_frames``, ``seed``), with the simulations split into observed training
    and held-out test ones, and what is observed of the training ones.
    """

    pde: str = "Burgers"  # physical model name (hybridkit.models.ModelRegistry)
    # grid (resolution, domain_size, boundary), dt and the TRUE coefficients; a field coefficient
    # may be an expression of x, y, L (= Lx), Lx, Ly, e.g. "0.1 + 0.9 * sin(pi * x / L)**2", or a
    # parametric field {parametrization: {type: GaussianBumps, num_bumps: 2}, theta: [...]}
    pde_params: dict = field(default_factory=lambda: {"resolution": [64], "domain_size": [100.0], "dt": 0.1,
                                                       "viscosity": 0.5})
    num_train: int = 8  # observed simulations (training data)
    num_test: int = 8  # held-out simulations (evaluation only, never observed)
    num_frames: int = 21  # frames per simulation, the initial state included
    noise: float = 0.0  # noise on the observed data, relative to their std (0.05 = 5 %)
    observed_region: list | None = None  # [[low, high], ...] per axis: where data exist; None: everywhere
    observed_stride: int | None = None  # sensors: observe every k-th cell per axis (inside observed_region); None: all
    observed_every: int | None = None  # observe every k-th target frame of a window; None: all
    seed: int = 0  # initial states of the simulations (train and test) and the noise

    def __post_init__(self):
        for name in ("num_train", "num_test"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Expected {name} >= 1, got {getattr(self, name)}.")
        if int(self.num_frames) < 2:
            raise ValueError(f"Expected num_frames >= 2, got {self.num_frames}.")
        if not 0 <= float(self.noise) < 10:
            raise ValueError(f"Expected 0 <= noise < 10 (relative), got {self.noise}.")
        _check_mapping(self.pde_params, "data.pde_params", "{resolution: [64], domain_size: [100.0], viscosity: 0.5}")
        check_count(self.seed, "data.seed", maximum=_SEED_MAX, fix="e.g. seed: 0.")
        if self.observed_every is not None:
            check_count(self.observed_every, "data.observed_every", minimum=1, fix="e.g. observed_every: 5, or null.")
        if self.observed_region is not None and not _is_region(self.observed_region):
            raise ValueError(
                f"Expected data.observed_region as [[low, high], ...] (one pair of numbers per axis) or "
                f"None, got {self.observed_region!r}. Fix: e.g. [[0, 50]] for the left half of [0, 100)."
            )


@dataclass(frozen=True)
class SyntheticSection:
    """The network and its trainer."""

    model: str = "UNet"  # network name (hybridkit.models.ModelRegistry)
    model_params: dict = field(default_factory=dict)  # its options; channels and ndim come from the data
    trainer_params: SyntheticConfig = field(default_factory=SyntheticConfig)  # SyntheticTrainer options
    epochs: int = 40  # synthetic-only mode (compare mode: warm-up + cycles x synthetic_epochs)
    batch_size: int = 16  # windows per batch, in the synthetic-only and the hybrid run alike
    init_seed: int = 0  # seeds the network's initial weights

    def __post_init__(self):
        _check_mapping(self.model_params, "synthetic.model_params", "{features: 16, levels: 2}")
        check_count(self.epochs, "synthetic.epochs", minimum=1,
                    fix="train at least one epoch, e.g. epochs: 40 (compare mode derives its epochs from hybrid).")
        check_count(self.batch_size, "synthetic.batch_size", minimum=1, fix="e.g. batch_size: 16.")
        check_count(self.init_seed, "synthetic.init_seed", maximum=_SEED_MAX, fix="e.g. init_seed: 0.")
        object.__setattr__(self, "trainer_params",
                           from_dict(SyntheticConfig, self.trainer_params, where="synthetic.trainer_params"))


@dataclass
class RunPhysicalConfig(PhysicalConfig):
    """:class:`~hybridkit.training.PhysicalConfig` as an experiment uses it: a fit that fails
    warns and the run goes on (the evaluation on held-out data says how good it is)."""

    on_failure: str = "warn"


@dataclass(frozen=True)
class PhysicalSection:
    """The learnable coefficients and the fit."""

    # name -> initial guess: a number, an expression of x, y, L (a field), or a parametric field
    # {parametrization: {type: GaussianBumps, num_bumps: 2}, theta: [...]} (hybridkit.data.parametric_spec)
    initial: dict = field(default_factory=lambda: {"viscosity": 2.5})
    bounds: dict = field(default_factory=dict)  # name -> [low, high]; default: the model's valid range
    trainer_params: RunPhysicalConfig = field(default_factory=lambda: RunPhysicalConfig())  # PhysicalTrainer options
    epochs: int = 1  # physical-only mode: fits (compare mode: cycles x physical_epochs)

    def __post_init__(self):
        _check_mapping(self.initial, "physical.initial", "{viscosity: 2.5}")
        _check_mapping(self.bounds, "physical.bounds", "{viscosity: [0.01, 5.0]}")
        object.__setattr__(self, "trainer_params",
                           from_dict(RunPhysicalConfig, self.trainer_params, where="physical.trainer_params"))
        check_count(self.epochs, "physical.epochs", minimum=1, fix="fit at least once, e.g. epochs: 1.")
        bad = {k: v for k, v in self.bounds.items() if not _is_pair(v)}
        if bad:
            raise ValueError(f"Expected physical.bounds as name -> [low, high], got {bad}. Fix: e.g. "
                             "{viscosity: [0.01, 5.0]}.")
        for name, (low, high) in self.bounds.items():
            check_real(low, f"the lower bound of physical.bounds.{name}", fix="e.g. [0.01, 5.0].")
            check_real(high, f"the upper bound of physical.bounds.{name}", fix="e.g. [0.01, 5.0].")
            if not low < high:
                raise ValueError(f"Expected physical.bounds.{name} as [low, high] with low < high, got "
                                 f"{[low, high]}. Fix: e.g. [{min(low, high)}, {max(low, high)}].")


@dataclass(frozen=True)
class EvaluateSection:
    """How the models are judged on the held-out simulations."""

    steps: int = 10  # rollout steps from frame 0 of each held-out simulation

    def __post_init__(self):
        check_count(self.steps, "evaluate.steps", minimum=1, fix="e.g. steps: 10 (at most data.num_frames - 1).")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: ``python -m hybridkit run CONFIG.yaml``."""

    name: str = "experiment"  # run name: a plain folder name (results go to runs/<name>/ unless --out)
    description: str = ""  # one line for tables and logs
    mode: str = "hybrid"  # "physical", "synthetic", "hybrid", or "compare" (all three on the same data)
    cycles: int = 3  # hybrid cycles
    data: DataSection = field(default_factory=DataSection)
    synthetic: SyntheticSection = field(default_factory=SyntheticSection)
    physical: PhysicalSection = field(default_factory=PhysicalSection)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)

    def __post_init__(self):
        # the name becomes a folder under runs/: it must not lead anywhere else
        if (not isinstance(self.name, str) or not self.name or self.name in (".", "..")
                or "/" in self.name or "\\" in self.name or "\0" in self.name):
            raise ValueError(
                f"Expected name to be a plain folder name (no '/', '\\' or '..'; results go to "
                f"runs/<name>/), got {self.name!r}. Fix: e.g. name: burgers_run1; choose the folder "
                "itself with --out."
            )
        if self.mode not in MODES:
            raise ValueError(f"Expected mode in {MODES}, got {self.mode!r}.")
        if int(self.cycles) < 0:
            raise ValueError(f"Expected cycles >= 0, got {self.cycles}.")
        # seeds that would otherwise be refused only where they are used, after minutes of work
        for where, seed in (("synthetic.trainer_params.seed", self.synthetic.trainer_params.seed),
                            ("hybrid.seed", self.hybrid.seed)):
            if isinstance(seed, int):
                check_count(seed, where, maximum=_SEED_MAX, fix="a non-negative integer, e.g. 0.")


_SEED_MAX = 2**63 - 1  # seeds are stored as int64


def _check_mapping(value, where: str, example: str) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"Expected {where} to be a mapping, got {type(value).__name__} {value!r}. "
                         f"Fix: e.g. {example}.")


def _is_pair(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def _is_region(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= 1 and all(_is_pair(r) for r in value)


_SECTIONS = {"data": DataSection, "synthetic": SyntheticSection, "physical": PhysicalSection,
             "hybrid": HybridConfig, "evaluate": EvaluateSection}


def experiment_config(doc: Mapping[str, Any] | ExperimentConfig | None) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a plain dict (unknown keys anywhere are errors).

    The hybrid run's batch size is ``synthetic.batch_size`` (one batch size for the network in
    every mode, so a comparison is fair): a different ``hybrid.batch_size`` is refused.
    """
    if isinstance(doc, ExperimentConfig):
        return doc
    doc = dict(doc or {})
    physical = doc.get("physical")
    if physical is None or isinstance(physical, Mapping):  # from_dict converts trainer_params before
        physical = dict(physical or {})                   # PhysicalSection sees it: the default goes in here
        params = physical.get("trainer_params")
        if params is None or isinstance(params, Mapping):
            physical["trainer_params"] = {"on_failure": "warn", **dict(params or {})}
        doc["physical"] = physical
    top = {k: v for k, v in doc.items() if k not in _SECTIONS}
    sections = {k: from_dict(cls, doc.get(k), where=k) for k, cls in _SECTIONS.items()}
    hybrid, batch = doc.get("hybrid"), sections["synthetic"].batch_size
    if isinstance(hybrid, Mapping) and "batch_size" in hybrid and hybrid["batch_size"] != batch:
        raise ConfigError(f"hybrid.batch_size={hybrid['batch_size']!r} differs from synthetic.batch_size={batch!r}: "
                          "the network's batch size is synthetic.batch_size in every mode (synthetic-only and "
                          "hybrid alike). Fix: remove hybrid.batch_size and set synthetic.batch_size.")
    sections["hybrid"] = dataclasses.replace(sections["hybrid"], batch_size=batch)
    return from_dict(ExperimentConfig, {**top, **sections}, where="experiment config")


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[ExperimentConfig, dict]:
    """Read a YAML experiment config (:func:`hybridkit._yaml.read_yaml`: plain data only) and apply
    overrides.

    Args:
        path: the YAML file.
        overrides: ``"section.key=value"`` strings; the value is parsed as YAML
            (``hybrid.alpha_synthetic=0.5``, ``data.observed_region=[[0, 50]]``).

    Returns:
        ``(config, plain dict)``: the dict is what gets stored with the results.

    Raises:
        FileNotFoundError: no file at ``path``.
        ConfigError: the file is not valid YAML (or not UTF-8 text, or not a regular file), holds
            what a config must not (aliases that expand too far, duplicate keys, dates, sets,
            binary data, tags, deep nesting; see :mod:`hybridkit._yaml`), is empty or not a
            mapping, an override is malformed, or a key or value is wrong.
    """
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"Expected a mapping (key: value lines) at the top of {path}, got {type(doc).__name__}. "
                          "Fix: see configs/*.yaml for the layout.")
    doc = apply_overrides(doc, overrides)
    return experiment_config(doc), doc


def apply_overrides(doc: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """A copy of ``doc`` with ``"a.b.c=value"`` overrides applied (values parsed by
    :func:`hybridkit._yaml.load_yaml`: an empty value is refused, write ``key=null`` for None)."""
    doc = copy.deepcopy(dict(doc))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected an override as key=value (e.g. hybrid.alpha_synthetic=0.5), got {item!r}.")
        value = load_yaml(raw, where=f"The value of override {item!r}")
        node = doc
        parts = key.strip().split(".")
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"Override {item!r}: {p!r} is not a section.")
            node = child
        node[parts[-1]] = value
    return doc
