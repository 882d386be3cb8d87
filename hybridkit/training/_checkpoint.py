"""Checkpoints of every trainer: one file format, one reader, one error type.

A checkpoint is a trainer's :meth:`state_dict` in a small envelope, written with ``torch.save``
(atomically) and read with ``torch.load(weights_only=True)``: tensors and plain data only, so a
crafted file cannot run code. Envelope: ``{"format": "hybridkit.checkpoint", "version": 1,
"kind": "<trainer class>", "state": {...}}``.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from .._io import atomic_write

__all__ = ["CheckpointError", "write_checkpoint", "read_checkpoint"]

FORMAT, VERSION = "hybridkit.checkpoint", 1


class CheckpointError(ValueError):
    """A file is not a checkpoint this trainer can load (damaged, foreign, of another trainer or
    model, or holding Python objects that loading would have to execute); the message says why
    and the fix. Nothing of the trainer changes when it is raised."""


def write_checkpoint(path: str | os.PathLike, kind: str, state: dict) -> Path:
    """Write ``state`` (a trainer's ``state_dict()``) as a checkpoint of ``kind``, atomically."""
    doc = {"format": FORMAT, "version": VERSION, "kind": kind, "state": state}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            torch.save(doc, fh)

    return atomic_write(path, write)


def read_checkpoint(path: str | os.PathLike, kind: str, *, map_location=None) -> dict:
    """The state stored in the checkpoint at ``path``, read without executing anything.

    Args:
        path: a file written by :func:`write_checkpoint`.
        kind: the trainer class that may load it (e.g. ``"SyntheticTrainer"``).
        map_location: where tensors go (``torch.load``'s argument).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: damaged, not a hybridkit checkpoint, another trainer's, or holding
            objects other than tensors and plain data.
    """
    path = Path(path)
    writer = f"{kind}.save_checkpoint"
    try:
        doc = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as e:
        # the weights-only unpickler names a blocked GLOBAL when the file wants to build objects;
        # other unpickling errors (bad opcodes) are just damaged bytes
        lines = [ln for ln in str(e).splitlines() if "GLOBAL" in ln]
        if not lines:
            raise CheckpointError(_damaged(path, writer, e)) from None
        raise CheckpointError(
            f"Refused to load {path}: it holds Python objects other than tensors and plain data, and "
            f"unpickling them could execute code (torch.load(weights_only=True) stopped: "
            f"{lines[0].split('. Please')[0].strip()[:200]}). Fix: load only checkpoints written by "
            f"{writer}; never load this file with weights_only=False unless you trust whoever made it."
        ) from None
    except Exception as e:  # noqa: BLE001  (torch raises many types for damaged files)
        raise CheckpointError(_damaged(path, writer, e)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("state"), dict):
        raise CheckpointError(f"Expected a checkpoint written by {writer}, but {path} is not a {kind} "
                              f"checkpoint (no format {FORMAT!r}). Fix: pass a file written by save_checkpoint.")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{path} is a hybridkit checkpoint of version {doc.get('version')!r}; this "
                              f"version reads {VERSION}. Fix: load it with the hybridkit that wrote it, or start fresh.")
    if doc.get("kind") != kind:
        raise CheckpointError(f"{path} is a checkpoint of a {doc.get('kind')!r}, not of a {kind}. Fix: load it "
                              f"into a {doc.get('kind')}, or pass a file written by {writer}.")
    return doc["state"]


def require(state: dict, keys, path, kind: str) -> None:
    """Refuse a state that lacks ``keys`` (a foreign or hand-edited file)."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path} claims to be a {kind} checkpoint but lacks {missing}. Fix: use another "
                              "checkpoint, or start fresh.")


def _damaged(path: Path, writer: str, e: Exception) -> str:
    return (f"Expected a checkpoint written by {writer}, but {path} cannot be read "
            f"({type(e).__name__}: {str(e)[:200]}): it is damaged (e.g. truncated) or not a torch "
            "file. Fix: use the previous checkpoint, or start fresh.")
