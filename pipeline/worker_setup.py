"""Local SDK workers live no longer than their driver (and keep quiet about a failed gate).

Why: the local multi-process runner starts each worker as `sh -c "python -m ...sdk_worker_main"`
from a thread of the driver, and nothing ends it when the driver is SIGKILLed: workers lived on
for 1-3 minutes, still writing shards into the output. Two mechanisms, both keyed by the driver's
token (pid and start time, so a reused pid is never mistaken for it) in `REPLAYMILL_DRIVER`,
which every worker inherits:

1. A watchdog process per driver (`start_watchdog`, run when a local pipeline's options are
   made): it blocks on a pipe only the driver holds; when the driver dies, the kernel closes the
   pipe and the watchdog SIGKILLs every process whose environment carries the token (the `sh`
   wrappers and the workers, however far their start-up got). Linux (`/proc`).
2. Inside each worker, a thread started when the worker imports `replaymill.pipeline` (to run its
   first replaymill DoFn) polls the driver and exits the process once it is gone (any OS).
   Beam's local runner passes no options to its workers, so `--beam_plugin` cannot carry this.

In the worker, the import also drops Beam's own printed traceback of an integrity-gate failure:
the command prints the one line that names the broken invariant.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any, TextIO

DRIVER_ENV = "REPLAYMILL_DRIVER"
POLL_SECONDS = 0.5
_HAS_PROC = os.path.isdir("/proc/self")
_watchdog_pipe: int | None = None  # the driver's end of the watchdog's pipe, open for the driver's life


def process_token(pid: int) -> str | None:
    """`pid:start time` of a live process (`pid:` where there is no /proc); None if it is gone."""
    if not _HAS_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return f"{pid}:"
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return f"{pid}:{int(stat.rsplit(b')', 1)[1].split()[19])}"


def driver_token() -> str:
    """This process's token, for the workers it starts to carry in their environment."""
    return process_token(os.getpid()) or f"{os.getpid()}:"


def start_watchdog() -> None:
    """Once per driver process: mark this process as the driver and start its watchdog."""
    global _watchdog_pipe
    token = driver_token()
    os.environ[DRIVER_ENV] = token
    if _watchdog_pipe is not None or not _HAS_PROC:
        return
    read_end, write_end = os.pipe()  # not inheritable: only this process holds the write end
    env = {k: v for k, v in os.environ.items() if k != DRIVER_ENV}
    code = f"from {__name__} import watchdog_main; watchdog_main({token!r})"
    # A session of its own: a Ctrl-C in the terminal leaves it alive to do its job.
    subprocess.Popen([sys.executable, "-c", code], stdin=read_end, env=env, start_new_session=True)
    os.close(read_end)
    _watchdog_pipe = write_end


def processes_of(token: str) -> list[int]:
    """Pids of the processes whose environment carries `token` (this driver's workers)."""
    needle = f"{DRIVER_ENV}={token}\0".encode()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in f.read() + b"\0":
                        pids.append(int(name))
            except OSError:
                continue
    return pids


def watchdog_main(token: str) -> None:
    """Wait for the driver to die (EOF on stdin), then end every worker it started."""
    sys.stdin.buffer.read()
    for pid in processes_of(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _watch(token: str) -> None:
    pid = int(token.split(":", 1)[0])
    while not threading.Event().wait(POLL_SECONDS):
        if process_token(pid) != token:
            os._exit(1)  # the driver is gone: stop now, without finishing half-written output


class _QuietGateStderr:
    """stderr without the harness's printed traceback of a gate failure (everything else passes);
    `gate` is the gate's marker (`integrity.GATE`), bound once, not imported on every write."""

    def __init__(self, stream: TextIO, gate: str):
        self._stream = stream
        self._gate = gate

    def write(self, text: str) -> int:
        return len(text) if self._gate in text else self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def start_in_worker() -> None:
    """In a local SDK worker of a replaymill driver: watch the driver, quiet the gate's traceback."""
    token = os.environ.get(DRIVER_ENV)
    if not token or not sys.argv or not sys.argv[0].endswith("sdk_worker_main.py"):
        return
    threading.Thread(target=_watch, args=(token,), name="replaymill-driver-watch", daemon=True).start()
    from replaymill.pipeline.integrity import GATE, filter_gate_failures

    filter_gate_failures()
    if not isinstance(sys.stderr, _QuietGateStderr):
        sys.stderr = _QuietGateStderr(sys.stderr, GATE)


start_in_worker()
