"""A Beam runner on dask.distributed that gives the same output as the DirectRunner.

Beam's own `apache_beam.runners.dask.dask_runner.DaskRunner` (2.77) translates a pipeline into
dask bags, but on replaymill's graphs it returns wrong results without an error (a 10-document
build reported `read 20, dropped unknown 10, kept 0`). The reasons, all in its
`transform_evaluator.py` and `dask_runner.py`:

1. Multi-output ParDos: bags are keyed by the producing *transform*, not by PCollection, so every
   output of `with_outputs(...)` receives the elements of every tag (documents are counted as
   reader rejects, rejects flow on as documents).
2. `finish_bundle` outputs are dropped: a bundle's results are collected before
   `invoke_finish_bundle`, so `BatchElements` (which flushes its last batch there) loses every
   document of a partition smaller than one batch.
3. Side inputs are recomputed inside every consuming task: each calls `list(bag)` on the side
   input's whole upstream graph, re-running its DoFns (and their writes) once per partition.
4. Only the last visited transform's bag is computed; branches not upstream of it never run.
5. `Reshuffle` is an identity and `GroupByKey` keeps its input's partition count, so a build of a
   few input files runs in one partition, on one worker, however many workers there are.
6. Counters are never collected (`metrics()` raises NotImplementedError).

This module keeps Beam's `DaskOptions` (`--dask_client_address`, `--dask_npartitions`, ...) and its
Create/Flatten/Read/Reshuffle overrides, and replaces the translation with a plain dask task graph
in which a PCollection is a list of partition keys:

* ParDo: one task per partition runs a bundle with Beam's own `DoFnRunner` (setup once per DoFn
  instance, kept per worker process; start; process; finish, whose outputs are kept), in a metrics
  scope; a multi-output ParDo returns `(tag, value)` pairs that one small task per output selects.
* Side inputs: one task gathers the side PCollection; every bundle of the consumer depends on it.
* GroupByKey: keys are encoded with Beam's deterministic key coder (as a portable runner does),
  hashed into `--dask_npartitions` buckets (default: the cluster's thread count), moved by a task
  shuffle (one stage up to 48 partitions, two beyond) and grouped by encoded key. Reshuffle
  spreads elements round-robin the same way.
* Flatten costs nothing: its partitions are its inputs' partitions.
* A chain of per-partition steps whose links feed nothing else runs as one task (as a Beam runner
  fuses a stage), and the output partitions of roots and shuffles prefer worker thread j of the
  cluster, round-robin, so work spreads even when its inputs are a few tiny work items.
* Read (a bounded source, e.g. ReadFromText): split on the driver, one task per bundle.
* The run waits on every PCollection nothing consumes, so no branch is skipped; counters are
  collected from the workers when asked (`result.metrics()`, while running or after).

What this cannot run exactly (windowing other than global, triggers, stateful or splittable DoFns,
batched DoFns, unbounded sources, other runner primitives, keys without a deterministic coder) is
refused before anything runs, in one line naming the transform.
"""
from __future__ import annotations

import hashlib
import math
import operator
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import coders, typehints
from apache_beam.internal import pickler
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.iobase import BoundedSource
from apache_beam.metrics.execution import MetricsContainer
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnRunner, DoFnSignature, Receiver
from apache_beam.runners.dask.dask_runner import DaskOptions
from apache_beam.runners.dask.dask_runner import DaskRunner as BeamDaskRunner
from apache_beam.runners.dask.overrides import (
    _Create,
    _Flatten,
    _Read,
    _Reshuffle,
    dask_overrides,
)
from apache_beam.runners.direct.direct_metrics import DirectMetrics
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.runners.worker import statesampler
from apache_beam.transforms.core import Impulse, Windowing
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.trigger import DefaultTrigger
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.counters import CounterFactory

from replaymill.pipeline.errors import InputError

__all__ = ["DaskOptions", "DaskRunner", "UnsupportedOnDask", "check_supported"]

_GLOBAL = GlobalWindows()
BEAM_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"  # Beam's own: never used by name
WAIT_FOR_WORKERS_S = 600
SINGLE_STAGE_MAX = 48  # partitions up to which a shuffle has one stage (inputs x partitions getitems)


class UnsupportedOnDask(InputError):
    """The pipeline uses something this translation cannot run exactly; raised before anything runs."""


