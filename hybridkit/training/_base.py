"""What every trainer shares: the state protocol, checkpoints, and the ``train`` loop.

* :class:`AbstractCheckpointable` — ``state_dict()`` / ``load_state_dict()`` (PyTorch's
  protocol) and, built on them, ``save_checkpoint`` / ``load_checkpoint``; also what a HYCO
  reversion restores.
* :class:`AbstractTrainer` — ``train(data_source, num_epochs)`` over a persistent state: an epoch
  counter, a :class:`~hybridkit.training.History` of records, a progress bar and callbacks.
"""
from __future__ import annotations

import abc
import copy
import os
from pathlib import Path
from typing import Callable, Iterable

from tqdm.auto import tqdm

from .._checks import is_integer
from ._checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from ._distributed import barrier, is_rank_zero
from ._records import History

__all__ = ["AbstractCheckpointable", "AbstractTrainer"]


class AbstractCheckpointable(abc.ABC):
    """An object whose whole state is a ``state_dict()`` of tensors and plain data."""

    @abc.abstractmethod
    def state_dict(self) -> dict:
        """Everything the next step depends on, as tensors and plain data (copied on restore)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Make ``state`` (from :meth:`state_dict`) the current state.

        Raises:
            CheckpointError: the state does not fit (another model, config, shape, or invalid
                values); callers that need all-or-nothing use :meth:`restore`.
        """

    def restore(self, state: dict) -> None:
        """:meth:`load_state_dict`, all or nothing: if it fails, the previous state is back."""
        before = copy.deepcopy(self.state_dict())
        try:
            self.load_state_dict(state)
        except Exception as e:
            self.load_state_dict(before)
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"The state does not fit this {type(self).__name__} ({type(e).__name__}: "
                                  f"{str(e)[:300]}). Fix: load a state saved by a {type(self).__name__} "
                                  "built with the same model and config.") from None

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write :meth:`state_dict` to ``path`` (atomically: a reader never sees half a file).

        Under ``torchrun`` rank 0 writes and every rank waits until it has. Returns the path.
        """
        path = Path(path)
        if is_rank_zero():
            write_checkpoint(path, type(self).__name__, self.state_dict())
        barrier()
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint`; the next training step
        continues exactly where the saved object stopped. Nothing changes unless all of it loads.

        Raises:
            FileNotFoundError: no file at ``path``.
            CheckpointError (a ValueError): damaged, foreign, another trainer's, holding objects
                other than tensors and plain data, or made with another model or config.
        """
        state = read_checkpoint(path, type(self).__name__, map_location=self._map_location)
        try:
            self.restore(state)
        except CheckpointError as e:
            raise CheckpointError(f"Checkpoint {path}: {e}") from None

    @property
    def _map_location(self):
        """Where a checkpoint's tensors are loaded to (torch's ``map_location``)."""
        return "cpu"


class AbstractTrainer(AbstractCheckpointable):
    """A trainer created once and trained many times on data passed in explicitly.

    Subclasses implement :meth:`_train_epoch_with_data` (one epoch, returning its record); the
    state they keep between calls (optimizer, scheduler, learned parameters) makes a second
    :meth:`train` continue the first.

    Attributes:
        epoch: epochs trained so far, over all ``train()`` calls (and resumed checkpoints).
        history: one record per epoch (:class:`~hybridkit.training.History`).
    """

    #: the dataclass of the history's records (set by each concrete trainer)
    record_type: type

    def __init__(self):
        self.epoch = 0
        self.history = History()

    @abc.abstractmethod
    def _train_epoch_with_data(self, data_source):
        """Train one epoch on ``data_source``; return its record (with a ``loss`` attribute)."""

    def train(self, data_source, num_epochs: int, *, progress: bool = True,
              callbacks: Iterable[Callable] = ()) -> History:
        """Train ``num_epochs`` epochs on ``data_source``.

        Args:
            data_source: what the subclass iterates (a ``DataLoader`` or a dataset).
            num_epochs: epochs to run in this call (an integer >= 1).
            progress: show a progress bar (on rank 0 only under ``torchrun``).
            callbacks: functions ``callback(trainer, record)`` called after every epoch, e.g.
                ``lambda t, r: t.save_checkpoint(path)``.

        Returns:
            The records of this call's epochs (a :class:`~hybridkit.training.History`).
        """
        if not is_integer(num_epochs) or num_epochs < 1:
            raise ValueError(f"Expected num_epochs >= 1, got {num_epochs!r} (an integer count of epochs).")
        callbacks = list(callbacks)
        if not all(callable(c) for c in callbacks):
            raise TypeError("Expected callbacks as functions callback(trainer, record), got "
                            f"{[type(c).__name__ for c in callbacks]}.")
        run = History()
        bar = tqdm(range(int(num_epochs)), desc=type(self).__name__, disable=not (progress and is_rank_zero()),
                   leave=False)
        for _ in bar:
            record = self._train_epoch_with_data(data_source)
            self._record(record)
            run.append(record)
            bar.set_postfix(loss=f"{record.loss:.3e}")
            for callback in callbacks:
                callback(self, record)
        return run

    def _record(self, record) -> None:
        """Book one finished epoch: count it and append its record to the history."""
        self.epoch += 1
        self.history.append(record)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The epoch counter and the history (subclasses add what they own)."""
        return {"epoch": self.epoch, "history": self.history.to_list()}

    def load_state_dict(self, state: dict) -> None:
        epoch = state.get("epoch")
        if not is_integer(epoch) or epoch < 0 or not isinstance(state.get("history"), list):
            raise CheckpointError(f"Expected an epoch counter >= 0 and a history list, got epoch={epoch!r} and a "
                                  f"history of type {type(state.get('history')).__name__}. Fix: use another "
                                  "checkpoint, or start fresh.")
        self.epoch = int(epoch)
        self.history = History.from_list(state["history"], self.record_type)
