"""The on-disk format of a hybridkit dataset: attribute names, encoding, validation.

The layout itself is documented in the :mod:`hybridkit.data` docstring; this module is the one
place that writes and reads the root attributes, so writer and reader cannot drift apart.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
from h5py import h5z

from .._checks import check_count, check_real

FORMAT = "hybridkit-dataset"
FORMAT_VERSION = 1

# Root attributes holding lists or dicts are stored as JSON strings: HDF5 has no empty string
# arrays (a 1D model has no vector fields) and JSON reads the same from any HDF5 tool.
_JSON_ATTRS = ("model_config", "field_names", "vector_fields", "param_names", "param_kinds",
               "source_config")
_REQUIRED = ("format", "format_version", "hybridkit_version", "pde", "model_config", "dt",
             "resolution", "domain_size", "boundary", "seed", "field_names", "vector_fields",
             "param_names", "param_kinds", "num_sims", "num_frames")


_KINDS = ("scalar", "field", "vector")
# filters hybridkit's writer uses or that HDF5 builds in; anything else (lzf, szip, a plugin that
# HDF5 would load from HDF5_PLUGIN_PATH) is not a hybridkit dataset
_FILTERS = {h5z.FILTER_DEFLATE: "gzip", h5z.FILTER_SHUFFLE: "shuffle", h5z.FILTER_FLETCHER32: "fletcher32"}
_REGENERATE = "Fix: regenerate the file with hybridkit.data.generate_dataset (or write_trajectories)."


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
            value = tuple(np.asarray(attrs[key]).reshape(-1).tolist())
        meta[key] = value
    _check_values(meta, path)
    return meta


def _check_values(meta: dict, path) -> None:
    """The root attributes hold what the writer writes: a forged ``dt`` of -0.1 or NaN, a float
    frame count, names that are not strings or vector fields that are not fields are refused
    here, not found later as a wrong answer."""
    try:
        check_real(meta["dt"], "root attribute dt (time between frames)", minimum=0.0, strict_minimum=True)
        for key in ("num_sims", "num_frames"):
            check_count(meta[key], f"root attribute {key}", minimum=1)
        check_count(meta["seed"], "root attribute seed", minimum=0)
        for key in ("field_names", "vector_fields", "param_names", "param_kinds"):
            value = meta[key]
            if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value) \
                    or len(set(value)) != len(value) and key != "param_kinds":
                raise ValueError(f"Expected root attribute {key} as a JSON list of distinct names, got {value!r}.")
        if not meta["field_names"]:
            raise ValueError("Expected at least one field in root attribute field_names, got none.")
        if not set(meta["vector_fields"]) <= set(meta["field_names"]):
            raise ValueError(f"Expected vector_fields {list(meta['vector_fields'])} among field_names "
                             f"{list(meta['field_names'])}.")
        if len(meta["param_kinds"]) != len(meta["param_names"]) or not set(meta["param_kinds"]) <= set(_KINDS):
            raise ValueError(f"Expected one of {_KINDS} per parameter in param_kinds, got {list(meta['param_kinds'])} "
                             f"for {list(meta['param_names'])}.")
        for key in ("model_config", "source_config"):
            if key in meta and not isinstance(meta[key], dict):
                raise ValueError(f"Expected root attribute {key} as a JSON object, got {type(meta[key]).__name__}.")
        _check_model_config(meta)
    except (TypeError, ValueError) as e:
        raise DatasetFormatError(f"Dataset {path} has forged or damaged attributes: {e} {_REGENERATE}") from None


def _check_model_config(meta: dict) -> None:
    """``model_config`` repeats dt and the grid: both copies must agree (an edited file)."""
    cfg = meta["model_config"]
    if "dt" in cfg and not _same(cfg["dt"], meta["dt"]):
        raise ValueError(f"root attribute dt={meta['dt']!r} disagrees with model_config dt={cfg['dt']!r}.")
    grid = cfg.get("grid")
    if isinstance(grid, dict):
        for key in ("resolution", "domain_size", "boundary"):
            if key in grid and not _same(grid[key], meta[key]):
                raise ValueError(f"root attribute {key}={meta[key]!r} disagrees with model_config "
                                 f"grid.{key}={grid[key]!r}.")


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return a == b


def open_array(f: h5py.File, name: str, path, *, what: str) -> h5py.Dataset | None:
    """The array at ``name`` (``"fields/velocity"``) if it lives in this file, else an error.

    A hybridkit dataset is self-contained: every array's bytes are stored in the file itself.
    Refused, with what was found: external or soft links on the way (HDF5 would follow them into
    another file), virtual datasets (a view of other files), external raw storage (the bytes of,
    say, ``/etc/passwd``), filters hybridkit does not write (a plugin HDF5 would load), arrays
    whose bytes were never written (a few kB of file claiming gigabytes of zeros), and values
    that are not floating point (``what="field"``/``"parameter"``; float16 / float64 are read as
    float32, integers and booleans are refused).

    Returns:
        the ``h5py.Dataset``, or None when nothing is at ``name`` (the caller says what is missing).
    """
    node: h5py.Group | h5py.Dataset = f
    parts = name.split("/")
    for i, part in enumerate(parts):
        here = "/" + "/".join(parts[: i + 1])
        if not isinstance(node, h5py.Group):
            return None
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise DatasetFormatError(
                f"{here} in {path} is an external link to {link.path} in the file {link.filename}; a hybridkit "
                f"dataset holds its arrays itself and never reads other files. {_REGENERATE}")
        if isinstance(link, h5py.SoftLink):
            raise DatasetFormatError(
                f"{here} in {path} is a soft link to {link.path}; a hybridkit dataset stores its arrays at their "
                f"own paths (soft links may lead through external links to other files). {_REGENERATE}")
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise DatasetFormatError(f"Expected an array at /{name} in {path}, found a {type(node).__name__}. {_REGENERATE}")
    _check_storage(node, name, path)
    kind = node.dtype.kind
    if kind != "f":
        raise DatasetFormatError(
            f"Expected floating-point values in /{name} of {path} (a {what}), got dtype {node.dtype}. hybridkit "
            "stores float32 (float16 / float64 are read as float32); integers, booleans and other types are not "
            "data for a PDE. Fix: convert the arrays, e.g. write_trajectories(model, path, "
            "{name: values.astype('float32')}), or regenerate the file.")
    return node


def _check_storage(ds: h5py.Dataset, name: str, path) -> None:
    if ds.is_virtual:
        files = sorted({m.file_name for m in ds.virtual_sources()})
        raise DatasetFormatError(
            f"/{name} in {path} is a virtual dataset that reads from {files}; a hybridkit dataset holds its "
            f"arrays itself. {_REGENERATE}")
    if ds.external:
        files = [e[0] if isinstance(e[0], str) else e[0].decode(errors="replace") for e in ds.external]
        raise DatasetFormatError(
            f"/{name} in {path} keeps its bytes in external file(s) {files} (HDF5 external storage); a hybridkit "
            f"dataset holds its arrays itself and never reads other files. {_REGENERATE}")
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [c for c in codes if c not in _FILTERS]
    if unknown:
        raise DatasetFormatError(
            f"/{name} in {path} uses HDF5 filter(s) {unknown}, which hybridkit does not write (it reads "
            f"{sorted(_FILTERS.values())}). {_REGENERATE}")
    if h5z.FILTER_DEFLATE not in codes and ds.size and ds.id.get_storage_size() < ds.nbytes:
        raise DatasetFormatError(
            f"/{name} in {path} announces {ds.nbytes:,} bytes ({ds.shape}) but stores only "
            f"{ds.id.get_storage_size():,}: its values were never written (HDF5 would return zeros). {_REGENERATE}")


def _plain(value):
    """numpy scalar / bytes -> Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
