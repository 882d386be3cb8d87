"""The on-disk format of a hybridkit dataset: attribute names, encoding, validation.

The layout itself is documented in the :mod:`hybridkit.data` docstring; this module is the one
place that writes and reads the root attributes, so writer and reader cannot drift apart.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

FORMAT = "hybridkit-dataset"
FORMAT_VERSION = 1

# Root attributes holding lists or dicts are stored as JSON strings: HDF5 has no empty string
# arrays (a 1D model has no vector fields) and JSON reads the same from any HDF5 tool.
_JSON_ATTRS = ("model_config", "field_names", "vector_fields", "param_names", "param_kinds",
               "source_config")
_REQUIRED = ("format", "format_version", "hybridkit_version", "pde", "model_config", "dt",
             "resolution", "domain_size", "boundary", "seed", "field_names", "vector_fields",
             "param_names", "param_kinds", "num_sims", "num_frames")


class DatasetFormatError(ValueError):
    """A file is not a (readable) hybridkit dataset; the message says why and how to fix it."""


def encode_attrs(meta: Mapping[str, Any]) -> dict:
    """Plain metadata -> values h5py stores portably (JSON strings, numpy scalars/arrays)."""
    out = {}
    for key, value in meta.items():
        if key in _JSON_ATTRS:
            out[key] = json.dumps(value, sort_keys=True)
        elif key == "resolution":
            out[key] = np.asarray(value, dtype=np.int64)
        elif key == "domain_size":
            out[key] = np.asarray(value, dtype=np.float64)
        elif isinstance(value, bool):
            out[key] = np.bool_(value)
        elif isinstance(value, int):
            out[key] = np.int64(value)
        elif isinstance(value, float):
            out[key] = np.float64(value)
        else:
            out[key] = str(value)
    return out


def decode_attrs(attrs: Mapping[str, Any], path: Path | str) -> dict:
    """Root attributes of an open file -> plain Python metadata; validates the format.

    Raises:
        DatasetFormatError: the file lacks the hybridkit format marker, has a newer version,
            misses required attributes, or holds attributes that are not what the writer wrote.
    """
    fmt = _plain(attrs.get("format"))
    if fmt != FORMAT:
        raise DatasetFormatError(
            f"Expected a hybridkit dataset (root attribute format={FORMAT!r}), got "
            f"format={fmt!r} in {path}. Fix: create the file with "
            "hybridkit.data.generate_dataset(model, path, ...)."
        )
    try:
        version = int(_plain(attrs.get("format_version", -1)))
    except (TypeError, ValueError):
        version = -1
    if version > FORMAT_VERSION or version < 1:
        raise DatasetFormatError(
            f"Expected format_version 1..{FORMAT_VERSION}, got {version} in {path}. "
            "Fix: regenerate the file, or update hybridkit."
        )
    missing = [k for k in _REQUIRED if k not in attrs]
    if missing:
        raise DatasetFormatError(
            f"Dataset {path} lacks root attribute(s) {missing}. Fix: regenerate it with "
            "hybridkit.data.generate_dataset."
        )
    meta = {}
    for key in attrs:
        value = _plain(attrs[key])
        if key in _JSON_ATTRS:
            try:
                value = json.loads(value)
            except (TypeError, ValueError) as e:
                raise DatasetFormatError(
                    f"Expected JSON in root attribute {key!r} of {path}, got {str(value)[:80]!r} ({e}). "
                    "Fix: regenerate the file with hybridkit.data.generate_dataset."
                ) from None
            if isinstance(value, list):
                value = tuple(value)
        elif key in ("resolution", "domain_size"):
            value = tuple(np.asarray(attrs[key]).tolist())
        meta[key] = value
    return meta


def _plain(value):
    """numpy scalar / bytes -> Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
