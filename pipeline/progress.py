"""Progress of a running Beam job: workers count what they did, the driver shows bars with an ETA.

Why a channel of our own. A user needs to see a long job move while it runs, but what Beam offers
mid-run depends on the runner:

- DirectRunner (Beam's FnApiRunner, `multi_processing` or `in_memory`): `Pipeline.run()` blocks
  until the job ends and metrics arrive only with the final result: nothing to poll.
- PortableRunner against Beam's local job service (`deploy.local_cluster`): `run()` returns at
  once, but the service answers `GetJobMetrics` only after the job finished (empty before), and
  the result object caches its first answer.
- Dataflow (and job servers that report metrics while running): counters are live.

So workers report twice, cheaply: every `FLUSH_S` seconds each reporter appends its new counts as
one JSON line to a *progress channel* (an append-only file on the driver's machine: local and
loopback-portable workers share its filesystem; one short `O_APPEND` write is atomic), and adds the
same deltas to Beam counters in the `replaymill.progress` namespace. The driver tails the channel
and, for runners whose `run()` returns before the end, also polls the counters; each bar takes the
larger of the two. A worker that cannot reach the channel (a remote machine) just skips it:
progress is best effort and never affects the job's output. Counts may include retried bundles,
so the bars are progress, not accounting (the manifest's funnel is the accounting).

Input bytes are counted as the readers consume them (`metered` wraps the raw file object), so a
huge file with no documents at all (a gzip of blank lines) still moves its bar, and the total is
known up front from the input listing: that is what the ETA is computed from.

Quiet when stdout is not a terminal (CI logs, pipes): no bars, only the command's final lines.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

NAMESPACE = "replaymill.progress"
FLUSH_S = 0.5           # a reporter writes its deltas at most this often
POLL_S = 0.25           # the driver reads the channel this often
METRICS_POLL_S = 5.0    # and asks a remote runner for counters this often


# ----- worker side -----------------------------------------------------------------------------

class ProgressReporter:
    """Counts events in a DoFn and sends the deltas to the channel and to Beam counters.

    Created on the driver while the graph is built (it captures the channel then, see
    `reporting`), pickled with its DoFn, used on workers: `add("read.docs")`, and `flush()` from
    `finish_bundle` so the last counts of a bundle are not held back.
    """

    def __init__(self, channel: str | None, metrics: bool):
        self.channel = channel
        self.metrics = metrics
        self._pending: dict[str, int] = {}
        self._last = 0.0
        self._counters: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"channel": self.channel, "metrics": self.metrics}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["channel"], state["metrics"])

    @property
    def active(self) -> bool:
        return bool(self.channel or self.metrics)

    def add(self, key: str, n: int = 1) -> None:
        if not n or not self.active:
            return
        self._pending[key] = self._pending.get(key, 0) + n
        now = time.monotonic()
        if now - self._last >= FLUSH_S:
            self._last = now
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        if self.metrics:
            from apache_beam.metrics import Metrics

            for key, n in pending.items():
                counter = self._counters.get(key)
                if counter is None:
                    counter = self._counters[key] = Metrics.counter(NAMESPACE, key)
                counter.inc(n)
        if self.channel:
            line = (json.dumps(pending, separators=(",", ":")) + "\n").encode("utf-8")
            try:
                fd = os.open(self.channel, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError:
                self.channel = None  # not on the driver's machine: counters only from now on


_NO_CHANNEL: tuple[str | None, bool] = (None, False)
_construction = _NO_CHANNEL


@contextlib.contextmanager
def reporting(channel: str | None, metrics: bool = False) -> Iterator[None]:
    """While building a pipeline graph: DoFns created inside report to `channel` (and to Beam
    counters when `metrics`). Outside, `reporter()` returns an inactive reporter (tests, library use)."""
    global _construction
    previous, _construction = _construction, (channel, metrics)
    try:
        yield
    finally:
        _construction = previous


def reporter() -> ProgressReporter:
    """A reporter bound to the channel of the graph being built (inactive if none)."""
    return ProgressReporter(*_construction)


class _Meter(threading.local):
    target: tuple[ProgressReporter, str, int | None] | None = None


_meter = _Meter()
# Reads from a compressed stream are cut to this size, so the bytes bar moves smoothly even when a
# decompressor asks for 128 kB at once and that is the whole file (a gzip of 100 MB of blank lines
# is ~100 kB): 1 kB of input then stands for at most ~1 MB of output.
COMPRESSED_READ = 1024


@contextlib.contextmanager
def metering(progress: ProgressReporter, key: str, compressed: bool = False) -> Iterator[None]:
    """Files opened through `metered` in this thread meanwhile count their bytes read under `key`;
    `compressed`: the file feeds a stream decompressor, which accepts short reads (Parquet and
    Arrow readers do not, so their reads are never cut)."""
    target = (progress, key, COMPRESSED_READ if compressed else None) if progress.active else None
    previous, _meter.target = _meter.target, target
    try:
        yield
    finally:
        _meter.target = previous


class _MeteredFile:
    """A file object that reports how many bytes were read from it (everything else passes through)."""

    def __init__(self, raw: Any, progress: ProgressReporter, key: str, max_read: int | None):
        self._raw, self._progress, self._key, self._max = raw, progress, key, max_read

    def _size(self, size: int | None) -> int | None:
        if self._max and (size is None or size < 0 or size > self._max):
            return self._max
        return size

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(self._size(size))
        self._progress.add(self._key, len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._raw.read1(self._size(size))
        self._progress.add(self._key, len(data))
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._raw.readline(*args)
        self._progress.add(self._key, len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        if self._max:
            buffer = memoryview(buffer)[: self._max]
        n = self._raw.readinto(buffer)
        self._progress.add(self._key, n or 0)
        return n

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __enter__(self) -> "_MeteredFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def metered(raw: Any) -> Any:
    """`raw` itself, or a counting wrapper when the calling thread is `metering`."""
    target = _meter.target
    return raw if target is None else _MeteredFile(raw, *target)


# ----- driver side -----------------------------------------------------------------------------

@dataclass
class Task:
    """One bar: `key` is the counter it follows, `total` its known end (None: a count, no ETA),
    `unit` "bytes" for sizes (shown in MB) or a noun; `detail` other counters shown beside it."""

    key: str
    label: str
    total: int | None = None
    unit: str = "docs"
    detail: dict[str, str] = field(default_factory=dict)  # counter key -> noun


def _fmt(n: float, unit: str) -> str:
    if unit == "bytes":
        for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if n >= scale:
                return f"{n / scale:.1f} {suffix}"
        return f"{n:.0f} B"
    return f"{int(n):,} {unit}"


class ProgressView:
    """Bars for a job's tasks, fed from a channel file and/or a runner's live counters.

    `enabled=None` means "when stdout is a terminal". Use as a context manager around the run;
    `channel` is the file workers append to (created in a private temp directory, removed after).
    """

    def __init__(self, tasks: list[Task], *, enabled: bool | None = None, console: Any = None):
        self.tasks = tasks
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.counts: dict[str, int] = {}
        self._metric_counts: dict[str, int] = {}
        self._dir = tempfile.mkdtemp(prefix="replaymill-progress-") if self.enabled else None
        self.channel = os.path.join(self._dir, "channel.jsonl") if self._dir else None
        self._offset = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._console = console
        self._progress = None
        self._ids: dict[str, Any] = {}

    # -- reading counts --
    def poll(self) -> dict[str, int]:
        """Fold new channel lines into `counts` (complete lines only) and return the merged counts."""
        if self.channel and os.path.exists(self.channel):
            with open(self.channel, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            for line in data[:end].splitlines():
                try:
                    for key, n in json.loads(line).items():
                        self.counts[key] = self.counts.get(key, 0) + int(n)
                except (ValueError, AttributeError):
                    continue  # a line no reporter wrote; never fatal
        return {k: max(self.counts.get(k, 0), self._metric_counts.get(k, 0))
                for k in set(self.counts) | set(self._metric_counts)}

    def poll_metrics(self, result: Any) -> None:
        """Counters of a running job, where the runner reports them before the end (see module doc)."""
        from apache_beam.metrics.metric import MetricsFilter

        try:
            if hasattr(result, "_metrics"):
                result._metrics = None  # PortableRunner's result caches its first (mid-run: empty) answer
            counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
        except Exception:  # noqa: BLE001 - a runner without live metrics: the channel is all we have
            return
        totals: dict[str, int] = {}
        for c in counters:
            value = c.attempted if c.attempted is not None else c.committed
            totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
        self._metric_counts = totals

    # -- display --
    def __enter__(self) -> "ProgressView":
        if not self.enabled:
            return self
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(bar_width=30), TaskProgressColumn(),
            TextColumn("{task.fields[amount]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self._console, transient=False, refresh_per_second=4,
        )
        self._progress.start()
        for t in self.tasks:
            self._ids[t.key] = self._progress.add_task(t.label, total=t.total, amount="", start=True)
        self._thread = threading.Thread(target=self._loop, name="replaymill-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.refresh()

    def refresh(self, final: bool = False) -> None:
        if self._progress is None:
            return
        counts = self.poll()
        for t in self.tasks:
            done = counts.get(t.key, 0)
            total = t.total
            if final:
                total = done if total is None or done < total else total
                done = total
            elif total is not None:
                done = min(done, total)  # a JSONL range reads a little past its end; never show >100%
            parts = [_fmt(done, t.unit) + (f"/{_fmt(total, t.unit)}" if t.total else "")]
            parts += [_fmt(counts.get(k, 0), noun) for k, noun in t.detail.items()]
            self._progress.update(self._ids[t.key], completed=done, total=total, amount="  ".join(parts))

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._progress is not None:
            self.refresh(final=exc_type is None)
            self._progress.stop()
        self.poll()  # `counts` keeps the workers' final tallies after the channel is gone
        if self._dir:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)

    # -- running --
    def run(self, pipeline: Any) -> Any:
        """Run `pipeline` to the end under the bars; raises as `with beam.Pipeline()` does on failure."""
        with self:
            result = pipeline.run()  # blocks on the FnApiRunner; returns at once on remote runners
            self._watch(result)
            result.wait_until_finish()
        return result

    def _watch(self, result: Any) -> None:
        from apache_beam.runners.runner import PipelineState

        if not self.enabled:
            return
        while True:
            try:
                state = result.state
            except Exception:  # noqa: BLE001 - a result without a live state: just wait for it
                return
            if PipelineState.is_terminal(state):
                return
            self.poll_metrics(result)
            time.sleep(METRICS_POLL_S)


def graph_reporting(view: ProgressView, runner: str) -> contextlib.AbstractContextManager:
    """`with graph_reporting(view, args.runner): build(p, ...)`: DoFns built inside report to the
    view's channel, and to Beam counters where the runner can show them mid-run (not the FnApiRunner)."""
    from replaymill.pipeline.options import LOCAL_RUNNERS

    if not view.enabled:
        return reporting(None, False)
    return reporting(view.channel, metrics=runner not in LOCAL_RUNNERS)
