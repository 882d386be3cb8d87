"""The loop both trainers share: ``train(data_source, num_epochs)`` over a persistent state."""
from __future__ import annotations

import abc

from tqdm.auto import tqdm


class AbstractTrainer(abc.ABC):
    """A trainer that is created once and trained many times on data passed in explicitly.

    Subclasses implement :meth:`_train_epoch_with_data`; the state they keep between calls
    (optimizer, scheduler, learned parameters) makes a second :meth:`train` continue the first.
    """

    def __init__(self):
        self.epoch = 0  # epochs trained so far, over all train() calls
        self.history: dict[str, list] = {"loss": []}

    @abc.abstractmethod
    def _train_epoch_with_data(self, data_source) -> float:
        """Train one epoch on ``data_source`` and return its mean loss."""

    def train(self, data_source, num_epochs: int, *, progress: bool = True) -> dict:
        """Train ``num_epochs`` epochs on ``data_source``.

        Args:
            data_source: what the subclass iterates (a ``DataLoader`` or a dataset).
            num_epochs: epochs to run in this call (>= 1).
            progress: show a progress bar.

        Returns:
            The history of this call: ``{"loss": [one float per epoch], ...}``.
        """
        if int(num_epochs) < 1:
            raise ValueError(f"Expected num_epochs >= 1, got {num_epochs}.")
        run = {"loss": []}
        bar = tqdm(range(int(num_epochs)), desc=type(self).__name__, disable=not progress, leave=False)
        for _ in bar:
            loss = float(self._train_epoch_with_data(data_source))
            self.epoch += 1
            run["loss"].append(loss)
            self.history["loss"].append(loss)
            bar.set_postfix(loss=f"{loss:.3e}")
        return run
