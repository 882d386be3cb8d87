"""Compiled functions shared by all models of one configuration, so that jitting cannot leak.

``phiml.math.jit_compile`` traces with ``torch.jit.trace`` on the torch backend, and torch
registers every trace (its graph, the constants baked into it) in one global compilation unit
that is never freed, even when the traced module is (pytorch/pytorch#35600, #43119). A jitted
function per model therefore leaked its traces: measured here, 2.5 MB per fresh 64-cell Burgers
model stepped a few times and ~30 MB per model fitted with the trainer's compiled misfit.

Models whose :attr:`~hybridkit.physics.AbstractPDE.trace_key` is equal compute the same step from
the same values and parameters, so they can share one compiled function: :func:`shared_jit`
keeps one per key (and per anything else the caller adds to the key, e.g. the number of
substeps). Creating and stepping many equal models then traces once; the table is bounded, least
recently used entries are dropped (torch keeps their traces, so the leak is bounded by the number
of distinct configurations, not the number of models).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable

__all__ = ["shared_jit", "MAX_SHARED"]

#: compiled functions kept at most (least recently used are dropped)
MAX_SHARED = 64

_TABLE: "OrderedDict[Hashable, Callable]" = OrderedDict()
_LOCK = threading.Lock()


def shared_jit(key: Hashable, build: Callable[[], Callable]) -> Callable:
    """The compiled function stored under ``key``, built by ``build()`` the first time.

    Args:
        key: hashable; must determine the compiled function completely, e.g.
            ``(model.trace_key, "step", n)`` or ``(model.trace_key, "misfit", n)``.
        build: returns the compiled function (typically ``math.jit_compile(f)`` of a function
            that closes over a *copy* of the model, ``copy.copy(model)``, so that the table does
            not keep the caller's model alive).

    Returns:
        The compiled function, the same object for every call with an equal ``key``.
    """
    with _LOCK:
        fn = _TABLE.get(key)
        if fn is not None:
            _TABLE.move_to_end(key)
            return fn
    fn = build()
    with _LOCK:
        fn = _TABLE.setdefault(key, fn)
        _TABLE.move_to_end(key)
        while len(_TABLE) > MAX_SHARED:
            _TABLE.popitem(last=False)
    return fn


def shared_count() -> int:
    """Number of compiled functions held (for tests and diagnostics)."""
    return len(_TABLE)
