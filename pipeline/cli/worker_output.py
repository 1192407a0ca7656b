"""Local Beam workers' raw stderr, held back while a command runs and shown only for a bug.

The local runner starts its SDK workers as subprocesses that inherit the command's stderr, and a
worker prints the full traceback of a failing bundle there (besides logging it), before the runner
hands the same exception to the driver. `pipeline.cli.main` reports that exception in one line when
it is the input's or the machine's fault (a full disk) and re-raises it with its traceback when it
is a bug, so the worker's copy is noise in the first case and a duplicate in the second. While a
command runs, file descriptor 2 points at a temporary file, which the workers inherit; this
process's own stderr (`sys.stderr` and the logging handlers writing to it) keeps writing to the
terminal. `replay` shows what the workers wrote, after a failure that is not a known one.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile

MAX_REPLAY_BYTES = 64 << 10  # the tail of the workers' output shown after an unexpected failure


def _writes_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False  # a captured or in-memory stream never reaches the workers' fd


class HeldWorkerStderr:
    """`with HeldWorkerStderr() as held: ...`; after an unexpected failure, `held.replay()`."""

    def __init__(self) -> None:
        self._file = None
        self._saved_fd: int | None = None
        self._swapped: list[tuple[object, object]] = []  # (owner, old stream): sys or a handler

    def __enter__(self) -> "HeldWorkerStderr":
        try:
            sys.stderr.flush()
            self._saved_fd = os.dup(2)
        except (OSError, AttributeError, ValueError):
            return self  # no fd 2 to hold (embedded interpreter): workers write where they can
        self._file = tempfile.TemporaryFile()
        terminal = os.fdopen(os.dup(self._saved_fd), "w", buffering=1, errors="backslashreplace",
                             encoding=getattr(sys.stderr, "encoding", None) or "utf-8")
        if _writes_fd2(sys.stderr):
            self._swapped.append((sys, sys.stderr))
            sys.stderr = terminal
        for handler in logging.root.handlers:
            if isinstance(handler, logging.StreamHandler) and _writes_fd2(handler.stream):
                self._swapped.append((handler, handler.stream))
                handler.setStream(terminal)
        self._terminal = terminal
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved_fd is None:
            return
        self._terminal.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None
        for owner, old in self._swapped:
            if owner is sys:
                sys.stderr = old
            else:
                owner.setStream(old)
        self._terminal.close()

    def replay(self) -> None:
        """Write the tail of what the workers printed to stderr (call after leaving the block)."""
        if self._file is None:
            return
        size = self._file.seek(0, os.SEEK_END)
        self._file.seek(max(0, size - MAX_REPLAY_BYTES))
        data = self._file.read()
        if data:
            sys.stderr.write(data.decode("utf-8", "backslashreplace"))
            sys.stderr.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
