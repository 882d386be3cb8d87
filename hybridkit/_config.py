"""Typed configs: small dataclasses, converted once from plain dicts at the public boundary."""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

from ._checks import is_integer

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message says which and how to fix it."""


def from_dict(cls: type[T], data: Mapping[str, Any] | T | None, *, where: str = "config") -> T:
    """Build dataclass ``cls`` from a dict; unknown keys fail with the list of known ones.

    Every value is checked against its field's annotation before the dataclass is built (see
    :func:`check_value`): booleans are not numbers, counts are integers (``3.0`` is taken as
    ``3``, ``2.5`` and ``"3"`` are refused), numbers are not strings, NaN is no number;
    ``X | None`` admits None. Values are normalised on the way (``int`` fields hold ``int``,
    ``float`` fields ``float``), so that a YAML ``1`` and a default ``1.0`` are one config.

    Args:
        cls: a dataclass type.
        data: a dict (or an instance of ``cls``, returned as is; None gives the defaults).
        where: name of the section, used in messages (e.g. ``"trainer_params"``).

    Raises:
        ConfigError: unknown keys, a value of the wrong type (the message names the section,
            the key, the value, its type and the fix), or a value the dataclass'
            ``__post_init__`` rejects.
    """
    if data is None:
        return cls()
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"Expected a dict for {where}, got {type(data).__name__}.")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in known]
    if unknown:
        # keys need not be strings (YAML reads `1:` as an int): compare their text
        hints = {k: difflib.get_close_matches(str(k), known, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} (did you mean {h[0]!r}?)" if h else repr(k) for k, h in hints.items())
        raise ConfigError(f"Unknown key(s) in {where}: {hint}. Known keys: {known}.")
    hints, defaults = _fields(cls)
    values = {k: check_value(v, hints.get(k, Any), key=str(k), where=where, default=defaults.get(k, _NO_DEFAULT))
              for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: int(.inf) from YAML
        raise ConfigError(f"Invalid {where}: {e}") from e


def to_dict(cfg) -> dict:
    """A dataclass config as a plain dict (for JSON / YAML / checkpoints)."""
    return dataclasses.asdict(cfg)


_NO_DEFAULT = object()


@functools.lru_cache(maxsize=None)
def _fields(cls) -> tuple[dict, dict]:
    """``(name -> annotation, name -> default)`` of a dataclass' init fields."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated here: check nothing rather than fail
        hints = {}
    defaults = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return hints, defaults


def check_value(value, annotation, *, key: str, where: str, default=_NO_DEFAULT):
    """``value`` checked against a type ``annotation`` (and normalised), as :func:`from_dict` does.

    Understood: ``bool``, ``int``, ``float``, ``str``, ``dict`` / ``Mapping``, ``list`` /
    ``tuple`` / ``Sequence`` (and their parametrised forms: only the container is checked),
    dataclasses (a dict is converted with :func:`from_dict`), ``X | None`` / ``Optional`` /
    ``Union``; anything else (``Any``, other classes) is passed through.

    * ``int``: an integral number; ``3.0`` becomes ``3``; bools, ``2.5``, NaN, inf, strings refused;
    * ``float``: a real number (ints become floats); bools, strings, NaN refused (inf passes:
      the field's own checks decide);
    * ``bool``: only ``True`` / ``False`` (numpy's too), not ``0`` / ``1`` or ``"yes"``;
    * ``str``: only strings; containers: the container type (a list or tuple for sequences).

    Raises:
        ConfigError: naming ``key`` in ``where``, the value and its type, and the fix.
    """
    ok, out = _accept(value, annotation, key, where)
    if ok:
        return out
    example = default if default is not _NO_DEFAULT and _accept(default, annotation, key, where)[0] else None
    raise ConfigError(
        f"Expected {key!r} in {where} to be {_describe(annotation)}, got {value!r} ({_type_name(value)}). "
        f"Fix: {_fix(value, annotation, key, example)}"
    )


def _accept(value, ann, key: str, where: str) -> tuple[bool, Any]:
    """``(accepted, normalised value)``."""
    origin = typing.get_origin(ann)
    if origin is typing.Union or isinstance(ann, types.UnionType):
        args = typing.get_args(ann)
        if value is None:
            return type(None) in args, None
        for arg in args:
            if arg is not type(None):
                ok, out = _accept(value, arg, key, where)
                if ok:
                    return True, out
        return False, value
    base = origin if origin is not None else ann
    if base is bool:
        return _is_bool(value), bool(value) if _is_bool(value) else value
    if base is int:
        return (True, int(value)) if is_integer(value) else (False, value)
    if base is float:
        if not isinstance(value, numbers.Real) or _is_bool(value):
            return False, value
        try:
            number = float(value)
        except (OverflowError, TypeError, ValueError):  # an int beyond float range
            return False, value
        return (not math.isnan(number)), number
    if base is str:
        return isinstance(value, str), value
    if isinstance(base, type) and issubclass(base, Mapping) or base is dict:
        return isinstance(value, Mapping), value
    if base in (list, tuple) or base is Sequence or (isinstance(base, type) and base.__name__ == "Sequence"):
        return _is_sequence(value), value
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        if isinstance(value, base):
            return True, value
        if isinstance(value, Mapping):
            return True, from_dict(base, value, where=f"{where}.{key}")
        return False, value
    return True, value


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _is_sequence(value) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    return isinstance(value, Sequence) or type(value).__name__ == "ndarray"