# ----- the pipeline, made of primitives this module translates -----------------------------------

@typehints.with_input_types(tuple[typehints.Any, typehints.Any])
class _GroupByKey(beam.PTransform):
    """GroupByKey as one primitive (global window only): a dask task shuffle, values in a list."""

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return beam.pvalue.PCollection.from_(pcoll)

    def infer_output_type(self, input_type: Any) -> Any:
        key_type, value_type = typehints.trivial_inference.key_value_types(input_type)
        return typehints.KV[key_type, typehints.Iterable[value_type]]


class _ReadSource(_Read):
    """Beam's Read placeholder with the global windowing its output has (Beam's own lacks it)."""

    def get_windowing(self, inputs: Any) -> Windowing:
        return Windowing(GlobalWindows())


class _ReadOverride(PTransformOverride):
    def matches(self, applied: AppliedPTransform) -> bool:
        return type(applied.transform) is beam.io.Read

    def get_replacement_transform_for_applied_ptransform(self, applied: AppliedPTransform) -> beam.PTransform:
        return _ReadSource(applied.transform.source)


class _GroupByKeyOverride(PTransformOverride):
    def matches(self, applied: AppliedPTransform) -> bool:
        return type(applied.transform) is beam.GroupByKey

    def get_replacement_transform_for_applied_ptransform(self, applied: AppliedPTransform) -> beam.PTransform:
        return _GroupByKey()


def overrides() -> list[PTransformOverride]:
    """Ours first (GroupByKey as one primitive, Read with its windowing), then Beam's (Create,
    Reshuffle, Flatten)."""
    return [_GroupByKeyOverride(), _ReadOverride(), *dask_overrides()]


def _is_global(windowing: Windowing) -> bool:
    return isinstance(windowing.windowfn, GlobalWindows) and isinstance(windowing.triggerfn, DefaultTrigger)


def key_coder(node: AppliedPTransform) -> coders.Coder:
    """The deterministic coder of a GroupByKey's keys; ValueError where Beam has none for the type."""
    (pcoll,) = node.main_inputs.values()
    key_type, _ = typehints.trivial_inference.key_value_types(pcoll.element_type)
    return coders.registry.get_coder(key_type).as_deterministic_coder(node.full_label)


def _refusal(node: AppliedPTransform) -> str | None:
    """Why `node` (a leaf of the overridden pipeline) cannot run here exactly, or None."""
    t = node.transform
    what = f"{node.full_label!r} ({type(t).__name__})"
    if isinstance(t, _Read):  # its output is always in the global window
        return None if isinstance(t.source, BoundedSource) else f"{what} reads an unbounded source"
    if isinstance(t, beam.ParDo):
        sig = DoFnSignature(t.fn)
        if sig.is_stateful_dofn() or sig.has_timers():
            return f"{what} is a stateful DoFn or uses timers"
        if sig.is_splittable_dofn():
            return f"{what} is a splittable DoFn"
        if t.fn._process_batch_defined or getattr(sig.process_method.method_value, "_beam_yields_batches", False):
            return f"{what} processes or yields batches (process_batch)"
    elif type(t) not in (_Create, _Flatten, _Reshuffle, _GroupByKey, Impulse):
        return f"{what} is a runner primitive this translation does not know"
    for pcoll in node.outputs.values():  # WindowInto (a ParDo) is accepted only into the global window
        if not pcoll.is_bounded:
            return f"{what} produces an unbounded PCollection; only batch pipelines run on Dask"
        if not _is_global(pcoll.windowing):
            return f"{what} is not in the global window with the default trigger"
    if type(t) is _GroupByKey:
        try:
            key_coder(node)
        except ValueError as e:
            return f"{what} has keys without a deterministic coder ({e})"
    return None


class _Check(PipelineVisitor):
    def __init__(self) -> None:
        self.problem: str | None = None

    def visit_transform(self, node: AppliedPTransform) -> None:
        if self.problem is None:
            self.problem = _refusal(node)


def check_supported(pipeline: beam.Pipeline) -> None:
    """Apply this runner's overrides, then refuse in one line the first transform it cannot run."""
    pipeline.replace_all(overrides())
    check = _Check()
    pipeline.visit(check)
    if check.problem:
        raise UnsupportedOnDask(f"the Dask runner cannot run this pipeline: {check.problem}")


