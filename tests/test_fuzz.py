"""Fuzzing the public boundary: random arguments and config values give either a working object
or one of the documented errors (ValueError and its kin ConfigError / DatasetFormatError /
ExpressionError / StabilityError, KeyError, IndexError, TypeError), never a crash
(AttributeError, OverflowError, ZeroDivisionError, RecursionError, ...) and never a hang.

Each example starts from valid arguments and breaks none, one or two of them (``faulty``), so
that accepted calls are common enough to check what they return, and every check behind the
first one is reached. Examples are bounded (small grids, few frames, 100 per test, derandomized:
the same examples every run), so the file takes seconds.
"""
from __future__ import annotations

import copy
import time

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hybridkit import GridSpec
from hybridkit._config import ConfigError
from hybridkit._expr import ExpressionError, evaluate
from hybridkit.data import DataManager, DatasetFormatError, HybridDataset, generate_dataset
from hybridkit.experiment import experiment_config, load_config
from hybridkit.experiment._config import ExperimentConfig
from hybridkit.experiment import build_physical_model
from hybridkit.data import coefficient
from hybridkit.models import ConvNet, ModelRegistry
from hybridkit.physics import Burgers, learnable
from hybridkit.training import PhysicalTrainer, SyntheticTrainer

torch.set_num_threads(1)
N, SIMS, FRAMES = 8, 3, 6
DOCUMENTED = (ValueError, KeyError, IndexError, TypeError)
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset with a dynamic field (velocity) and a field parameter (a static channel)."""
    x = (np.arange(N) + 0.5) / N
    model = Burgers(GridSpec((N,), (10.0,)), dt=0.05, viscosity=0.3 + 0.2 * np.sin(np.pi * x) ** 2, jit=False)
    return generate_dataset(model, tmp_path_factory.mktemp("fuzz") / "d.h5", num_sims=SIMS, num_frames=FRAMES,
                            progress=False)


# --------------------------------------------------------------------------- strategies
scalars = (st.none() | st.booleans() | st.integers(-3, 9) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=6))
#: any plain data a YAML file can hold
plain = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
junk_count = st.integers(-2, 9) | st.sampled_from([2.5, float("nan"), float("inf"), -float("inf"), "3", True]) | plain


@st.composite
def faulty(draw, valid: dict, junk: dict, max_faults: int = 2):
    """Keyword arguments: each drawn from ``valid``, then 0..max_faults of them redrawn from
    ``junk`` (which of them, and how many, is part of the example)."""
    out = {k: draw(s) for k, s in valid.items()}
    broken = draw(st.lists(st.sampled_from(sorted(junk)), max_size=max_faults, unique=True))
    for k in broken:
        out[k] = draw(junk[k])
    event(f"{len(broken)} broken argument(s)")
    return out


def _outcome(error: BaseException | None) -> None:
    event("accepted" if error is None else f"refused: {type(error).__name__}")


# --------------------------------------------------------------------------- datasets
names = st.sampled_from(["velocity", "viscosity", "pressure", ""])
dataset_args = faulty(
    valid={"sim_indices": st.lists(st.integers(0, SIMS - 1), min_size=1, max_size=4),
           "field_names": st.sampled_from([None, ["velocity"], ["velocity", "viscosity"], ["viscosity", "velocity"]]),
           "num_frames": st.none() | st.integers(4, FRAMES), "num_predict_steps": st.integers(1, 3),
           "dynamic_fields": st.none(), "static_fields": st.none(),
           "use_sliding_window": st.booleans(), "return_fields": st.booleans()},
    junk={"sim_indices": st.lists(st.integers(-2, SIMS + 1), max_size=4) | plain,
          "field_names": st.lists(names, max_size=3) | plain, "num_frames": junk_count,
          "num_predict_steps": junk_count, "dynamic_fields": st.lists(names, max_size=2) | plain,
          "static_fields": st.lists(names, max_size=2) | plain})


@FUZZ
@given(args=dataset_args)
@pytest.mark.slow
def test_dataset_arguments(dataset, args):
    dm = DataManager(dataset)
    try:
        ds = HybridDataset(dm, **args)
    except DOCUMENTED as e:
        return _outcome(e)
    _outcome(None)
    # accepted: it must be exactly what the documentation says
    f, p = ds.num_frames, ds.num_predict_steps
    per_sim = f - p if ds.use_sliding_window else (f - 1) // p
    assert len(ds) == len(ds.sim_indices) * per_sim >= 1
    for i in (0, len(ds) - 1):
        initial, targets = ds[i]
        if ds.return_fields:
            assert set(targets) == set(ds.dynamic_fields)
            assert all(v.shape.get_size("time") == p for v in targets.values())
        else:
            assert initial.shape == (ds.in_channels, N) and targets.shape == (p, ds.out_channels, N)
            assert torch.isfinite(initial).all() and torch.isfinite(targets).all()


@FUZZ
@given(args=faulty(
    valid={"num_sims": st.integers(1, 3), "num_frames": st.integers(1, 4), "seed": st.integers(0, 2**70),
           "batch_size": st.integers(1, 3),
           "params": st.none() | st.fixed_dictionaries({"viscosity": st.floats(0.01, 1)})},
    junk={"num_sims": junk_count, "num_frames": junk_count, "seed": st.integers(-5, -1) | plain,
          "batch_size": junk_count,
          "params": st.fixed_dictionaries({"viscosity": st.floats(-1, 5) | plain
                                           | st.lists(st.floats(-1, 5) | st.just(float("nan")), max_size=4)})
          | st.dictionaries(st.text(max_size=4), plain, max_size=2)}))
@pytest.mark.slow
def test_generate_dataset_arguments(tmp_path_factory, args):
    model = Burgers(GridSpec((N,), (10.0,)), dt=0.05, jit=False)
    path = tmp_path_factory.getbasetemp() / "gen.h5"
    try:
        generate_dataset(model, path, overwrite=True, progress=False, **args)
    except DOCUMENTED as e:
        assert not list(path.parent.glob(".gen.h5.*"))  # a refused call leaves no temporary file
        return _outcome(e)
    _outcome(None)
    with DataManager(path, cache_mb=0) as dm:
        assert (dm.num_sims, dm.num_frames) == (args["num_sims"], args["num_frames"])
        assert np.isfinite(dm.load(dm.num_sims - 1, "velocity")).all()
        assert (dm.params("viscosity") >= 0).all()


@FUZZ
@given(how=st.sampled_from(["truncate", "garbage", "garbage_after_signature", "scribble_data"]),
       cut=st.floats(0, 1, exclude_max=True), garbage=st.binary(max_size=64), where=st.floats(0, 1))
def test_damaged_files(dataset, tmp_path_factory, how, cut, garbage, where):
    """A valid file truncated anywhere, replaced by bytes, or with bytes of its stored trajectories
    overwritten reads back unchanged or raises DatasetFormatError, nothing else. (Random flips
    inside HDF5's own metadata are not fuzzed: the HDF5 C library itself can hang on some.)"""
    raw = dataset.read_bytes()
    if how == "truncate":
        data = raw[: int(cut * len(raw))]
    elif how == "garbage":
        data = garbage
    elif how == "garbage_after_signature":
        data = raw[:8] + garbage
    else:
        with h5py.File(dataset) as f:
            ds = f["fields/velocity"].id
            chunk = ds.get_chunk_info(int(where * (ds.get_num_chunks() - 1)))
        start = chunk.byte_offset + int(cut * chunk.size)
        patch = (garbage or b"\x01")[: chunk.byte_offset + chunk.size - start]
        data = raw[:start] + patch + raw[start + len(patch):]
    path = tmp_path_factory.getbasetemp() / "damaged.h5"
    path.write_bytes(data)
    try:
        with DataManager(path, cache_mb=0) as dm, DataManager(dataset, cache_mb=0) as good:
            for s in range(SIMS):
                np.testing.assert_array_equal(dm.load(s, "velocity"), good.load(s, "velocity"))
        _outcome(None)
    except DatasetFormatError as e:
        _outcome(e)
    finally:
        path.unlink()


# --------------------------------------------------------------------------- configs
VALID = {
    "name": "fuzz", "mode": "hybrid", "cycles": 1,
    "data": {"pde": "Burgers", "pde_params": {"resolution": [8], "domain_size": [10.0], "dt": 0.01,
                                              "viscosity": 0.5},
             "num_train": 2, "num_test": 1, "num_frames": 5, "noise": 0.01, "observed_region": [[0, 5]]},
    "synthetic": {"model": "ConvNet", "model_params": {"width": 4, "depth": 1},
                  "trainer_params": {"learning_rate": 1e-3, "num_predict_steps": 2, "rollout_schedule": [[0, 1], [2, 2]],
                                     "on_nan": "rollback", "nan_lr_factor": 0.5},
                  "epochs": 2, "batch_size": 4},
    "physical": {"initial": {"viscosity": "0.2 + 0.1 * sin(2 * pi * x / L)"}, "bounds": {"viscosity": [0.01, 2.0]},
                 "trainer_params": {"num_predict_steps": 2, "max_iterations": 5}},
    "hybrid": {"warmup_epochs": 1, "synthetic_epochs": 1, "physical_trajectories": 2, "alpha_synthetic": 0.5,
               "synthetic_start": "mixed"},
    "evaluate": {"steps": 3},
}


def _paths(doc, prefix=()):
    for k, v in doc.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


PATHS = sorted(_paths(VALID))
special = st.sampled_from(["../x", "", "where(x)", "1/0", "(((9**64)**64)**64)**64", "Burger", "UNet", "x -",
                           [[0, 5], [1]], [(0, 1), (0, 1)], {"viscosity": [1, "a"]}, 10**30, -1, 0])


@st.composite
def configs(draw):
    """The valid config with 0..3 values replaced by junk (or junk keys added)."""
    doc = copy.deepcopy(VALID)
    n = draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
    event(f"{n} broken value(s)")
    for _ in range(n):
        path = draw(st.sampled_from(PATHS))
        node = doc
        for k in path[:-1]:  # an earlier fault may have replaced a section: then skip this one
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if draw(st.booleans()):
            node[path[-1]] = draw(plain | special)
        else:
            node[draw(st.text(max_size=6) | st.integers(0, 3))] = draw(plain)
    return doc


def _build(cfg: ExperimentConfig):
    """What the runner builds from a config before any data exist: the PDE, the network and
    both trainers."""
    model = build_physical_model(cfg)
    c = 1 + sum(1 for s in model.param_specs if s.kind == "field")
    net = ModelRegistry.get_synthetic_model(cfg.synthetic.model, {"in_channels": c, "out_channels": 1,
                                                                  **cfg.synthetic.model_params})
    SyntheticTrainer(dict(cfg.synthetic.trainer_params), net)
    params = [learnable(k, coefficient(v, model.grid), bounds=cfg.physical.bounds.get(k))
              for k, v in cfg.physical.initial.items()]
    PhysicalTrainer(dict(cfg.physical.trainer_params), model, params)


@FUZZ
@given(doc=configs())
def test_config_values(doc):
    try:
        cfg = experiment_config(doc)
        _build(cfg)
    except DOCUMENTED as e:
        return _outcome(e)
    _outcome(None)


@FUZZ
@given(text=st.sampled_from([
    "name: x\nmode: hybrid\n", "data: {pde_params: {resolution: [8]}}\n", "cycles: .inf\n", "1: 2\n",
    "data:\n  - 1\n", "{\n", "name: !!python/name:os.system\n", "[[[[[[[[[]]]]]]]]]\n", "a: &x [*x]\n", "",
    "# only a comment\n", "hybrid:\n  warmup_epochs: 2\n  alpha_synthetic: 0.5\n", "\t- tab\n"])
       | st.text(max_size=120),
       overrides=st.lists(st.sampled_from(["cycles=2", "data.noise=0.1", "hybrid.alpha_physical=0.5", "mode=physical",
                                           "name=run_2", "data=3", "data.x.y=1", "=1", "a..b=1", "hybrid.seed=[1",
                                           "cycles=.nan", "name=../up"]) | st.text(max_size=20), max_size=3))
def test_config_files_and_overrides(tmp_path_factory, text, overrides):
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        cfg, doc = load_config(path, overrides)
    except ConfigError as e:
        return _outcome(e)
    _outcome(None)
    assert isinstance(cfg, ExperimentConfig) and isinstance(doc, dict)


# --------------------------------------------------------------------------- expressions
leaves = st.sampled_from(["x", "L", "pi", "e", "1", "9", "64", "0", "0.5", "1e308", "y", "999999999999999999999"])
expressions = st.recursive(leaves, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<", ">="]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["sin", "exp", "log", "sqrt", "abs", "tanh", "heaviside"]), inner).map(
        lambda t: f"{t[0]}({t[1]})"),
    st.tuples(st.sampled_from(["minimum", "maximum", "where"]), st.lists(inner, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"),
    inner.map(lambda a: f"-{a}")), max_leaves=12)
token_soup = st.lists(st.sampled_from(["x", "1", "+", "**", "(", ")", ",", "sin", "where", " ", "__class__", ".",
                                       "[", "]", "lambda", ":", "'", "9" * 30]), max_size=25).map("".join)


@FUZZ
@given(text=expressions | token_soup)
def test_expressions_never_crash_or_hang(text):
    t0 = time.perf_counter()
    try:
        out = evaluate(text, {"x": np.linspace(0, 1, 5), "L": 10.0})
    except ExpressionError as e:
        return _outcome(e)
    finally:
        assert time.perf_counter() - t0 < 2.0, text
    _outcome(None)
    assert np.asarray(out, dtype=np.float64).shape in ((), (5,))


# --------------------------------------------------------------------------- trainer batches
@FUZZ
@given(args=faulty(
    valid={"b": st.integers(1, 3), "c_in": st.just(1), "t": st.integers(1, 2), "c_out": st.just(1), "n": st.just(N),
           "extra": st.just(()), "weight": st.sampled_from([None, "ok"]), "bad": st.none()},
    junk={"b": st.just(0), "c_in": st.integers(0, 3), "t": st.just(0), "c_out": st.integers(2, 3), "n": st.just(4),
          "extra": st.just((2,)), "weight": st.sampled_from(["neg", "nan", "shape"]),
          "bad": st.sampled_from(["nan", "inf"])}))
def test_trainer_batches(args):
    torch.manual_seed(0)
    trainer = SyntheticTrainer({}, ConvNet({"in_channels": 1, "out_channels": 1, "ndim": 1, "width": 2, "depth": 1}))
    b = args["b"]
    initial = torch.randn(b, args["c_in"], args["n"])
    targets = torch.randn(b, args["t"], args["c_out"], args["n"], *args["extra"])
    if args["bad"] and targets.numel():
        targets.view(-1)[0] = float(args["bad"])
    batch = [initial, targets]
    if args["weight"] is not None:
        batch.append({"ok": torch.ones(b), "neg": -torch.ones(b), "nan": torch.full((b,), float("nan")),
                      "shape": torch.ones(b + 1)}[args["weight"]])
    try:
        loss = trainer.train([tuple(batch)], 1, progress=False)["loss"][0]
    except DOCUMENTED as e:
        return _outcome(e)
    _outcome(None)
    assert np.isfinite(loss) and trainer.epoch == 1
