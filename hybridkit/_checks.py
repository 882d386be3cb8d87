"""Checks of numbers at the public boundary: counts are integers, reals are finite.

One definition for the whole package, so that ``1.5`` as a count, ``True`` as a number or NaN as
a noise level is refused the same way everywhere (with what was expected, what was given and the
fix), instead of being truncated or turned into a torch error three calls deeper.
"""
from __future__ import annotations

import math
import numbers

__all__ = ["is_integer", "check_count", "check_real"]


def is_integer(value) -> bool:
    """An integral number (``3``, ``3.0``, numpy integers), not a bool, string, NaN, inf or ``2.5``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or type(value).__name__ == "bool_":
        return False
    try:
        return math.isfinite(value) and float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        return False


def check_count(value, name: str, *, minimum: int = 0, maximum: int | None = None, fix: str = "") -> int:
    """``value`` as an ``int`` if it is an integral number in ``[minimum, maximum]``.

    Raises:
        ValueError: anything else (``1.5``, ``True``, ``"3"``, NaN, below ``minimum``).
    """
    upper = "" if maximum is None else f" and <= {maximum}"
    if not is_integer(value) or int(value) < minimum or (maximum is not None and int(value) > maximum):
        raise ValueError(f"Expected {name} as an integer >= {minimum}{upper}, got {value!r}."
                         + (f" Fix: {fix}" if fix else ""))
    return int(value)


def check_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
               strict_minimum: bool = False, fix: str = "") -> float:
    """``value`` as a ``float`` if it is a finite real number in range (bools are not numbers).

    Args:
        minimum, maximum: inclusive bounds (``minimum`` exclusive with ``strict_minimum``).

    Raises:
        ValueError: a bool, a string, NaN, inf or a value out of range.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"
    ok = ok and math.isfinite(float(value))
    if ok and minimum is not None:
        ok = float(value) > minimum if strict_minimum else float(value) >= minimum
    if ok and maximum is not None:
        ok = float(value) <= maximum
    if not ok:
        lo = "" if minimum is None else (f" > {minimum:g}" if strict_minimum else f" >= {minimum:g}")
        hi = "" if maximum is None else f" <= {maximum:g}"
        both = " and" if lo and hi else ""
        raise ValueError(f"Expected {name} as a finite number{lo}{both}{hi}, got {value!r}."
                         + (f" Fix: {fix}" if fix else ""))
    return float(value)
