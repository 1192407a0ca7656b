"""The output root a run owns: one run at a time, the new set built aside, swapped in whole.

Why: build, sample and reshard must never remove a file they did not write, must never leave a
user with nothing when a rebuild crashes, and must never let two runs mix their shards. So:

    OUT/_replaymill.lock              one run at a time (flock locally; a renewed lease on gs:// / s3://)
    OUT/_replaymill-staging/          everything a run writes goes here first ('_' names are skipped
        _owner.json                   by pyarrow.dataset); `_owner.json`, written before anything
        ... the new set ...           else, proves that every file below was written by replaymill
        <seal>                        `_manifest.json` / `_reshard.json`, written after the integrity gate
        _retire.json                  during a swap: the old set's files the swap removes
    OUT/<seal> and the files it lists the finished set

What is ours: the lock, a staging directory that holds `_owner.json`, a finished set's seal and the
files that seal lists. Anything else under OUT is foreign: the run is refused and nothing is
removed. A staged set is swapped in only once its seal exists (the old set stays readable until
then); the swap is a roll-forward journal, so a crash at any point is completed by the next run
into OUT, and a staging directory without a seal (a crashed or failed run, with its
`beam-temp-*` leftovers) is removed by the next run.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from apache_beam.io.filesystems import FileSystems

from replaymill.pipeline.errors import InputError, RunFailed, first_line
from replaymill.schemas.manifest import MANIFEST_NAME, check_relative_path

LOCK_NAME = "_replaymill.lock"
STAGING_NAME = "_replaymill-staging"
OWNER_NAME = "_owner.json"
RETIRE_NAME = "_retire.json"
RESHARD_SEAL = "_reshard.json"
LEASE_SECONDS = 120.0  # an object-store lock not renewed for this long belongs to a dead run
RENEW_SECONDS = 20.0
log = logging.getLogger(__name__)


class OutputRefused(InputError):
    """The output root cannot be used as asked (the CLI prints the message as one line, exit 2)."""


class OutputExistsError(OutputRefused):
    """The output already holds a finished set and `overwrite` was not given."""


# ----- paths on any Beam filesystem ----------------------------------------------------------

def is_local(path: str) -> bool:
    return "://" not in path


def root_of(path: str) -> str:
    """A root in one canonical spelling: absolute and symlink-free locally, no trailing '/' remotely."""
    return os.path.realpath(path) if is_local(path) else path.rstrip("/")


def join(root: str, *parts: str) -> str:
    return FileSystems.join(root, *parts)


def inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or lies below it (both canonical)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def list_files(root: str) -> list[str]:
    """Every file below `root`, as paths relative to it ('/'-separated), on any Beam filesystem."""
    if is_local(root):
        out = []
        for folder, _, files in os.walk(root):
            out += [os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/") for f in files]
        return sorted(out)
    prefix = root.rstrip("/") + "/"
    matched = FileSystems.match([prefix + "**"])[0].metadata_list
    return sorted(m.path[len(prefix):] for m in matched if m.path.startswith(prefix))


def _read_json(path: str) -> object:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return json.loads(f.read())


def _write_json(path: str, value: object) -> None:
    from replaymill.shards.io import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(value, indent=2, sort_keys=True).encode("utf-8"))


# ----- what a seal lists ---------------------------------------------------------------------

def manifest_files(seal: dict) -> list[str]:
    """Files a build or sample manifest owns: its shards and its `_rejects/` files."""
    from replaymill.schemas.manifest import Manifest

    manifest = Manifest.model_validate(seal)  # validates every shard path
    rejects = [check_relative_path(p) for p in manifest.extra.get("rejects_files", [])]
    return [s.path for s in manifest.shards] + rejects


def reshard_files(seal: dict) -> list[str]:
    """Files a reshard summary owns: its parts."""
    return [check_relative_path(p) for p in seal["parts"]]


SEALS: dict[str, Callable[[dict], list[str]]] = {MANIFEST_NAME: manifest_files, RESHARD_SEAL: reshard_files}


def sealed_files(root: str, seal: str) -> list[str]:
    """The files a seal under `root` lists (relative); OutputRefused if it cannot be read as ours."""
    path = join(root, seal)
    try:
        return SEALS[seal](_read_json(path))
    except Exception as e:  # noqa: BLE001 - any unreadable or invalid seal means the same: not provably ours
        raise OutputRefused(f"{path} is not a readable replaymill {seal} ({first_line(e)}); nothing was removed") from None


# ----- the lock ------------------------------------------------------------------------------

class OutputLock:
    """One run per output root. Locally an exclusive `flock` on OUT/_replaymill.lock (released by
    the kernel when the process dies, so a killed run never leaves a stale lock). On object stores,
    which have no locks, a lease file renewed every 20 s by a thread; a lease older than 120 s
    belongs to a dead run and is taken over; a second writer in the same instant is detected by
    reading the lease back."""

    def __init__(self, root: str):
        self.root = root
        self.path = join(root, LOCK_NAME)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        try:
            if is_local(self.root):
                self._acquire_flock()
            else:
                self._acquire_lease()
        except OutputRefused:
            raise
        except OSError as e:
            raise OutputRefused(f"cannot write to output {self.root}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - any filesystem's error means the same to the user
            raise OutputRefused(f"cannot write to output {self.root}: {first_line(e)}") from None

    def _acquire_flock(self) -> None:
        import fcntl

        os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise OutputRefused(f"another replaymill run is writing to {self.root} ({holder}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def _read_lease(self) -> dict | None:
        try:
            return _read_json(self.path)
        except Exception:  # noqa: BLE001 - none, half-written or foreign: treated as expired
            return None

    def _write_lease(self) -> None:
        _write_json(self.path, {"token": self.token, "renewed_at": time.time()})

    def _acquire_lease(self) -> None:
        lease = self._read_lease()
        if lease and time.time() - float(lease.get("renewed_at", 0)) < LEASE_SECONDS:
            raise OutputRefused(f"another replaymill run is writing to {self.root} (lease {lease.get('token')}, "
                                f"renewed {time.time() - float(lease['renewed_at']):.0f} s ago); wait for it to finish")
        self._write_lease()
        time.sleep(1.0)  # a writer that raced us has written by now: the last one wins, the other refuses
        if (self._read_lease() or {}).get("token") != self.token:
            raise OutputRefused(f"another replaymill run took the lock on {self.root} at the same time")
        self._thread = threading.Thread(target=self._renew, name="replaymill-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            with contextlib.suppress(Exception):
                self._write_lease()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the file stays (removing a flock file races with the next run)
            self._fd = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if (self._read_lease() or {}).get("token") == self.token:
                with contextlib.suppress(Exception):  # a lease left behind expires by itself
                    FileSystems.delete([self.path])


# ----- the staged output ---------------------------------------------------------------------

@dataclass
class StagedOutput:
    """`with StagedOutput(out, seal, overwrite, inputs) as staged: <write into staged.staging>; staged.commit()`.

    Entering takes the lock, completes a crashed run's interrupted swap, refuses foreign files, a
    finished set without `overwrite`, and an output that is (or holds) an input; then clears an
    unsealed staging directory and creates a fresh one. `commit` swaps the sealed staged set in.
    Leaving after a failure removes the unsealed staging directory (never the finished set).
    """

    output: str
    seal: str
    overwrite: bool = False
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.seal not in SEALS:
            raise ValueError(f"unknown seal {self.seal!r}")
        self.root = os.path.abspath(self.output) if is_local(self.output) else self.output.rstrip("/")
        self.staging = join(self.root, STAGING_NAME)
        self._lock = OutputLock(self.root)
        self.committed = False
        self.removed: list[str] = []

    def __enter__(self) -> "StagedOutput":
        self._refuse_overlap()
        self._check_root(list_files(self.root))  # read-only first: a foreign directory gets not even a lock file
        self._lock.acquire()
        try:
            listing = list_files(self.root)  # again under the lock: another run may have finished meanwhile
            if recover(self.root, staged_of(listing)):
                listing = list_files(self.root)
            self._check_root(listing)
            self._clear_staging(staged_of(listing))
            _write_json(join(self.staging, OWNER_NAME), {"seal": self.seal, "owner": self._lock.token,
                                                         "created_at": time.time()})
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed:
                staged = list_files(self.staging)
                if self.seal not in staged:  # unsealed: nothing to finish, remove it; sealed: the next run swaps it in
                    _remove_staging(self.root, staged)
        finally:
            self._lock.release()

    def _refuse_overlap(self) -> None:
        root = root_of(self.root)
        for given in self.inputs:
            path = root_of(given)
            if inside(path, root):
                what = "is" if path == root else "holds"
                raise OutputRefused(f"output {self.output} {what} the input {given}; write to another directory")
            if inside(root, path):
                raise OutputRefused(f"output {self.output} lies inside the input {given}; write to another directory")

    def _check_root(self, listing: list[str]) -> None:
        """Refuse foreign files and (without `overwrite`) a finished set, from a listing of the root."""
        files = [f for f in listing if f != LOCK_NAME and not inside(f, STAGING_NAME)]
        owned = owned_files(self.root, files, staged_of(listing))
        foreign = [f for f in files if f not in owned]
        if foreign:
            raise OutputRefused(
                f"output {self.output} holds {len(foreign)} file(s) replaymill did not write (first: {foreign[0]}); "
                "nothing was removed: choose an empty or new directory")
        if self.seal in files and not self.overwrite:
            raise OutputExistsError(f"{self.output} already holds a finished shard set ({self.seal}); "
                                    "pass --overwrite to replace it")
        other = [s for s in SEALS if s in files and s != self.seal]
        if other:
            raise OutputRefused(f"output {self.output} holds a different kind of set ({other[0]}); "
                                "choose another directory")

    def _clear_staging(self, staged: list[str]) -> None:
        if staged:
            if OWNER_NAME not in staged:
                raise OutputRefused(f"{self.staging} holds files without replaymill's {OWNER_NAME}; nothing was "
                                    "removed: move them away")
            self.removed = staged
            log.info("removing %d file(s) of an earlier unfinished run in %s", len(staged), self.staging)
        _remove_staging(self.root, staged)

    def commit(self) -> None:
        """Swap the sealed staged set in (the seal must exist: it is written after the gate)."""
        swap(self.root, self.seal)
        self.committed = True


def staged_of(listing: list[str]) -> list[str]:
    """The staging directory's files (relative to it) in a listing of the root."""
    prefix = STAGING_NAME + "/"
    return [f[len(prefix):] for f in listing if f.startswith(prefix)]


