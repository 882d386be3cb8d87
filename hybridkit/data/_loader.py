"""Seeded ``DataLoader`` construction for :class:`HybridDataset` (tensor and field mode)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from phi.field import stack as stack_fields
from phiml.math import batch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from .._checks import check_count, is_integer


def make_loader(
    dataset: Dataset,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    *,
    epoch_keyed: bool = False,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A ``DataLoader`` whose order depends only on ``seed`` (same seed -> same batches).

    The shuffling generator is seeded with ``seed`` once, so epoch ``e``'s order is the ``e``-th
    draw of it; with ``epoch_keyed=True`` each epoch's order depends on ``(seed, e)`` alone
    (:class:`EpochSampler`; the trainers tell the sampler the epoch), so a run resumed at any
    epoch sees the same batches as one that never stopped. Worker processes get seeds derived
    from the generator by PyTorch. In tensor mode batches are ``(initial (B, C_in, *space), targets (B, P, C_dyn,
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
        epoch_keyed: order per epoch from ``(seed, epoch)`` instead of one running generator.
        sampler: a sampler of your own (e.g. a ``DistributedSampler``); then ``shuffle``,
            ``seed`` and ``epoch_keyed`` are its business.

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
    if sampler is None and shuffle and epoch_keyed:
        sampler = EpochSampler(len(dataset), seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        generator=generator, num_workers=num_workers, drop_last=drop_last, collate_fn=collate,
        persistent_workers=False,
    )


class EpochSampler(Sampler[int]):
    """A shuffled order that depends on ``(seed, epoch)`` only; call :meth:`set_epoch` before an epoch.

    Epoch ``e``'s permutation is the one a shuffling ``DataLoader`` draws when its generator is
    seeded with ``seed + e`` just before the epoch (one 64-bit draw for the loader's base seed,
    then ``torch.randperm``), so runs that reseeded their loader that way keep their batches.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = int(size), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=g)  # what the loader's base seed took
        yield from torch.randperm(self.size, generator=g).tolist()


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


def create_data_loader(config: Mapping[str, Any], *, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A loader of training windows from an experiment config in the original design note's
    layout (its migration path's ``create_data_loader(config)``).

    Read from ``config``:

    * ``data``: either ``path`` (an HDF5 dataset file) or a named dataset's keys
      (:class:`~hybridkit.data.DatasetConfig`: ``name``, ``pde``, ``pde_params``, ``num_sims``,
      ``num_frames``, ``seed``; generated on first use); optionally ``fields`` (default: all),
      ``dynamic_fields`` and ``static_fields``;
    * ``trainer_params``: ``num_predict_steps`` (default 1), ``batch_size`` (default 32) and
      ``train_sim`` (simulation indices, default all).

    Returns:
        A seeded ``DataLoader`` over a sliding-window :class:`~hybridkit.data.HybridDataset`
        (tensor mode).
    """
    from .._config import ConfigError
    from ._dataset import HybridDataset
    from ._dataset_config import ensure_dataset
    from ._manager import DataManager

    if not isinstance(config, Mapping) or not isinstance(config.get("data"), Mapping):
        raise ConfigError("Expected a config with a `data` section (a dataset `path`, or a named dataset's keys). "
                          "Fix: e.g. {'data': {'path': 'data/datasets/burgers1d_default.h5'}, "
                          "'trainer_params': {'num_predict_steps': 1, 'batch_size': 32}}.")
    data = dict(config["data"])
    params = config.get("trainer_params") or {}
    layout = {k: data.pop(k) for k in ("fields", "dynamic_fields", "static_fields") if k in data}
    path = data.pop("path", None)
    if path is None:
        path, _ = ensure_dataset(data)
    elif data:
        raise ConfigError(f"Expected either data.path or a named dataset's keys, got both (path and {sorted(data)}).")
    manager = DataManager(path)
    sims = params.get("train_sim")
    dataset = HybridDataset(manager, range(manager.num_sims) if sims is None else sims, layout.get("fields"),
                            num_predict_steps=params.get("num_predict_steps", 1),
                            dynamic_fields=layout.get("dynamic_fields"), static_fields=layout.get("static_fields"))
    return make_loader(dataset, batch_size=params.get("batch_size", 32), shuffle=shuffle, seed=seed)
