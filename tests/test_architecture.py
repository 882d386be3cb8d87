"""The package's shape: import layers, module sizes, one place that renames files, the trainer hierarchy."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hybridkit

PACKAGE = Path(hybridkit.__file__).parent
# Each subpackage may import from its own layer and the ones below; the top-level modules
# (_config, _grid, _io, convert, metrics, ...) are the foundation everyone may use.
LAYERS = {"physics": 1, "models": 1, "data": 2, "training": 3, "experiment": 4, "viz": 4}
MAX_LINES = 450


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path):
    """``(line, absolute dotted name)`` of every hybridkit module ``path`` imports."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hybridkit"):
                names = [f"{target}.{a.name}" for a in node.names] if not node.module or node.level else [target]
                for name in [target] + names:
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("hybridkit"):
                    yield node.lineno, a.name


def _subpackage(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_imports_run_down_the_layers_and_never_into_another_subpackages_private_module():
    bad = []
    for path in _modules():
        here = _subpackage(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for line, name in _imports(path):
            there = _subpackage(name)
            if here is None or there is None or there == here:
                continue
            if LAYERS[there] > LAYERS[here]:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {name} (a higher layer)")
            parts = name.split(".")
            if len(parts) > 2 and parts[2].startswith("_"):
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {name} (another subpackage's private module)")
    assert not bad, "\n".join(bad)


def test_the_layer_check_sees_a_violation():
    """The check above would notice: a training module importing the runner is caught."""
    fake = [(1, "hybridkit.experiment._modes")]
    here, there = "training", _subpackage(fake[0][1])
    assert LAYERS[there] > LAYERS[here] and fake[0][1].split(".")[2].startswith("_")


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_one_atomic_write_renames_files():
    """Only hybridkit/_io.py renames a finished file into place (os.replace / os.rename)."""
    sites = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("replace", "rename") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                sites.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert sites and all(s.startswith("_io.py:") for s in sites), sites


def test_the_trainer_hierarchy_of_the_design_note():
    from hybridkit.training import (AbstractTrainer, FieldTrainer, HybridTrainer, PhysicalTrainer, SyntheticTrainer,
                                    TensorTrainer)

    assert SyntheticTrainer.__mro__[1:3] == (TensorTrainer, AbstractTrainer)
    assert PhysicalTrainer.__mro__[1:3] == (FieldTrainer, AbstractTrainer)
    assert not issubclass(HybridTrainer, AbstractTrainer)  # it composes the two
    # each class owns code: methods defined in its own body
    for cls, own in ((AbstractTrainer, "train"), (TensorTrainer, "_create_optimizer"), (FieldTrainer, "set_params"),
                     (SyntheticTrainer, "_train_epoch_with_data"), (PhysicalTrainer, "_train_epoch_with_data")):
        assert own in vars(cls), (cls, own)


@pytest.mark.parametrize("name", ["hybridkit.training", "hybridkit.data", "hybridkit.physics", "hybridkit.models",
                                  "hybridkit.experiment"])
def test_public_names_have_docstrings(name):
    import importlib
    import inspect

    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not inspect.getdoc(getattr(module, n))]
    assert not missing, missing
