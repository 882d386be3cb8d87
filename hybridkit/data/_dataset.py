"""Training windows cut from a dataset: tensors for a network, PhiFlow fields for a solver."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from phiml import math
from torch.utils.data import Dataset

from .._checks import is_integer
from .._grid import GridSpec
from ..convert import num_channels, stack_channels, to_field
from ._manager import DataManager


class HybridDataset(Dataset):
    """Windows of ``num_predict_steps + 1`` consecutive frames from some simulations.

    A window starting at frame ``s`` of simulation ``sim`` gives the state at ``s`` as input and
    the ``num_predict_steps`` frames ``s+1 .. s+num_predict_steps`` as targets.

    * **sliding windows** (``use_sliding_window=True``, the default and what both trainers use):
      every start ``s = 0 .. F - P - 1`` (``F`` frames used, ``P = num_predict_steps``), so
      ``len = len(sim_indices) * (F - P)``, ordered simulation by simulation.
    * **non-overlapping windows** (``False``): starts ``0, P, 2P, ...`` with ``s + P <= F - 1``,
      ``floor((F - 1) / P)`` per simulation: every transition ``t -> t+1`` appears in exactly one
      window; neighbouring windows share only their boundary frame (one window's last target is
      the next one's input).

    **Static fields** are constant in time and fed to the network as extra input channels (never
    predicted): a parameter of kind ``"field"`` stored in ``/params`` (e.g. a spatially varying
    diffusivity), or a ``/fields`` entry with a single frame. By default every such name in
    ``field_names`` is static and the rest are dynamic.

    Items:

    * tensor mode: ``(initial, targets)``: float32 ``initial (C_in, *space)`` (dynamic channels,
      then static channels, via :func:`hybridkit.convert.stack_channels`) and
      ``targets (num_predict_steps, C_dyn, *space)``;
    * field mode (``return_fields=True``): ``(initial_fields, target_fields)``: ``name -> Field``
      without batch dims (dynamic and static fields), and ``name -> Field`` with batch dim
      ``time`` of size ``num_predict_steps`` (dynamic fields only).

    Args:
        data_manager: the dataset.
        sim_indices: simulations to cut windows from (dataset indices).
        field_names: fields to use (dynamic and static); None: all fields of the dataset.
        num_frames: use the first ``num_frames`` frames of each simulation (None: all).
        num_predict_steps: targets per window (>= 1).
        dynamic_fields, static_fields: explicit split of ``field_names`` (see above).
        use_sliding_window: see above.
        return_fields: field mode instead of tensor mode.

    Raises:
        KeyError: a field name the dataset does not have.
        ValueError, IndexError: inconsistent arguments (the message says which and the fix).
    """

    def __init__(
        self,
        data_manager: DataManager,
        sim_indices: Sequence[int],
        field_names: Sequence[str] | None = None,
        num_frames: int | None = None,
        num_predict_steps: int = 1,
        dynamic_fields: Sequence[str] | None = None,
        static_fields: Sequence[str] | None = None,
        use_sliding_window: bool = True,
        return_fields: bool = False,
    ):
        if not isinstance(data_manager, DataManager):
            raise TypeError(f"Expected a DataManager, got {type(data_manager).__name__}.")
        dm = self.data_manager = data_manager
        self.sim_indices = _check_sims(sim_indices, dm.num_sims)
        self.field_names = tuple(dm.field_names if field_names is None else _names(field_names, "field_names"))
        available = self._static_candidates() | set(dm.field_names)
        unknown = [n for n in self.field_names if n not in available]
        if unknown:
            raise KeyError(
                f"Unknown field(s) {unknown}. The dataset has fields {list(dm.field_names)} and "
                f"field parameters {sorted(self._static_candidates() - set(dm.field_names))}. "
                "Fix: pick field_names among those."
            )
        self.static_fields, self.dynamic_fields = self._split(dynamic_fields, static_fields)
        self.num_frames = self._check_num_frames(num_frames)
        if not is_integer(num_predict_steps) or num_predict_steps < 1:
            raise ValueError(
                f"Expected num_predict_steps >= 1 (an integer), got {num_predict_steps!r}. "
                "Fix: use 1 for one-step training, more for rollout training."
            )
        self.num_predict_steps = int(num_predict_steps)
        if self.num_frames < self.num_predict_steps + 1:
            raise ValueError(
                f"Expected windows of num_predict_steps + 1 = {self.num_predict_steps + 1} frames to "
                f"fit into num_frames={self.num_frames}, they do not. Fix: lower num_predict_steps "
                f"to at most {self.num_frames - 1} or use more frames (the dataset has {dm.num_frames})."
            )
        for name, flag in (("use_sliding_window", use_sliding_window), ("return_fields", return_fields)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"Expected {name} as True or False, got {flag!r}. Fix: {name}=True or {name}=False.")
        self.use_sliding_window = bool(use_sliding_window)
        self.return_fields = bool(return_fields)
        stride = 1 if self.use_sliding_window else self.num_predict_steps
        self._starts = np.arange(0, self.num_frames - self.num_predict_steps, stride)

    # ---------------------------------------------------------------- layout
    @property
    def grid(self) -> GridSpec:
        """The dataset's grid."""
        return self.data_manager.grid

    @property
    def vector_fields(self) -> tuple[str, ...]:
        """Vector fields among :attr:`field_names` (one channel per spatial axis each)."""
        return tuple(n for n in self.field_names if n in self.data_manager.vector_fields)

    @property
    def in_channels(self) -> int:
        """Channels of ``initial``: dynamic then static fields."""
        return num_channels(self.dynamic_fields + self.static_fields, self.vector_fields, self.grid.ndim)

    @property
    def out_channels(self) -> int:
        """Channels of each target frame: the dynamic fields."""
        return num_channels(self.dynamic_fields, self.vector_fields, self.grid.ndim)

    @property
    def channel_map(self) -> dict[str, slice]:
        """``name -> slice`` of the field's channels in ``initial`` (dynamic, then static fields)."""
        out, start = {}, 0
        for name in self.dynamic_fields + self.static_fields:
            width = num_channels((name,), self.vector_fields, self.grid.ndim)
            out[name] = slice(start, start + width)
            start += width
        return out

    @property
    def layout(self) -> "HybridDataset":
        """The dataset that defines the items' layout (itself; see ``AugmentedDataset.layout``)."""
        return self

    # ---------------------------------------------------------------- views
    def with_options(self, **changes) -> "HybridDataset":
        """The same simulations with some constructor options changed, e.g. the physical
        model's view of a network's windows: ``ds.with_options(return_fields=True,
        num_predict_steps=10)``."""
        options = {"field_names": self.field_names, "num_frames": self.num_frames,
                   "num_predict_steps": self.num_predict_steps, "dynamic_fields": self.dynamic_fields,
                   "static_fields": self.static_fields, "use_sliding_window": self.use_sliding_window,
                   "return_fields": self.return_fields}
        unknown = sorted(set(changes) - set(options))
        if unknown:
            raise TypeError(f"Expected options among {sorted(options)}, got {unknown}.")
        return HybridDataset(self.data_manager, self.sim_indices, **{**options, **changes})

    def on(self, data_manager: "DataManager", sim_indices: Sequence[int] | None = None) -> "HybridDataset":
        """Windows of the same layout (fields, window length, mode) over another dataset, e.g.
        trajectories a model generated; all its frames and (by default) all its simulations."""
        sims = range(data_manager.num_sims) if sim_indices is None else sim_indices
        return HybridDataset(data_manager, sims, self.field_names, num_predict_steps=self.num_predict_steps,
                             dynamic_fields=self.dynamic_fields, static_fields=self.static_fields,
                             use_sliding_window=self.use_sliding_window, return_fields=self.return_fields)

    def holdout(self, every: int) -> tuple["HybridDataset", "HybridDataset"]:
        """Split the windows into ``(kept, held_out)`` by their start frame: a window starting at
        frame ``s`` is held out when ``s % every == every - 1`` (every ``every``-th start, in every
        simulation), e.g. to judge an update on windows it did not train on. Sliding windows
        overlap, so held-out windows share frames with their neighbours; what is held out is the
        window as a training sample. ``every=0`` holds out nothing (``held_out`` is None).

        Raises:
            ValueError: ``every`` is not 0 or an integer >= 2, or nothing would be kept / held out.
        """
        if every == 0:
            return self, None
        if not is_integer(every) or every < 2:
            raise ValueError(f"Expected every as 0 (no holdout) or an integer >= 2, got {every!r}.")
        held = (self._starts % int(every)) == int(every) - 1
        if held.all() or not held.any():
            raise ValueError(f"Holding out every {every}-th of {len(self._starts)} window starts leaves "
                             f"{int((~held).sum())} to train on and {int(held.sum())} to judge on. Fix: use "
                             "more frames, shorter windows, or holdout=0.")
        kept, out = copy.copy(self), copy.copy(self)
        kept._starts, out._starts = self._starts[~held], self._starts[held]
        return kept, out

    def stack(self, indices: Sequence[int] | None = None) -> tuple[dict, dict]:
        """Field-mode items stacked along a batch dim ``batch``, as the physical fit takes them.

        Returns:
            ``(initial, targets)``: ``name -> phiml tensor (batch, *space[, vector])`` (dynamic and
            static fields) and ``name -> (batch, time, *space[, vector])`` (dynamic fields).
        """
        if not self.return_fields:
            raise ValueError("Expected a field-mode dataset (return_fields=True). Fix: "
                             "ds.with_options(return_fields=True).stack(...).")
        items = [self[i] for i in (range(len(self)) if indices is None else indices)]
        if not items:
            raise ValueError("Expected at least one window to stack, got none.")
        stack = lambda part, names: {k: math.stack([it[part][k].values for it in items], math.batch("batch"))  # noqa: E731
                                     for k in names}
        return stack(0, items[0][0]), stack(1, items[0][1])

    def __len__(self) -> int:
        """Number of windows."""
        return len(self.sim_indices) * len(self._starts)

    def window(self, i: int) -> tuple[int, int]:
        """``(sim, start)`` of item ``i``: dataset simulation index and first frame."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"Expected an index in 0..{n - 1}, got {i}.")
        i %= n
        per_sim = len(self._starts)
        return int(self.sim_indices[i // per_sim]), int(self._starts[i % per_sim])

    # ---------------------------------------------------------------- items
    def __getitem__(self, i: int):
        sim, start = self.window(int(i))
        stop = start + self.num_predict_steps + 1
        frames = {n: self.data_manager.load(sim, n, start, stop) for n in self.dynamic_fields}
        static = {n: self._static_values(sim, n) for n in self.static_fields}
        if self.return_fields:
            return self._as_fields(frames, static)
        return self._as_tensors(frames, static)

    def _as_tensors(self, frames: dict, static: dict):
        ndim, vec = self.grid.ndim, self.vector_fields
        current = {n: torch.from_numpy(a[0]) for n, a in frames.items()}
        current.update({n: torch.from_numpy(a) for n, a in static.items()})
        initial = stack_channels(current, self.dynamic_fields + self.static_fields, vec, ndim)
        nxt = {n: torch.from_numpy(a[1:]) for n, a in frames.items()}
        return initial, stack_channels(nxt, self.dynamic_fields, vec, ndim)

    def _as_fields(self, frames: dict, static: dict):
        g, vec = self.grid, self.vector_fields
        initial = {n: to_field(a[0], g, vector=n in vec, batch_names=()) for n, a in frames.items()}
        initial.update({n: to_field(a, g, vector=n in vec, batch_names=()) for n, a in static.items()})
        targets = {n: to_field(a[1:], g, vector=n in vec, batch_names=("time",)) for n, a in frames.items()}
        return initial, targets

    def _static_values(self, sim: int, name: str) -> np.ndarray:
        dm = self.data_manager
        if name in dm.field_names:
            return dm.load(sim, name, 0, 1)[0]
        return dm.params(name, sims=sim)

    # ---------------------------------------------------------------- checks
    def _static_candidates(self) -> set[str]:
        dm = self.data_manager
        params = {n for n, k in dm.param_kinds.items() if k == "field"}
        return params | {n for n in dm.field_names if dm.field_frames(n) == 1}

    def _split(self, dynamic, static) -> tuple[tuple[str, ...], tuple[str, ...]]:
        candidates = self._static_candidates()
        if static is None:
            static = [n for n in self.field_names if n in candidates and (dynamic is None or n not in dynamic)]
        static = _names(static, "static_fields")
        if dynamic is None:
            dynamic = [n for n in self.field_names if n not in static]
        dynamic = _names(dynamic, "dynamic_fields")
        for label, names in (("static_fields", static), ("dynamic_fields", dynamic)):
            outside = [n for n in names if n not in self.field_names]
            if outside:
                raise ValueError(
                    f"Expected {label} among field_names {list(self.field_names)}, got {outside}. "
                    f"Fix: add them to field_names or drop them from {label}."
                )
        not_static = [n for n in static if n not in candidates]
        if not_static:
            raise ValueError(
                f"Expected static fields to be constant in time (field parameters or single-frame "
                f"fields: {sorted(candidates)}), got {not_static}. Fix: list them in dynamic_fields."
            )
        bad_dynamic = [n for n in dynamic if n in static or n not in self.data_manager.field_names
                       or self.data_manager.field_frames(n) == 1]
        if bad_dynamic:
            raise ValueError(
                f"Expected dynamic fields to be time-dependent fields of the dataset and not static, "
                f"got {bad_dynamic}. Fix: list them in static_fields only."
            )
        missing = [n for n in self.field_names if n not in static and n not in dynamic]
        if missing:
            raise ValueError(f"Fields {missing} are neither dynamic nor static. Fix: list them in one of the two.")
        if not dynamic:
            raise ValueError(
                f"Expected at least one dynamic field to predict, got none (static: {list(static)}). "
                f"Fix: add one of {list(self.data_manager.field_names)} to field_names."
            )
        # keep the order of field_names: it fixes the channel order
        return (tuple(n for n in self.field_names if n in static),
                tuple(n for n in self.field_names if n in dynamic))

    def _check_num_frames(self, num_frames) -> int:
        total = self.data_manager.num_frames
        if num_frames is None:
            return total
        if not is_integer(num_frames) or not 2 <= num_frames <= total:
            raise ValueError(
                f"Expected num_frames in 2..{total} (the dataset's frames per simulation), got "
                f"{num_frames!r}. Fix: pass None to use all frames."
            )
        return int(num_frames)

    def __repr__(self) -> str:
        return (f"HybridDataset({len(self)} windows: sims {list(self.sim_indices)[:8]}"
                f"{'...' if len(self.sim_indices) > 8 else ''}, {self.num_frames} frames, "
                f"{self.num_predict_steps} predict steps, dynamic {list(self.dynamic_fields)}, "
                f"static {list(self.static_fields)}, {'fields' if self.return_fields else 'tensors'})")


def _names(names, label: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"Expected a list of names for {label}, got the string {names!r}. Fix: [{names!r}].")
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"Expected a list of names for {label}, got {names!r}.") from None
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"Expected names (strings) in {label}, got {list(names)!r}. Fix: e.g. ['velocity'].")
    return names


def _check_sims(sim_indices, num_sims: int) -> np.ndarray:
    idx = np.asarray(list(sim_indices) if not isinstance(sim_indices, np.ndarray) else sim_indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise ValueError(
            f"Expected a non-empty list of integer simulation indices, got {sim_indices!r}. "
            f"Fix: e.g. sim_indices=range({num_sims})."
        )
    if idx.min() < 0 or idx.max() >= num_sims:
        raise IndexError(
            f"Expected simulation indices in 0..{num_sims - 1}, got {idx.tolist()}: the dataset "
            f"holds {num_sims} simulations. Fix: use indices below {num_sims}."
        )
    return idx.astype(np.int64)
