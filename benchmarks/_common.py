"""What the benchmarks share: timing by medians, one result row, thread pinning."""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field

import torch


@dataclass
class Row:
    """One line of the suite's table.

    ``ratio`` is reference time / hybridkit time (1.0 = as fast as the reference, higher is
    better) unless ``note`` says otherwise; ``met`` is None where the issue sets no target.
    """

    benchmark: str
    hybridkit: str
    reference: str
    ratio: float
    target: str
    met: bool | None
    note: str = ""
    extra: dict = field(default_factory=dict)


def setup(threads: int) -> None:
    """Pin torch's intra-op threads (timings on a shared machine are otherwise meaningless) and
    silence the deprecation phiml's jit raises through ``torch.jit.trace``."""
    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", message=".*torch.jit.trace", category=DeprecationWarning)


def median_time(fn, repeats: int, inner: int = 1, warmup: int = 2) -> float:
    """Median over ``repeats`` of the mean wall time of ``inner`` calls of ``fn``, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Time several functions in alternating order (a busy machine slows them alike).

    Returns ``name -> list of seconds`` (``repeats`` each), warm-up calls excluded.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(ref: list, mine: list) -> float:
    """Median of the per-round ratios ``ref / mine``: robust to load that drifts during a run."""
    return statistics.median(r / m for r, m in zip(ref, mine))


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"
