"""Data that must match the model they train: grid, time step, equation and field layout.

A 32-cell file fitted with a 64-cell model, frames 0.2 apart fitted with a model stepping 0.1, or
2D data fed to a 1D model all "converge" to a wrong coefficient without a word; a network built
for 2 channels trained on 3 fails deep inside a convolution. The trainers call these checks at
their public boundary:

* :func:`check_data_matches` — a dataset (its file's metadata) against a physical model;
* :func:`check_values_match` — raw tensors / Fields against a physical model's grid and fields;
* :func:`check_network_matches` — a dataset's channel layout against a network's.

Each raises :class:`DataMismatchError` listing every difference with both values and the fix.
"""
from __future__ import annotations

import math as pymath
import re
from typing import Mapping

from phi.field import Field
from phiml import math

from ..models import ModelRegistry
from ._manager import DataManager

__all__ = ["DataMismatchError", "check_data_matches", "check_values_match", "check_network_matches",
           "manager_of"]

#: relative tolerance on dt and the domain size (imported files derive them from float coordinates)
REL_TOL = 1e-5
_UNKNOWN_PDE = ("", "unknown", None)


class DataMismatchError(ValueError):
    """Data made on another grid / time step / equation / layout than the model; says both and the fix."""


def manager_of(source) -> DataManager | None:
    """The :class:`DataManager` behind a dataset, a ``DataLoader`` over one or an augmented dataset
    (its real part's layout), or None (e.g. a plain list of samples)."""
    for _ in range(4):
        if isinstance(source, DataManager):
            return source
        nxt = next((getattr(source, a) for a in ("data_manager", "dataset", "layout")
                    if getattr(source, a, None) is not None), None)
        if nxt is None or nxt is source:
            return None
        source = nxt
    return None


def check_data_matches(data, model, *, fields=None) -> None:
    """Refuse data whose grid, ``dt``, equation or fields differ from ``model``'s.

    Args:
        data: a :class:`DataManager`, or anything :func:`manager_of` finds one behind.
        model: an :class:`~hybridkit.physics.AbstractPDE`.
        fields: the fields that must be there with the model's layout (default: the model's).

    Raises:
        DataMismatchError: every difference, with the data's and the model's value and the fix.
    """
    dm = manager_of(data)
    if dm is None:
        return
    grid, problems = model.grid, []
    if dm.grid.ndim != grid.ndim:
        problems.append(f"dimension: the data are {dm.grid.ndim}D (resolution {tuple(dm.grid.resolution)}), "
                        f"the model is {grid.ndim}D ({tuple(grid.resolution)})")
    elif tuple(dm.grid.resolution) != tuple(grid.resolution):
        problems.append(f"resolution: the data have {tuple(dm.grid.resolution)} cells, the model "
                        f"{tuple(grid.resolution)}")
    if dm.grid.ndim == grid.ndim and not all(pymath.isclose(a, b, rel_tol=REL_TOL)
                                             for a, b in zip(dm.grid.domain_size, grid.domain_size)):
        problems.append(f"domain size: the data span {tuple(dm.grid.domain_size)}, the model "
                        f"{tuple(grid.domain_size)}")
    if dm.grid.boundary != grid.boundary:
        problems.append(f"boundary: the data are {dm.grid.boundary!r}, the model {grid.boundary!r}")
    if not pymath.isclose(dm.dt, model.dt, rel_tol=REL_TOL):
        problems.append(f"dt: the data's frames are {dm.dt:g} apart, the model steps {model.dt:g} per frame "
                        "(substeps='auto' keeps any frame spacing stable: set the model's dt to the data's)")
    issue = _equation_issue(dm.metadata, type(model).__name__)
    if issue:
        problems.append(issue)
    names = tuple(model.field_names if fields is None else fields)
    missing = [n for n in names if n not in dm.field_names]
    if missing:
        problems.append(f"fields: the model needs {list(names)}, the data have {list(dm.field_names)} "
                        f"(missing {missing})")
    vec = [n for n in names if n in dm.field_names and (n in dm.vector_fields) != (n in model.vector_fields)]
    if vec:
        problems.append(f"field layout: {vec} are vector fields in the "
                        f"{'data' if vec[0] in dm.vector_fields else 'model'} only")
    if problems:
        raise DataMismatchError(
            f"The data {dm.path.name} do not match the model {type(model).__name__}: " + "; ".join(problems)
            + f". Fix: build the model for the data, e.g. {type(model).__name__}(GridSpec("
            f"{tuple(dm.grid.resolution)}, {tuple(dm.grid.domain_size)}, {dm.grid.boundary!r}), dt={dm.dt:g}, ...), "
            "or use the data the model is meant for.")