# ----- tasks, as run on the workers --------------------------------------------------------------

@dataclass(frozen=True)
class _ParDoSpec:
    """Everything a worker needs to run one ParDo's bundles (pickled once, with Beam's pickler)."""

    step: str
    fn: beam.DoFn
    args: tuple
    kwargs: dict
    side_views: list[tuple[type, dict]]
    tags: tuple  # output tags; (None,) for a single-output ParDo
    options: PipelineOptions


class _Collect(Receiver):
    """Collects one output's values (the window is always the global one, so only values travel)."""

    def __init__(self, tag: str | None, out: list, tagged: bool):
        self.tag, self.out, self.tagged = tag, out, tagged

    def receive(self, windowed_value: Any) -> None:
        self.out.append((self.tag, windowed_value.value) if self.tagged else windowed_value.value)


class _Receivers(dict):
    """Tag -> receiver; output to a tag the ParDo did not declare is an error, never a silent drop."""

    def __init__(self, spec: _ParDoSpec, out: list):
        super().__init__({tag: _Collect(tag, out, len(spec.tags) > 1) for tag in spec.tags})
        self.step = spec.step

    def __missing__(self, tag: str | None) -> _Collect:
        raise ValueError(f"{self.step}: output to undeclared tag {tag!r}")


class _RunState:
    """What one run keeps in a worker process: its specs (unpickled once), its set-up DoFn
    instances between bundles, and each bundle's counters, until the driver ends the run."""

    def __init__(self, options: PipelineOptions):
        # As a Beam SDK worker does at start-up: s3:// endpoints, GCS project, ... for FileSystems.
        FileSystems.set_options(options)
        self.specs: dict[str, _ParDoSpec] = {}
        self.idle: dict[str, list[beam.DoFn]] = {}
        self.metrics: dict[str, Any] = {}  # task key -> that bundle's MetricUpdates (a retry replaces it)


_lock = threading.Lock()
_runs: dict[str, _RunState] = {}


def _run_state(run_id: str, options: PipelineOptions) -> _RunState:
    """Under `_lock`."""
    state = _runs.get(run_id)
    if state is None:
        state = _runs[run_id] = _RunState(options)
    return state


def _read_bundle(run_id: str, payload: bytes) -> list:
    """One bundle of a split bounded source (`beam.io.Read`, e.g. ReadFromText)."""
    bundle, options = pickler.loads(payload)
    with _lock:
        _run_state(run_id, options)
    tracker = bundle.source.get_range_tracker(bundle.start_position, bundle.stop_position)
    return list(bundle.source.read(tracker))


def _checkout(run_id: str, digest: str, payload: bytes) -> tuple[_RunState, _ParDoSpec, beam.DoFn, bool]:
    """This run's state, the ParDo's spec, and a DoFn instance for one bundle: a set-up one from
    this process's pool, else a fresh copy (True: it still needs setup). The first bundle in a
    process takes the copy just unpickled with the spec (nothing else reads `spec.fn`), so the
    payload is unpickled once there, not twice."""
    first = None
    with _lock:
        state = _runs.get(run_id)
        spec = state.specs.get(digest) if state else None
        if spec is None:
            spec = pickler.loads(payload)
            state = _run_state(run_id, spec.options)
            state.specs[digest] = spec
            first = spec.fn
        pool = state.idle.setdefault(digest, [])
        if pool:
            return state, spec, pool.pop(), False
    return state, spec, pickler.loads(payload).fn if first is None else first, True


def run_bundle(elements: Iterable[Any], task: str, run_id: str, digest: str, payload: bytes, *side_values: list) -> list:
    """One ParDo over one partition (one bundle): the values of a single-output ParDo, or
    `(tag, value)` pairs. The bundle's counters stay on this worker under the task's key until the
    driver collects them."""
    state, spec, fn, fresh = _checkout(run_id, digest, payload)
    out: list = []
    sides = [SideInputMap(view, options, [_GLOBAL.windowed_value(v) for v in values])
             for (view, options), values in zip(spec.side_views, side_values)]
    runner = DoFnRunner(fn, spec.args, spec.kwargs, sides, Windowing(_GLOBAL), _Receivers(spec, out), step_name=spec.step)
    sampler = statesampler.StateSampler(spec.step, CounterFactory())
    statesampler.set_current_tracker(sampler)
    container = MetricsContainer(spec.step)
    try:
        with sampler.scoped_state(spec.step, "process", metrics_container=container):
            if fresh:
                runner.setup()
            runner.start()
            for element in elements:
                runner.process(_GLOBAL.windowed_value(element))
            runner.finish()
    finally:
        statesampler.set_current_tracker(None)
    with _lock:
        state.idle[digest].append(fn)
        state.metrics[task] = container.get_cumulative()
    return out


