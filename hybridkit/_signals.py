"""Ctrl-C and SIGTERM: an exception at a safe moment, never a hang.

* :class:`Interrupted` — what SIGINT / SIGTERM raise under :func:`interrupts_raise` (a
  ``KeyboardInterrupt``, so every ``except Exception`` lets it through); ``exit_code`` is the
  shell's ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM).
* :func:`interrupts_raise` — the command line's handlers: both signals raise :class:`Interrupted`
  in the main thread, wherever it is.
* :func:`deferred_interrupts` — for code that must not be left in the middle: ``phi.math.minimize``
  runs SciPy in a worker thread that hands every point to the main thread through two barriers;
  an exception raised in the main thread outside the loss (in phiml's gradient code or at a
  barrier) leaves the worker waiting forever and the interpreter hangs at exit. Inside the block a
  signal only sets :attr:`Deferral.pending` (the loss sees it and ends the optimiser); inside
  :meth:`Deferral.immediate` (the loss itself, which stores what it raises) it acts at once; on
  leaving the block a pending signal is handed to the handler that was there before.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["Interrupted", "interrupts_raise", "deferred_interrupts", "Deferral"]

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (:func:`interrupts_raise`); ``signum``, ``name``, ``exit_code``."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the block runs (main thread only;
    elsewhere the block runs with the handlers as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Deferral:
    """The state of a :func:`deferred_interrupts` block.

    Attributes:
        pending: the number of a signal that arrived and waits for the block's end (None: none).
    """

    def __init__(self):
        self.pending: int | None = None
        self._previous: dict = {}
        self._now = 0

    def _handle(self, signum, frame):
        if self._now and callable(self._previous.get(signum)):
            self._previous[signum](signum, frame)  # raises here, inside code that catches it
        elif self.pending is None:
            self.pending = signum

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        """A stretch where a signal acts at once (the previous handler runs, e.g. raising
        KeyboardInterrupt): for code that catches what it raises."""
        self._now += 1
        try:
            yield
        finally:
            self._now -= 1


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Deferral]:
    """Hold SIGINT / SIGTERM until the block ends (see the module docstring).

    Only signals handled in Python are held (the default SIGINT handler raising
    KeyboardInterrupt, :func:`interrupts_raise`'s); a signal whose action is the operating
    system's (SIGTERM by default: the process ends) or ignored is left alone. Outside the main
    thread nothing changes (signals are delivered to the main thread only).
    """
    deferral = Deferral()
    if threading.current_thread() is not threading.main_thread():
        yield deferral
        return
    for s in SIGNALS:
        handler = signal.getsignal(s)
        if callable(handler):
            deferral._previous[s] = signal.signal(s, deferral._handle)
    try:
        yield deferral
    finally:
        for s, handler in deferral._previous.items():
            signal.signal(s, handler)
        if deferral.pending is not None:
            deferral._previous[deferral.pending](deferral.pending, None)  # e.g. raises KeyboardInterrupt
