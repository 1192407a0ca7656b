"""The one way a `replaymill` command refuses to start or stops: one line on stderr, a known exit code.

Exit status of every command: 0 done; 2 a usage or input error, or a failure that is the data's or
the machine's fault (a full disk, a shard changed or deleted since its manifest was written), one
line `replaymill COMMAND: error: ...` (a `UsageError` of a command's flags, an `InputError` of a
library job's pre-flight, or `failure_line`); 3 the work ran and a gate failed (`audit --fail-if`, or
a job's integrity gate, `RunFailed`: the command worked; the data did not pass). An unexpected exception, a bug, keeps Python's traceback and
status 1, so no crash can ever pass for a failed gate or a refused input.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile

from replaymill.pipeline.errors import InputError, exception_chain, without_beam_step

USAGE_ERROR = 2
GATE_FAILED = 3

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded")
_DISK_FULL_PATH = re.compile(r"(?:No space left on device|Disk quota exceeded): '([^']+)'")
_KNOWN_TYPES = ("CorruptShardError", "SchemaVersionError")
_KNOWN_TEXT = re.compile(r"\b(CorruptShardError|SchemaVersionError): ([^\n]+)")


class UsageError(InputError):
    """A problem found before any work starts: a bad flag, a missing input, an unwritable output.

    `pipeline.cli.main` prints it (and every library `InputError`) as the single line
    `replaymill COMMAND: error: MESSAGE` and exits with status 2, so no subcommand carries its own
    printing and exit-code code.
    """


def failure_line(error: BaseException, places: dict[str, str]) -> str | None:
    """One line for a failure that is not a bug, found in `error`, its causes, or (for errors a
    Beam worker raised, which reach the driver as text) its message; None for anything else.

    `places` names the directories a full disk could be behind (`{"--output": path, ...}`): a
    full disk is reported with the free space of each, so the line says which one is full.
    """
    chain = exception_chain(error)
    for exc in chain:
        if type(exc).__name__ in _KNOWN_TYPES:
            return _clean(str(exc))
    for exc in chain:
        match = _KNOWN_TEXT.search(str(exc))
        if match:
            return _clean(match.group(2))
    for exc in chain:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return _disk_full(exc.filename, places)
        if _DISK_FULL_TEXT.search(str(exc)):
            found = _DISK_FULL_PATH.search(str(exc))
            return _disk_full(found.group(1) if found else None, places)
    return None


def _clean(message: str) -> str:
    return without_beam_step(message.strip().splitlines()[0] if message.strip() else message)


def _disk_full(filename: str | None, places: dict[str, str]) -> str:
    from replaymill.shards.io import TEMP_SUFFIX  # shards.io writes under a temp name first

    where = [f"{name} {path}: {_free(path)} free" for name, path in places.items() if path and "://" not in path]
    writing = f" writing {TEMP_SUFFIX.sub('', filename)}" if filename else ""
    return f"no space left on device{writing} ({'; '.join(where)})" if where else f"no space left on device{writing}"


def _free(path: str) -> str:
    """Free space of the filesystem holding `path` (or its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if free < 1024 or unit == "GB":
            return f"{free:,.0f} {unit}" if unit == "bytes" else f"{free:,.1f} {unit}"
        free /= 1024
    return "unknown"


def failure_places(args) -> dict[str, str]:
    """Where a command writes: its output (and work dir), and the temp dir Beam and pyarrow use."""
    places = {}
    for flag in ("output", "work_dir"):
        value = getattr(args, flag, None)
        if isinstance(value, str):
            places[f"--{flag.replace('_', '-')}"] = value
    places["temp dir"] = tempfile.gettempdir()
    return places