def _worker_metrics(run_id: str) -> list:
    """Runs on every worker (`Client.run`) while a run is going: its per-bundle metric updates."""
    with _lock:
        state = _runs.get(run_id)
        return list(state.metrics.values()) if state else []


def _end_run(run_id: str) -> list:
    """Runs on every worker when a run ends (done or failed): its metric updates; its DoFns torn
    down (best effort, as Beam's teardown) and everything it kept dropped."""
    with _lock:
        state = _runs.pop(run_id, None)
    if state is None:
        return []
    for fns in state.idle.values():
        for fn in fns:
            try:
                fn.teardown()
            except Exception:  # noqa: BLE001 - teardown is best effort in Beam too
                pass
    return list(state.metrics.values())


def _select(tagged: list[tuple], tag: Any) -> list:
    return [value for t, value in tagged if t == tag]


def _gather(*partitions: list) -> list:
    return [x for part in partitions for x in part]


def _by_position(partition: list, parts: int, offset: int) -> list[tuple[int, Any]]:
    """Reshuffle: (target partition, element), round-robin from `offset`."""
    return [((offset + i) % parts, x) for i, x in enumerate(partition)]


def _by_key(partition: list, parts: int, coder: coders.Coder) -> list[tuple[int, tuple]]:
    """GroupByKey: (target partition, (encoded key, key, value)); the target is a hash of Beam's
    deterministic encoding of the key, the same in every process (unlike Python's `hash`)."""
    out = []
    for key, value in partition:
        enc = coder.encode(key)
        out.append((int.from_bytes(hashlib.blake2b(enc, digest_size=8).digest(), "big") % parts, (enc, key, value)))
    return out


