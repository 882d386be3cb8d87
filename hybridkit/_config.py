"""Typed configs: small dataclasses, converted once from plain dicts at the public boundary."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message says which and how to fix it."""


def from_dict(cls: type[T], data: Mapping[str, Any] | T | None, *, where: str = "config") -> T:
    """Build dataclass ``cls`` from a dict; unknown keys fail with the list of known ones.

    Args:
        cls: a dataclass type.
        data: a dict (or an instance of ``cls``, returned as is; None gives the defaults).
        where: name of the section, used in messages (e.g. ``"trainer_params"``).

    Raises:
        ConfigError: unknown keys, or a value the dataclass' ``__post_init__`` rejects.
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
    try:
        return cls(**dict(data))
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: int(.inf) from YAML
        raise ConfigError(f"Invalid {where}: {e}") from e


def to_dict(cfg) -> dict:
    """A dataclass config as a plain dict (for JSON / YAML / checkpoints)."""
    return dataclasses.asdict(cfg)