def owned_files(root: str, files: list[str], staged: list[str]) -> set[str]:
    """Files in `root` (outside staging) that replaymill provably wrote: the finished set(s) their
    seals list, and, while a swap is half done, the staged set's files and the retired old ones."""
    owned: set[str] = set()
    for seal in SEALS:
        if seal in files:
            owned |= {seal, *sealed_files(root, seal)}
    staging = join(root, STAGING_NAME)
    if OWNER_NAME in staged:
        for seal in SEALS:
            if seal in staged:
                owned |= {seal, *sealed_files(staging, seal)}
        if RETIRE_NAME in staged:
            owned |= set(_read_json(join(staging, RETIRE_NAME)))
    return owned


def _remove_staging(root: str, files: list[str] | None = None) -> None:
    """Remove the staging directory: its files (the owner marker last), then the empty folders.
    `files`: the staging directory's listing, when the caller has it (object stores pay per call)."""
    staging = join(root, STAGING_NAME)
    files = list_files(staging) if files is None else files
    for batch in ([f for f in files if f != OWNER_NAME], [f for f in files if f == OWNER_NAME]):
        if batch:
            FileSystems.delete([join(staging, f) for f in batch])
    if is_local(staging) and os.path.isdir(staging):
        _prune_empty_dirs(root, [f for f, _, _ in os.walk(staging)])