def _equation_issue(meta: dict, name: str) -> str | None:
    """Files hybridkit simulated name their model exactly; an imported file's ``pde`` is a free label
    (e.g. ``"Burgers (my spectral solver)"``), refused only when it names another of hybridkit's models."""
    pde = meta.get("pde")
    if pde in _UNKNOWN_PDE or pde == name:
        return None
    if meta.get("model_config"):  # written by generate_dataset / write_trajectories: an exact name
        return f"equation: the data were written by {pde!r}, the model is {name!r}"
    words = set(re.findall(r"[A-Za-z0-9_]+", str(pde).lower()))
    others = [m for m in ModelRegistry.physical_names() if m.lower() in words and m.lower() != name.lower()]
    if others and name.lower() not in words:
        return f"equation: the imported data are labelled {pde!r} ({others[0]}), the model is {name!r}"
    return None


def check_values_match(values: Mapping, model, what: str) -> None:
    """Refuse raw tensors / Fields whose spatial shape (or a Field's domain) differs from ``model``'s grid.

    Args:
        values: ``name -> Field or phiml tensor`` (any batch dims).
        what: what they are, for the message (e.g. ``"initial state"``).

    Raises:
        DataMismatchError: with the given and the expected shape and the fix.
    """
    grid = model.grid
    for name, v in values.items():
        if name not in model.field_names:
            continue
        t = v.values if isinstance(v, Field) else v
        if not isinstance(t, math.Tensor):
            continue
        spatial = t.shape.spatial
        want = grid.spatial_shape
        if spatial.names != want.names or spatial.sizes != want.sizes:
            raise DataMismatchError(
                f"The {what} {name!r} has spatial dims {_dims(spatial)}, the model {type(model).__name__} has "
                f"{_dims(want)} (a {grid.ndim}D grid {tuple(grid.resolution)}). Fix: build the model on the data's "
                "grid, or resample the data onto the model's.")
        if name in model.vector_fields and t.shape.channel.get_size("vector") != grid.ndim:
            raise DataMismatchError(f"The {what} {name!r} needs a channel dim 'vector' of {grid.ndim} components "
                                    f"(a vector field), got shape {t.shape}. Fix: stack one component per axis.")
        if isinstance(v, Field):
            size = tuple(float(s) for s in v.bounds.size.numpy())
            if not all(pymath.isclose(a, b, rel_tol=REL_TOL) for a, b in zip(size, grid.domain_size)):
                raise DataMismatchError(
                    f"The {what} {name!r} spans a domain {size}, the model {type(model).__name__} "
                    f"{tuple(grid.domain_size)}. Fix: build the model on the data's grid.")


def check_network_matches(layout, network) -> None:
    """Refuse a dataset whose channels or dimension differ from a network's (when both say them).

    Args:
        layout: a dataset with ``in_channels``, ``out_channels`` and ``grid`` (a
            :class:`~hybridkit.data.HybridDataset`).
        network: a module with a ``config`` holding ``in_channels``, ``out_channels``, ``ndim``.

    Raises:
        DataMismatchError: both values and the fix.
    """
    cfg = getattr(network, "config", None)
    if cfg is None or layout is None:
        return
    problems = []
    for key, data_value in (("in_channels", getattr(layout, "in_channels", None)),
                            ("out_channels", getattr(layout, "out_channels", None)),
                            ("ndim", getattr(getattr(layout, "grid", None), "ndim", None))):
        net_value = getattr(cfg, key, None)
        if data_value is not None and net_value is not None and int(data_value) != int(net_value):
            problems.append(f"{key}: the data have {data_value}, the network {net_value}")
    if problems:
        raise DataMismatchError(
            f"The data do not match the network {type(network).__name__}: " + "; ".join(problems)
            + ". Fix: build the network from the data, e.g. in_channels=dataset.in_channels, "
            "out_channels=dataset.out_channels, ndim=dataset.grid.ndim.")


def _dims(shape) -> str:
    return "(" + ", ".join(f"{n}={s}" for n, s in zip(shape.names, shape.sizes)) + ")" if shape.rank else "()"
