"""The one boundary between PyTorch tensors and PhiFlow fields.

Two layouts exist in hybridkit:

* **storage layout** (HDF5, ``HybridDataset``, physics I/O): one array per field,
  ``(*batch, *space)`` for a scalar field and ``(*batch, *space, vector)`` for a vector field;
* **channel layout** (networks): ``(batch, channels, *space)``, the fields stacked along
  ``channels`` in a fixed order, a vector field taking one channel per component.

``to_field`` / ``to_tensor`` cross between torch and PhiFlow in the storage layout;
``stack_channels`` / ``split_channels`` cross between the storage and the channel layout.
Nothing else in the package converts by hand.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from phi.field import CenteredGrid, Field
from phiml import math
from phiml.math import batch, channel

from . import _backend  # noqa: F401  (sets the torch backend)
from ._backend import as_physics_tensor
from ._grid import GridSpec

__all__ = ["to_field", "to_tensor", "stack_channels", "split_channels", "num_channels"]


def to_field(
    values,
    grid: GridSpec,
    *,
    vector: bool = False,
    batch_names: Sequence[str] = ("batch",),
) -> Field:
    """Wrap storage-layout values as a PhiFlow ``CenteredGrid``.

    Args:
        values: torch tensor or numpy array ``(*batch, *space)`` or ``(*batch, *space, vector)``.
        grid: the grid the values live on.
        vector: whether the last axis holds vector components (one per spatial axis).
        batch_names: names of the leading batch dimensions, as many as ``values`` has.

    Raises:
        TypeError: ``grid`` is not a GridSpec, ``batch_names`` is one string, or the values are
            not floating point (integers and booleans are no field values: convert them first).
        ValueError: when the trailing axes do not match ``grid``.
    """
    if not isinstance(grid, GridSpec):
        raise TypeError(f"Expected a hybridkit.GridSpec as grid, got {type(grid).__name__}. "
                        "Fix: pass model.grid or GridSpec(resolution, domain_size).")
    if isinstance(batch_names, str) or not all(isinstance(n, str) for n in batch_names):
        example = f"({batch_names!r},)" if isinstance(batch_names, str) else "('batch', 'time')"
        raise TypeError(f"Expected batch_names as a sequence of dimension names, got {batch_names!r}. "
                        f"Fix: e.g. batch_names={example}.")
    t = as_physics_tensor(values)  # numpy: onto the physics device; a torch tensor keeps its own
    if not t.is_floating_point():
        raise TypeError(
            f"Expected floating-point field values, got dtype {t.dtype}. Fix: convert them, e.g. "
            "values.astype(np.float32) (numpy) or values.float() (torch)."
        )
    trailing = tuple(grid.resolution) + ((grid.ndim,) if vector else ())
    nb = t.ndim - len(trailing)
    if nb < 0 or tuple(t.shape[nb:]) != trailing or nb > len(batch_names):
        raise ValueError(
            f"Expected values of shape (*batch, {', '.join(map(str, trailing))}) with at most "
            f"{len(batch_names)} batch axes {tuple(batch_names)}, got {tuple(t.shape)}. "
            "Fix: check the grid resolution and the `vector` flag, or pass more batch_names."
        )
    dims = batch(*batch_names[:nb]) & grid.spatial_shape
    if vector:
        dims = dims & channel(vector=",".join(grid.axes))
    tensor = math.tensor(t, dims)
    return CenteredGrid(tensor, grid.extrapolation, bounds=grid.bounds)


def to_tensor(field: Field | math.Tensor, batch_names: Sequence[str] | None = None) -> torch.Tensor:
    """Return a field's values as a torch tensor in the storage layout.

    Args:
        field: a PhiFlow field or a phiml tensor.
        batch_names: order of the leading batch dims; default: the order the field has them.
    """
    values = field.values if isinstance(field, Field) else field
    shape = values.shape
    b = list(batch_names) if batch_names is not None else list(shape.batch.names)
    missing = [n for n in b if n not in shape]
    if missing:
        raise ValueError(f"Expected batch dims {b}, the field has {shape.batch.names}.")
    order = b + list(shape.spatial.names) + list(shape.channel.names)
    extra = [n for n in shape.names if n not in order]
    if extra:
        raise ValueError(f"Unexpected dims {extra} in {shape}; pass them in batch_names.")
    return values.native(order)


def num_channels(field_names: Sequence[str], vector_fields: Sequence[str], ndim: int) -> int:
    """Number of network channels that ``field_names`` occupy in the channel layout."""
    return sum(ndim if n in vector_fields else 1 for n in field_names)


def stack_channels(
    arrays: Mapping[str, torch.Tensor], field_names: Sequence[str], vector_fields: Sequence[str], ndim: int
) -> torch.Tensor:
    """Storage layout -> channel layout.

    Args:
        arrays: ``name -> (*lead, *space[, vector])``.
        field_names: which fields to stack, in this order.
        vector_fields: names among them that carry a trailing vector axis.
        ndim: number of spatial axes.

    Returns:
        ``(*lead, channels, *space)``.

    Raises:
        ValueError: no field names. KeyError: a name ``arrays`` lacks.
    """
    if not len(field_names):
        raise ValueError("Expected at least one field name to stack, got none. Fix: pass e.g. ['velocity'].")
    missing = [n for n in field_names if n not in arrays]
    if missing:
        raise KeyError(f"Expected arrays for fields {list(field_names)}, missing {missing} (given: {list(arrays)}).")
    parts = []
    for name in field_names:
        a = arrays[name]
        if name in vector_fields:
            parts.append(torch.movedim(a, -1, a.ndim - ndim - 1))
        else:
            parts.append(a.unsqueeze(a.ndim - ndim))
    return torch.cat(parts, dim=parts[0].ndim - ndim - 1)


def split_channels(
    t: torch.Tensor, field_names: Sequence[str], vector_fields: Sequence[str], ndim: int
) -> dict[str, torch.Tensor]:
    """Channel layout -> storage layout; the inverse of :func:`stack_channels`."""
    cdim = t.ndim - ndim - 1
    expected = num_channels(field_names, vector_fields, ndim)
    if t.shape[cdim] != expected:
        raise ValueError(
            f"Expected {expected} channels for fields {list(field_names)}, got shape {tuple(t.shape)}."
        )
    out, i = {}, 0
    for name in field_names:
        if name in vector_fields:
            out[name] = torch.movedim(t.narrow(cdim, i, ndim), cdim, -1)
            i += ndim
        else:
            out[name] = t.select(cdim, i)
            i += 1
    return out
