"""What a run directory's checkpoint came from, so that a rerun never reports stale results as new.

Next to every ``checkpoint.pt`` the runner keeps ``checkpoint.json``: the parts of the config the
mode's results depend on (``data`` always; ``synthetic``, ``physical``, ``hybrid`` as the mode
uses them), the mode, and SHA-256 digests of the data files the checkpoint was trained on. It is
written before the first checkpoint and removed again when a run ends without one.

A rerun into the same directory compares: the same config and data resume; a longer run (more
``cycles`` or ``epochs``) resumes and goes on; anything else that changes results (a coefficient,
the noise, an initial guess, the network, a hybrid weight, the data's bytes, fewer cycles than
were run, another mode) is refused with :class:`StaleRunError` before any work, naming the
differences and the fix (``--fresh`` / ``resume=False`` to start over, ``--out`` for another
directory). Keys that do not change results are not compared: ``name``, ``description`` and the
``evaluate`` section (the evaluation is always recomputed from the trained models).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from .._config import ConfigError
from .._io import atomic_write
from ._config import ExperimentConfig
from ._evaluate import plain

__all__ = ["StaleRunError", "RECORD", "CHECKPOINT", "SECTIONS", "run_record", "check_record", "write_record",
           "data_digest", "clear_run", "drop_unused_record"]

CHECKPOINT = "checkpoint.pt"  # in every mode's run directory: resumed by a rerun
RECORD = "checkpoint.json"  # what the checkpoint came from
FORMAT, VERSION = "hybridkit.run", 1
#: the config sections each mode's results depend on
SECTIONS = {"physical": ("data", "physical"), "synthetic": ("data", "synthetic"),
            "hybrid": ("data", "synthetic", "physical", "hybrid")}
#: how far to train: may grow on a resume (the checkpoint's progress is then checked against it)
PROGRESS_KEYS = {"synthetic": ("epochs",), "physical": ("epochs",)}
_FIX = "Fix: rerun with --fresh to start over in this directory (resume=False in Python), or give the new " \
       "run its own directory with --out."


class StaleRunError(ConfigError):
    """A run directory holds a checkpoint made with another config, other data, further progress or
    another mode than asked for; resuming would report its results as this config's. Nothing was
    changed; the message names the differences and the fix (``--fresh`` or ``--out``)."""


def run_record(cfg: ExperimentConfig, mode: str, data_digests: dict | None = None) -> dict:
    """The record of ``mode``'s checkpoint made with ``cfg`` (and the data of ``data_digests``)."""
    doc = plain(asdict(cfg))
    config = {}
    for section in SECTIONS[mode]:
        part = dict(doc[section])
        for key in PROGRESS_KEYS.get(section, ()):
            part.pop(key, None)
        config[section] = part
    return {"format": FORMAT, "version": VERSION, "mode": mode, "config": config, "data": dict(data_digests or {})}


def check_record(directory: Path, cfg: ExperimentConfig, mode: str, data_digests: dict | None = None) -> bool:
    """Refuse to resume from ``directory``'s checkpoint unless it came from ``cfg`` (and, when
    given, from the data of ``data_digests``).

    Returns:
        True when there is a checkpoint with a matching record, False when there is no
        checkpoint. A checkpoint without a record (made before records existed, or planted) is
        left to the caller, who loads it (its reader refuses what is not a checkpoint) and then
        refuses it with :func:`unrecorded`.

    Raises:
        StaleRunError: the record differs from ``cfg``, or is damaged.
    """
    if not (directory / CHECKPOINT).exists():
        return False
    path = directory / RECORD
    if not path.exists():
        return True
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(saved.get("config"), dict):
            raise ValueError("not a run record")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise StaleRunError(f"{path} (what {directory / CHECKPOINT} was made with) cannot be read ({type(e).__name__}: "
                            f"{str(e)[:120]}): the checkpoint's config is unknown. {_FIX}") from None
    if saved.get("mode") != mode:
        raise StaleRunError(f"{directory} holds the checkpoint of a {saved.get('mode')!r} run; this is a {mode!r} "
                            f"run, which cannot continue it. {_FIX}")
    now = run_record(cfg, mode, data_digests)
    differences = _differences(saved["config"], now["config"])
    if data_digests is not None and saved.get("data") != now["data"]:
        differences.append("the data files' contents (the same data config simulated to other bytes, e.g. by "
                           "another hybridkit version or in another HYBRIDKIT_DATA)")
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise StaleRunError(f"{directory / CHECKPOINT} was made with another config than this run's ({shown}); "
                            f"resuming would report its results as this config's. {_FIX}")
    return True


def unrecorded(directory: Path) -> StaleRunError:
    """The refusal of a checkpoint that has no record of its config."""
    return StaleRunError(f"{directory / CHECKPOINT} has no record of the config it was made with ({RECORD} is "
                         f"missing): its results may belong to another config. {_FIX}")


def beyond(directory: Path, done: int, wanted: int, unit: str, key: str) -> StaleRunError:
    """The refusal of a checkpoint that went further than the config asks."""
    fix = _FIX.replace("Fix: ", f"Fix: set {key} >= {done}, or ")
    return StaleRunError(f"{directory / CHECKPOINT} holds {done} {unit}, this config asks for {wanted} ({key}): the "
                         f"result after {wanted} is not in it. {fix}")


def write_record(directory: Path, cfg: ExperimentConfig, mode: str, data_digests: dict) -> Path:
    """Write ``directory``'s record (atomically) before its first checkpoint."""
    return atomic_write(directory / RECORD, json.dumps(run_record(cfg, mode, data_digests), indent=1))


def data_digest(*paths: Path) -> dict:
    """``file name -> SHA-256`` of each data file (read in 1 MiB blocks)."""
    out = {}
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
        out[Path(path).name] = h.hexdigest()
    return out


def clear_run(directory: Path) -> list[str]:
    """Remove a mode directory's checkpoint, its record and its parameter file (a fresh start);
    returns the names removed."""
    removed = []
    for name in (CHECKPOINT, RECORD, "physical.npz"):
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def drop_unused_record(directory: Path) -> None:
    """Remove a record whose checkpoint was never written (a run that ended before its first)."""
    if not (directory / CHECKPOINT).exists():
        (directory / RECORD).unlink(missing_ok=True)


def _differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """``"key: saved -> now"`` for every dotted key whose value differs."""
    out = []
    for key in sorted(set(saved) | set(now), key=str):
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