def _prune_empty_dirs(root: str, folders: Iterable[str]) -> None:
    """Locally, remove the given folders below `root` and their parents below it, deepest first,
    where they are empty (a partition whose files a swap removed)."""
    todo: set[str] = set()
    for folder in folders:
        while folder != root and inside(folder, root):
            todo.add(folder)
            folder = os.path.dirname(folder)
    for folder in sorted(todo, key=lambda d: -len(d)):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def swap(root: str, seal: str) -> None:
    """Roll the sealed staged set forward into `root`; every step can be repeated after a crash.

    1. `_retire.json` records the old set's files (from the old seal) before anything is removed.
    2. The old seal goes first, so nothing claims a half-swapped root is whole.
    3. Old files the new set does not reuse are removed.
    4. The staged files are renamed into place (replacing old files of the same names).
    5. The staged seal is renamed into place last: from here on the new set is the finished set.
    6. The staging directory is removed.
    What is where is read from two listings, not a call per file (object stores pay per call).
    """
    staging = join(root, STAGING_NAME)
    listing = list_files(root)
    staged = set(staged_of(listing))
    present = {f for f in listing if not inside(f, STAGING_NAME)}
    if seal not in staged:
        raise RuntimeError(f"nothing to swap in: {join(staging, seal)} was not written")
    new = sealed_files(staging, seal)
    retire_path = join(staging, RETIRE_NAME)
    if RETIRE_NAME in staged:
        retire = [check_relative_path(f) for f in _read_json(retire_path)]
    else:
        retire = [seal, *sealed_files(root, seal)] if seal in present else []
        _write_json(retire_path, retire)
    keep = set(new)
    gone = sorted({f for f in [seal, *retire] if f in present and (f == seal or f not in keep)})
    if gone:
        FileSystems.delete([join(root, f) for f in gone])
        if is_local(root):
            _prune_empty_dirs(root, [os.path.dirname(join(root, f)) for f in gone])
    moves = [f for f in new if f in staged]
    lost = [f for f in new if f not in staged and f not in present]
    if lost:
        raise RuntimeError(f"swap into {root}: {lost[0]} is in neither the staged nor the finished set")
    if moves:
        if is_local(root):
            for f in moves:
                os.makedirs(os.path.dirname(join(root, f)), exist_ok=True)
        FileSystems.rename([join(staging, f) for f in moves], [join(root, f) for f in moves])
    FileSystems.rename([join(staging, seal)], [join(root, seal)])
    _remove_staging(root, sorted((staged - set(moves) - {seal}) | {RETIRE_NAME}))


def recover(root: str, staged: list[str]) -> bool:
    """Complete a swap a crashed run left half done (`staged`: the staging directory's listing);
    True if there was one. The caller holds the lock."""
    if OWNER_NAME not in staged:
        return False
    seal = str(_read_json(join(root, STAGING_NAME, OWNER_NAME)).get("seal"))
    if seal not in SEALS or seal not in staged:
        return False
    log.warning("completing the interrupted swap of a finished set into %s", root)
    swap(root, seal)
    return True


@contextlib.contextmanager
def staged_run(output: str, seal: str, *, overwrite: bool, inputs: Iterable[str] = ()) -> Iterator[StagedOutput]:
    """The frame of every command that writes a set: the body runs its pipeline into
    `staged.staging`; on success the sealed set is swapped in. A pipeline error that carries the
    integrity gate's line becomes `RunFailed` with that line (one line, exit 3, nothing published)."""
    from replaymill.pipeline.integrity import gate_line

    with StagedOutput(output, seal, overwrite, tuple(inputs)) as staged:
        try:
            yield staged
        except Exception as e:
            line = gate_line(e)
            if line:
                raise RunFailed(line) from None
            raise
        staged.commit()