def _split(routed: list[tuple[int, Any]], buckets: int, div: int) -> list[list]:
    """(target, item) pairs into `buckets` lists by one digit of the target: (target // div) % buckets."""
    out: list[list] = [[] for _ in range(buckets)]
    for pair in routed:
        out[(pair[0] // div) % buckets].append(pair)
    return out


def _route_split(partition: list, route: Any, route_args: tuple, buckets: int, div: int) -> list[list]:
    return _split(route(partition, *route_args), buckets, div)


def _items(*pieces: list) -> list:
    return [item for piece in pieces for _, item in piece]


def _group(*pieces: list) -> list[tuple[Any, list]]:
    groups: dict[bytes, tuple[Any, list]] = {}
    for piece in pieces:
        for _, (enc, key, value) in piece:
            groups.setdefault(enc, (key, []))[1].append(value)
    return list(groups.values())


def _done(*_: Any) -> None:
    return None


def _lit(x: Any) -> tuple:
    """A value in the task graph that dask must not read as a task or a key."""
    from dask.core import literal

    return (literal(x),)


# ----- translation --------------------------------------------------------------------------------

class _Translate(PipelineVisitor):
    """Builds the task graph: `parts[pcoll]` is the list of that PCollection's partition keys."""

    def __init__(self, run_id: str, partitions: int, options: PipelineOptions):
        self.run_id = run_id
        self.partitions = partitions
        self.options = options
        self.graph: dict[Any, Any] = {}
        self.parts: dict[beam.PCollection, list[Any]] = {}
        self.consumed: set[beam.PCollection] = set()
        # partition key -> its index: partition j of every PCollection prefers worker thread j
        self.place: dict[Any, int] = {}
        self._n = 0

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{what}-{self._n}-{self.run_id[:8]}"

    def final(self) -> str:
        """One task that depends on every partition nothing consumes, through tasks that drop them."""
        leaves = [key for pcoll, keys in self.parts.items() if pcoll not in self.consumed for key in keys]
        done = self._name("done")
        self.graph[done] = (_done, *leaves)
        return done

    def visit_transform(self, node: AppliedPTransform) -> None:
        t = node.transform
        main = [p for p in node.main_inputs.values() if isinstance(p, beam.PCollection)]
        self.consumed.update(main)
        self.consumed.update(si.pvalue for si in node.side_inputs)
        inputs = [self.parts[p] for p in main]
        name = self._name(node.full_label)
        if type(t) is _Create:
            values = list(t.values)
            n = max(1, min(len(values), self.partitions))
            keys = [(name, i) for i in range(n)]
            self.place.update((key, i) for i, key in enumerate(keys))
            for i, key in enumerate(keys):
                self.graph[key] = _lit(values[i * len(values) // n:(i + 1) * len(values) // n])
        elif isinstance(t, _Read):
            keys = self._read(name, t.source)
        elif type(t) is Impulse:
            keys = [(name, 0)]
            self.graph[keys[0]] = _lit([b""])
        elif type(t) is _Flatten:
            keys = [key for keys_in in inputs for key in keys_in]
        elif isinstance(t, beam.WindowInto):  # into the global window: check_supported refused others
            keys = inputs[0]
        elif type(t) is _Reshuffle:
            keys = self._shuffle(name, inputs[0], _by_position, lambda i: (self.partitions, i), _items)
        elif type(t) is _GroupByKey:
            coder = key_coder(node)
            keys = self._shuffle(name, inputs[0], _by_key, lambda i: (self.partitions, coder), _group)
        elif isinstance(t, beam.ParDo):
            self._pardo(node, name, inputs[0])
            return
        else:  # check_supported refused it already
            raise UnsupportedOnDask(f"the Dask runner cannot run {node.full_label!r} ({type(t).__name__})")
        (pcoll,) = node.outputs.values()
        self.parts[pcoll] = keys

    def fuse_chains(self) -> None:
        """A task over one partition (a ParDo bundle, a tag selection, a shuffle's split) whose input
        partition feeds nothing else takes the producer's task in as a nested task, as a Beam
        runner fuses a chain of steps into one stage: one scheduler round trip per chain, not per
        step. The fused task keeps the placement of the partition it reads."""
        from dask.core import get_dependencies

        dependents: dict[Any, int] = {}
        for key in self.graph:
            for dep in get_dependencies(self.graph, key):
                dependents[dep] = dependents.get(dep, 0) + 1
        consumers = (run_bundle, _select, _route_split)
        producers = (run_bundle, _select, _items, _group)
        for key in list(self.graph):
            task = self.graph[key]
            if not (isinstance(task, tuple) and task[0] in consumers):
                continue
            source = task[1]
            producer = self.graph.get(source) if isinstance(source, (str, tuple)) else None
            if isinstance(producer, tuple) and producer[0] in producers and dependents.get(source) == 1:
                self.graph[key] = (task[0], producer, *task[2:])
                del self.graph[source]
                if source in self.place:
                    self.place.setdefault(key, self.place.pop(source))

    def placed_graph(self, workers: dict[str, int]) -> Any:
        """The graph with partition j of every PCollection (and the split of it) preferring the
        j-th worker thread, round-robin over the workers (`allow_other_workers`), as a Beam runner
        keeps a bundle's stage on one worker. Left to itself, dask's scheduler queued both
        partitions of the costly language-ID step on one of two workers (it estimates an unknown
        task at 0.5 s) and ran them one after the other while the other worker sat idle; and it
        keeps the successors of a few tiny work items where those are."""
        from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

        slots = [w for round_ in range(max(workers.values(), default=1))
                 for w in sorted(workers) if workers[w] > round_] or [None]
        placed: dict[str, dict[Any, Any]] = {}
        placed_keys: set[Any] = set()
        for key, index in self.place.items():
            worker = slots[index % len(slots)]
            if worker is not None:
                placed.setdefault(worker, {})[key] = self.graph[key]
                placed_keys.add(key)
        rest = {k: v for k, v in self.graph.items() if k not in placed_keys}
        layers = {"graph": MaterializedLayer(rest)}
        for i, (worker, tasks) in enumerate(sorted(placed.items())):
            layers[f"on-worker-{i}"] = MaterializedLayer(tasks, annotations={"workers": [worker], "allow_other_workers": True})
        return HighLevelGraph(layers, {name: set() for name in layers})

    def _read(self, name: str, source: BoundedSource) -> list[Any]:
        """The source split on the driver into about `partitions` bundles (at least 1 MB each)."""
        size = source.estimate_size() or 0
        bundles = list(source.split(desired_bundle_size=max(1 << 20, size // self.partitions)))
        keys = [(name, i) for i in range(len(bundles))]
        self.place.update((key, i) for i, key in enumerate(keys))
        for key, bundle in zip(keys, bundles):
            self.graph[key] = (_read_bundle, _lit(self.run_id), _lit(pickler.dumps((bundle, self.options))))
        if not keys:
            keys = [(name, 0)]
            self.graph[keys[0]] = _lit([])
        return keys

    def _shuffle(self, name: str, keys_in: list[Any], route: Any, route_args: Any, join: Any) -> list[Any]:
        """`partitions` output partitions; element e goes to the one `route` names for it.

        A task shuffle: an input partition is split into buckets, and one small getitem task per
        (input, bucket) lets only that bucket move to the partition that joins it. In one stage that
        is inputs x partitions getitems, fine up to SINGLE_STAGE_MAX partitions; beyond, two stages
        (as dask's own task shuffle): with k = ceil(sqrt(partitions)) and target t = a*k + b, stage 1
        sends t's elements to intermediate partition (a, input % k), stage 2 from the k
        intermediates (a, *) to output t by b, so no partition ever holds more than its share and
        the task count grows as partitions x k, not partitions squared."""
        n = self.partitions
        if n <= SINGLE_STAGE_MAX:
            split = [(_route_split, key, route, _lit(route_args(i)), n, 1) for i, key in enumerate(keys_in)]
            pieces = self._buckets(f"{name}/s", split, n, keys_in)
            out = [(name, t) for t in range(n)]
            for t, key in enumerate(out):
                self.graph[key] = (join, *[pieces[i][t] for i in range(len(keys_in))])
        else:
            k = math.isqrt(n - 1) + 1
            split = [(_route_split, key, route, _lit(route_args(i)), k, k) for i, key in enumerate(keys_in)]
            pieces = self._buckets(f"{name}/s1", split, k, keys_in)
            middle = [(f"{name}/m", a, c) for a in range(k) for c in range(k)]
            for a, c in ((m[1], m[2]) for m in middle):
                self.graph[(f"{name}/m", a, c)] = (_gather, *[pieces[i][a] for i in range(c, len(keys_in), k)])
            pieces = self._buckets(f"{name}/s2", [(_split, m, k, 1) for m in middle], k, [])
            out = [(name, t) for t in range(n)]
            for t, key in enumerate(out):
                a, b = divmod(t, k)
                self.graph[key] = (join, *[pieces[a * k + c][b] for c in range(k)])
        self.place.update((key, t) for t, key in enumerate(out))
        return out

    def _buckets(self, name: str, split_tasks: list[tuple], buckets: int, keys_in: list[Any]) -> list[list[Any]]:
        """One split task per input (placed with the partition it splits, if that is placed) and a
        getitem task per bucket (left beside its split): `[input][bucket]` keys."""
        keys = []
        for i, task in enumerate(split_tasks):
            self.graph[(name, i)] = task
            if i < len(keys_in) and keys_in[i] in self.place:
                self.place[(name, i)] = self.place[keys_in[i]]
            keys.append([(f"{name}/b", i, j) for j in range(buckets)])
            for j, key in enumerate(keys[-1]):
                self.graph[key] = (operator.getitem, (name, i), j)
        return keys

    def _pardo(self, node: AppliedPTransform, name: str, keys_in: list[Any]) -> None:
        t = node.transform
        args, kwargs = t.raw_side_inputs
        tags = tuple(node.outputs)
        spec = _ParDoSpec(node.full_label, t.fn, tuple(args), dict(kwargs),
                          [(type(si), si._view_options()) for si in node.side_inputs], tags, self.options)
        payload = pickler.dumps(spec)
        digest = hashlib.sha256(payload).hexdigest()
        # The spec and each side input are single graph nodes: shipped once per worker, computed once.
        spec_key = f"{name}/spec"
        self.graph[spec_key] = _lit(payload)
        sides = []
        for k, si in enumerate(node.side_inputs):
            side_key = f"{name}/side{k}"
            self.graph[side_key] = (_gather, *self.parts[si.pvalue])
            sides.append(side_key)
        out = [(name, i) for i in range(len(keys_in))]
        for i, (key, key_in) in enumerate(zip(out, keys_in)):
            self.graph[key] = (run_bundle, key_in, _lit(str(key)), _lit(self.run_id), _lit(digest), spec_key, *sides)
            self.place[key] = self.place.get(key_in, i)
        if len(tags) == 1:
            self.parts[node.outputs[tags[0]]] = out
            return
        for tag, pcoll in node.outputs.items():
            selected = [(f"{name}/{tag}", i) for i in range(len(out))]
            for key, key_in in zip(selected, out):
                self.graph[key] = (_select, key_in, _lit(tag))
                self.place[key] = self.place[key_in]
            self.parts[pcoll] = selected


# ----- the runner and its result ------------------------------------------------------------------

class DaskResult(PipelineResult):
    """The run's one dask future; counters are collected from the workers (while running, too)."""

    def __init__(self, client: Any, future: Any, run_id: str, owns_client: bool = True):
        super().__init__(PipelineState.RUNNING)
        self._client, self._future, self._run_id = client, future, run_id
        self._owns_client = owns_client
        self._final: DirectMetrics | None = None

    def _release(self) -> None:
        if self._owns_client:
            self._client.close()

    def _collect(self, end: bool) -> DirectMetrics:
        metrics = DirectMetrics()
        for updates in self._client.run(_end_run if end else _worker_metrics, self._run_id).values():
            for update in updates:
                metrics.commit_logical(None, update)
                metrics.commit_physical(None, update)
        return metrics

    @property
    def state(self) -> str:
        """Live: a progress loop polls this until the run is over, then calls wait_until_finish."""
        if self._state == PipelineState.RUNNING and self._future.done():
            return PipelineState.FAILED if self._future.status == "error" else PipelineState.DONE
        return self._state

    def wait_until_finish(self, duration: int | None = None) -> str:
        if self._state != PipelineState.RUNNING:
            return self._state
        try:
            self._future.result(timeout=None if duration is None else duration / 1000)
            self._state = PipelineState.DONE
        except TimeoutError:
            if not self._future.done():
                return self._state  # `duration` ran out: still running
            self._state = PipelineState.FAILED
            raise
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            if self._state != PipelineState.RUNNING:
                self._finish()
        return self._state

    def _finish(self) -> None:
        """Counters in, workers' state of this run dropped, the client closed if it is ours."""
        try:
            self._final = self._collect(end=True)
        except Exception:  # noqa: BLE001 - a cluster gone with the failure: nothing left to drop
            self._final = DirectMetrics()
        self._release()

    def cancel(self) -> str:
        self._future.cancel()
        self._finish()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> DirectMetrics:
        if self._final is not None:
            return self._final
        if self._state == PipelineState.RUNNING:
            return self._collect(end=False)
        return DirectMetrics()


class DaskRunner(BeamDaskRunner):
    """`--runner DaskRunner`: the pipeline as a dask task graph on a dask.distributed cluster."""

    def run_pipeline(self, pipeline: beam.Pipeline, options: PipelineOptions) -> DaskResult:
        import distributed

        check_supported(pipeline)
        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        partitions = DaskOptions._extract_bag_kwargs(dask_options).get("npartitions")
        client, owns = self._client(distributed, dask_options)
        try:
            threads = client.nthreads()
            if not threads:  # a cluster still starting (or scaling from zero): its first worker sets the count
                client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
                threads = client.nthreads()
            translate = _Translate(uuid.uuid4().hex, partitions or sum(threads.values()) or 1, options)
            pipeline.visit(translate)
            final = translate.final()
            translate.fuse_chains()
            future = client.get(translate.placed_graph(threads), final, sync=False)
        except BaseException:
            if owns:
                client.close()
            raise
        return DaskResult(client, future, translate.run_id, owns_client=owns)

    @staticmethod
    def _client(distributed: Any, dask_options: dict) -> tuple[Any, bool]:
        """(client, whether this run owns it). With no `--dask_client_address` or
        `--dask_scheduler_file`, a client the caller already made (e.g. `Client(coiled.Cluster())`,
        which carries its TLS credentials) is used and left open; only without one does
        `distributed.Client()` start a local cluster, as Beam's runner does."""
        if not dask_options.get("address") and not dask_options.get("scheduler_file"):
            try:
                return distributed.default_client(), False
            except ValueError:
                pass
        return distributed.Client(**dask_options), True
