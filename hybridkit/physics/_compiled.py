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

import copy
import threading
from collections import OrderedDict
from functools import partial
from typing import Callable, Hashable, Mapping

from phiml import math

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


def compile_block(model, size: int, n: int):
    """``math.jit_compile`` of ``size`` substeps of ``dt / n`` of ``model`` (a private copy: the cache
    must not keep the caller's model alive)."""
    def substeps(values, params):
        return model._advance(values, params, n, size)
    return math.jit_compile(substeps)


def detached(tensors: dict) -> dict:
    return {k: math.stop_gradient(v) if isinstance(v, math.Tensor) else v for k, v in tensors.items()}


def frozen(value):
    """Plain data as a hashable value (dicts as sorted item tuples, lists as tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


#: most substeps unrolled into one compiled function; more run as a loop of such blocks
UNROLL = 4


def stepper(model, n: int, values: dict):
    """``(values, params) -> values`` advancing ``model.dt`` in ``n`` substeps (compiled if ``model.jit``).

    Compiled: blocks of at most :data:`UNROLL` substeps of ``dt / n`` each, one compiled function
    per block size and ``n`` (shared by all models of this :attr:`trace_key`, on this device and
    precision); a trace's cost grows with its length, the cost per substep does not fall beyond
    a few (measured: 128-cell Burgers 0.89 / 0.65 / 0.63 ms per substep in blocks of 1 / 4 / 8).
    """
    if not model.jit:
        return partial(model._advance, n=n)
    first = next(iter(values.values()))
    device = first.device.ref if isinstance(first, math.Tensor) and first.device is not None else None
    sizes = [UNROLL] * (n // UNROLL) + ([n % UNROLL] if n % UNROLL else [])
    key = model.trace_key
    blocks = {size: shared_jit((key, "substeps", size, n, math.get_precision(), device),
                               lambda size=size: compile_block(copy.copy(model), size, n))
              for size in set(sizes)}
    if len(sizes) == 1:
        return blocks[sizes[0]]

    def step(values, params):
        for size in sizes:
            values = blocks[size](values, params)
        return values
    return step

