"""Seeded ``DataLoader`` construction for :class:`HybridDataset` (tensor and field mode)."""
from __future__ import annotations

from typing import Sequence

import torch
from phi.field import stack as stack_fields
from phiml.math import batch
from torch.utils.data import DataLoader, Dataset, Subset

from .._checks import check_count, is_integer


def make_loader(
    dataset: Dataset,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` whose order depends only on ``seed`` (same seed -> same batches).

    The shuffling generator is seeded with ``seed``; worker processes get seeds derived from it by
    PyTorch. In tensor mode batches are ``(initial (B, C_in, *space), targets (B, P, C_dyn,
    *space))``. When the dataset is in field mode (its ``return_fields`` is True, as for a
    :class:`HybridDataset` with ``return_fields=True``, also inside a ``Subset``), items are
    stacked by :func:`collate_fields` along a new batch dim ``batch``: ``initial_fields``
    ``name -> Field (batch, *space)`` and ``target_fields`` ``name -> Field (batch, time, *space)``.

    Args:
        dataset: a :class:`HybridDataset` (or any map-style dataset of tensors).
        batch_size: windows per batch.
        shuffle: shuffle each epoch (seeded).
        seed: integer seed of the shuffling generator.
        num_workers: loader processes (0: load in the main process).
        drop_last: drop a last, smaller batch.

    Raises:
        ValueError: a count that is not an integer in range (``batch_size=2.5``, ``True``, 0).
        TypeError: ``shuffle`` / ``drop_last`` not a bool.
    """
    if not is_integer(batch_size) or batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1, got {batch_size!r}: a whole number of windows per batch. "
                         "Fix: e.g. batch_size=32.")
    batch_size = int(batch_size)
    seed = check_count(seed, "seed", minimum=0, fix="pass a non-negative integer seed, e.g. seed=0.")
    num_workers = check_count(num_workers, "num_workers", minimum=0,
                              fix="0 loads in the main process; e.g. num_workers=2 for two loader processes.")
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, bool):
            raise TypeError(f"Expected {name} as True or False, got {flag!r}. Fix: {name}=True or {name}=False.")
    if len(dataset) == 0:
        raise ValueError("Expected a non-empty dataset, got one with 0 items.")
    generator = torch.Generator()
    generator.manual_seed(seed)
    collate = collate_fields if _field_mode(dataset) else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers, drop_last=drop_last, collate_fn=collate,
        persistent_workers=False,
    )


def collate_fields(items: Sequence[tuple]) -> tuple:
    """Stack field-mode items ``(initial_fields, target_fields[, weight])`` along a batch dim
    ``batch``.

    Returns:
        ``(name -> Field (batch, *space), name -> Field (batch, time, *space))``, plus a float32
        tensor of weights ``(batch,)`` when the items carry weights (:class:`AugmentedDataset`).
    """
    initial = {n: stack_fields([it[0][n] for it in items], batch("batch")) for n in items[0][0]}
    targets = {n: stack_fields([it[1][n] for it in items], batch("batch")) for n in items[0][1]}
    if len(items[0]) == 3:
        return initial, targets, torch.stack([torch.as_tensor(it[2], dtype=torch.float32) for it in items])
    return initial, targets


def _field_mode(dataset: Dataset) -> bool:
    """Whether items are Fields. The protocol is a ``return_fields`` attribute, so that other
    datasets of windows (e.g. augmented ones) can opt in; Subsets are looked through."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, "return_fields", False))