def _describe(ann) -> str:
    origin = typing.get_origin(ann)
    if origin is typing.Union or isinstance(ann, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(ann) if a is not type(None)]
        none = type(None) in typing.get_args(ann)
        return " or ".join(parts) + (" or null" if none else "")
    base = origin if origin is not None else ann
    if base is bool:
        return "true or false"
    if base is int:
        return "an integer (a whole number)"
    if base is float:
        return "a number"
    if base is str:
        return "a string"
    if base is dict or isinstance(base, type) and issubclass(base, Mapping):
        return "a mapping"
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return f"a mapping of {base.__name__} settings"
    return "a list"


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", type(None): "null",
            dict: "a mapping", list: "a list", tuple: "a tuple"}.get(type(value), type(value).__name__)


def _fix(value, ann, key: str, example) -> str:
    """What to write instead, in YAML terms (configs come from YAML files and --set)."""
    shown = "" if example is None else f" (the default: {key}: {_yaml_repr(example)})"
    text = _describe(ann)
    wants_number = any(t in text for t in ("integer", "number"))
    if _is_bool(value) and wants_number:
        return (f"write a number{shown}; YAML reads true/false/yes/no/on/off as booleans, and a boolean is not "
                "a number.")
    if isinstance(value, str) and wants_number:
        try:
            float(value)
        except ValueError:
            return f"write a number{shown}."
        return f"write the number without quotes ({key}: {value})."
    if "integer" in text and isinstance(value, numbers.Real) and not _is_bool(value):
        if math.isfinite(float(value)):
            return (f"write a whole number, e.g. {key}: {math.floor(float(value))} or {math.ceil(float(value))} "
                    "(a count is never rounded for you).")
        return f"write a finite whole number{shown}."
    if isinstance(value, float) and math.isnan(value):
        return f"write a number{shown}; NaN is not a setting."
    if text == "true or false":
        return f"write true or false{shown}."
    if text.startswith("a string"):
        return f"quote the value in YAML ({key}: '...'){shown}."
    return f"write {text}{shown}."


def _yaml_repr(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml_repr(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


def check_keywords(func, kwargs: Mapping[str, Any], *, where: str) -> dict:
    """Keyword arguments for ``func`` (a constructor such as ``Burgers.__init__``) checked the way
    :func:`from_dict` checks dataclass fields, for free-form config dicts (``data.pde_params``).

    A physical model's coefficient may be a number, an expression or an array, so annotations
    alone cannot say what is valid; the rule follows each parameter's default:

    * default ``True`` / ``False``: only a boolean (``jit: 1`` is refused);
    * an ``int`` annotation with an integer default (``substeps``): an integer (``3.0`` -> ``3``);
    * a ``float`` annotation with a numeric default (``dt``): a number;
    * a numeric default (``viscosity=0.5``, ``dt: float = 0.1``): anything but a boolean or None,
      also inside lists (``viscosity: yes`` would otherwise run as 1.0);
    * a string default: a string.

    Names ``func`` does not take are passed through (the caller reports unknown keys).

    Raises:
        ConfigError: naming the key in ``where``, the value, its type and the fix.
    """
    import inspect

    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    params = inspect.signature(func).parameters
    out = dict(kwargs)
    for name, value in kwargs.items():
        p = params.get(name)
        if p is None:
            continue
        default = p.default
        if _is_bool(default):
            out[name] = check_value(value, bool, key=name, where=where, default=default)
        elif hints.get(name) is int and is_integer(default):
            out[name] = check_value(value, int, key=name, where=where, default=default)
        elif hints.get(name) is float and isinstance(default, numbers.Real):  # dt: a number, never an expression
            out[name] = check_value(value, float, key=name, where=where, default=default)
        elif isinstance(default, numbers.Real):
            bad = _first_bool_or_none(value)
            if bad is not _NO_DEFAULT:
                raise ConfigError(
                    f"Expected {name!r} in {where} to be a number (or an expression / array of numbers), got "
                    f"{value!r} ({_type_name(bad)}{' inside' if bad is not value else ''}). Fix: "
                    f"{_fix(bad, float, name, default)}"
                )
        elif isinstance(default, str) and int in typing.get_args(hints.get(name)) and not isinstance(value, str):
            out[name] = check_value(value, int, key=name, where=where, default=default)  # substeps: 3 or "auto"
        elif isinstance(default, str):
            out[name] = check_value(value, str, key=name, where=where, default=default)
    return out


def _first_bool_or_none(value):
    """The first boolean or None in ``value`` or the lists / tuples inside it, else ``_NO_DEFAULT``."""
    stack = [value]
    while stack:
        v = stack.pop()
        if v is None or _is_bool(v):
            return v
        if isinstance(v, (list, tuple)):
            stack.extend(v)
    return _NO_DEFAULT
