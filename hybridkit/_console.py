"""What the command line prints around a command: errors as one line, repeated warnings folded,
interrupts as a message and the shell's exit code.

* :func:`run_command` — runs one command of ``python -m hybridkit``: an error the user can fix
  (a config value, a file, a full disk; every message of hybridkit's says what was expected and
  the fix) is ``error: <what> (Fix: <fix>)`` and exit 2; anything else is a bug: its traceback,
  a line that says so, exit 1. SIGINT / SIGTERM: one line saying what was kept, exit 130 / 143.
* :func:`describe_error` — that one line, or None for a bug.
* :func:`fold_warnings` — the first warning from each place is shown; its repeats (one
  FitWarning per hybrid cycle, say) are counted and summed up at the end.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable, Iterator

from ._signals import Interrupted, interrupts_raise

__all__ = ["run_command", "describe_error", "fold_warnings", "exit_process", "USAGE_ERROR", "BUG"]

USAGE_ERROR, BUG = 2, 1  # exit codes
_PACKAGE = Path(__file__).resolve().parent
_OS_FIXES = {
    errno.EACCES: "check the permissions there, or choose another place (--out, HYBRIDKIT_DATA)",
    errno.EPERM: "check the permissions there, or choose another place (--out, HYBRIDKIT_DATA)",
    errno.EROFS: "that file system is read-only: choose another place (--out, HYBRIDKIT_DATA)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another path",
    errno.EISDIR: "give the path of a file, not of a directory",
    errno.EEXIST: "remove it, or choose another path",
    errno.ENOSPC: "free space there, or set HYBRIDKIT_DATA / --out to a disk with room",
    errno.EFBIG: "raise the file size limit (ulimit -f), or write somewhere else",
}


def _known_errors() -> tuple[type[BaseException], ...]:
    """hybridkit's own error types: each means "the input is wrong" and its message says the fix."""
    from ._config import ConfigError
    from ._expr import ExpressionError
    from .data import DatasetFormatError, DiskFullError
    from .physics import StabilityError
    from .training import CheckpointError, DivergenceError, FitError

    return (ConfigError, ExpressionError, DatasetFormatError, DiskFullError, StabilityError, CheckpointError,
            DivergenceError, FitError)


def describe_error(exc: BaseException) -> str | None:
    """``"<Type>: <what> (Fix: <fix>)"`` for an error the user can fix, None for a bug.

    User errors: hybridkit's own types; ``OSError`` (a path, permissions, a full disk);
    ``MemoryError``; and ``ValueError`` / ``TypeError`` / ``ImportError`` raised by hybridkit's own
    checks (raised in a hybridkit module, saying what was expected or the fix). A
    ``RuntimeError`` that wraps a user error (the loss raised inside the optimiser) is that error.
    """
    if isinstance(exc, OSError):  # DiskFullError too: its message without the "[Errno 28]"
        text = _os_text(exc)
    elif isinstance(exc, _known_errors()):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = (f"out of memory ({exc or 'an allocation failed'}). Fix: smaller sizes (simulations, frames, grid, "
                "batch_size, network).")
    elif isinstance(exc, (ValueError, TypeError, ImportError)) and _raised_by_hybridkit(exc) and \
            ("Expected" in str(exc) or "Fix:" in str(exc)):
        text = str(exc)
    elif isinstance(exc, RuntimeError) and exc.__cause__ is not None and _raised_by_hybridkit(exc):
        inner = describe_error(exc.__cause__)
        return None if inner is None else inner
    else:
        return None
    what, sep, fix = text.rpartition("Fix:")
    if not sep:
        what, fix = text, "correct the value or path named above"
    return f"{type(exc).__name__}: {what.strip().rstrip('.')} (Fix: {fix.strip()})"


def _os_text(exc: OSError) -> str:
    message = exc.strerror if exc.strerror else str(exc)
    if "Fix:" in message:
        return message
    where = f": {exc.filename}" if exc.filename is not None else ""
    fix = _OS_FIXES.get(exc.errno, "check the path and its permissions")
    return f"{message}{where}. Fix: {fix}."


def _raised_by_hybridkit(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in the hybridkit package."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    try:
        return Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def fold_warnings(write: Callable[[str], None] | None = None) -> Iterator[dict]:
    """Show the first warning from each place (category, file, line) and count the repeats; on
    leaving, one line per repeated warning says how many more came. Yields the counts."""
    write = write or _write
    counts: dict = {}

    def show(message, category, filename, lineno, file=None, line=None):
        key = (category.__name__, filename, lineno)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            write(f"warning: {category.__name__}: {message}")

    with warnings.catch_warnings():
        warnings.filterwarnings("always", module=r"hybridkit(\.|$)")  # count every repeat, not only new texts
        warnings.showwarning = show
        try:
            yield counts
        finally:
            for (name, filename, lineno), n in counts.items():
                if n > 1:
                    write(f"warning: {name} repeated {n - 1} more time(s) ({n} in all, from "
                          f"{Path(filename).name}:{lineno}); the first is shown above")


def _write(text: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)  # above any progress bar
    except ImportError:
        print(text, file=sys.stderr)


_interrupted = False  # whether a command of this process ended by SIGINT / SIGTERM


def exit_process(code: int) -> None:
    """End the process with ``code``. After an interrupt, at once: the files on disk are complete
    (every write is atomic) and the interpreter's teardown with torch loaded took 1 to 3 s on a
    busy 2-core machine, which a user who pressed Ctrl-C should not wait for."""
    if _interrupted:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def run_command(command: Callable[[], int | None]) -> int:
    """Run ``command`` the way ``python -m hybridkit`` does (see the module docstring); returns
    the exit code."""
    with interrupts_raise(), fold_warnings():
        try:
            return int(command() or 0)
        except KeyboardInterrupt as e:
            global _interrupted
            _interrupted = True
            name = e.name if isinstance(e, Interrupted) else "SIGINT"
            notes = "; ".join(getattr(e, "__notes__", ())) or "stopped"
            print(f"interrupted by {name}: {notes}", file=sys.stderr, flush=True)
            return e.exit_code if isinstance(e, Interrupted) else 130
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001  (sorted into the user's errors and bugs)
            text = describe_error(e)
            if text is not None:
                print(f"error: {text}", file=sys.stderr, flush=True)
                return USAGE_ERROR
            traceback.print_exc()
            print(f"error: this is a bug in hybridkit, not a problem with your input (an unexpected "
                  f"{type(e).__name__}). Please report it with the traceback above.", file=sys.stderr, flush=True)
            return BUG
