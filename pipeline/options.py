"""Beam pipeline options for replaymill jobs: all local cores by default, any runner by flag.

Locally the DirectRunner (Beam's FnApiRunner) runs with `direct_num_workers=0` (one worker per
core) in `multi_processing` mode: each worker is a separate SDK process, so CPU-bound DoFns
(fastText, MinHash) really run in parallel and every DoFn is pickled as on a cluster.
`in_memory` mode (one process, threads) is the fallback for debugging and for small test runs
where starting worker processes costs more than the work. Any other runner (Dataflow, Flink,
Spark, PortableRunner) is chosen with `runner=` and configured with its own Beam flags, passed
through untouched (e.g. `--project=... --region=... --temp_location=gs://...`).

`DirectRunner` is run as Beam's FnApiRunner, the DirectRunner's own batch engine: since Beam 2.6x
the DirectRunner first tries Prism, which downloads a Go binary at run time (no network here, and
a hang where outbound traffic is silently dropped); the FnApiRunner needs nothing extra.

Local worker processes run `pipeline.worker_setup` when they import the package: they watch the
driver and exit when it dies, so a killed `replaymill` leaves no worker writing into its output.

`DaskRunner` (by name, or Beam's own class path) is replaymill's translation onto dask.distributed
(`pipeline.dask_runner`): Beam's own DaskRunner silently loses or mixes elements on these
pipelines, so it is never handed to Beam. It needs the `dask` extra.
"""
from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from replaymill.pipeline.errors import InputError
from replaymill.pipeline.worker_setup import start_watchdog

LOCAL_RUNNERS = ("DirectRunner", "direct", "FnApiRunner")
DASK_RUNNER = "replaymill.pipeline.dask_runner.DaskRunner"
DASK_RUNNER_NAMES = ("DaskRunner", "dask", "apache_beam.runners.dask.dask_runner.DaskRunner", DASK_RUNNER)
RUNNING_MODES = ("multi_processing", "in_memory", "multi_threading")
PROGRESS_LOGGERS = ("replaymill",)


def make_options(
    runner: str = "DirectRunner",
    workers: int = 0,
    running_mode: str = "multi_processing",
    beam_args: list[str] | None = None,
) -> PipelineOptions:
    """Options for one job. `workers` 0 means every core (DirectRunner only); `beam_args` are
    extra Beam flags for the chosen runner, which Beam itself validates."""
    if running_mode not in RUNNING_MODES:
        raise ValueError(f"running mode must be one of {', '.join(RUNNING_MODES)}, not {running_mode!r}")
    local = runner in LOCAL_RUNNERS
    if runner in DASK_RUNNER_NAMES:
        runner = dask_runner_path()
    flags = [
        f"--runner={'FnApiRunner' if local else runner}",
        # Workers log replaymill's progress at INFO and Beam's own chatter only from WARNING up;
        # a user's `beam_args` come later and win.
        "--default_sdk_harness_log_level=WARNING",
        f"--sdk_harness_log_level_overrides={json.dumps(dict.fromkeys(PROGRESS_LOGGERS, 'INFO'))}",
        *(beam_args or []),
    ]
    if local:
        # in_memory runs one process whatever the count; asking for more only earns Beam's warning
        count = 1 if running_mode == "in_memory" else workers
        flags += [f"--direct_num_workers={count}", f"--direct_running_mode={running_mode}"]
        if running_mode == "multi_processing":
            start_watchdog()  # worker processes end with this driver, even a SIGKILLed one
    return PipelineOptions(flags, save_main_session=False, pipeline_type_check=True)


def dask_runner_path() -> str:
    """replaymill's Dask runner, imported here so its `--dask_*` flags parse; ValueError without dask."""
    try:
        import replaymill.pipeline.dask_runner  # noqa: F401 - registers DaskOptions with Beam
    except ImportError as e:
        raise ValueError(f"the Dask runner needs dask.distributed ({e}); install it with: pip install 'replaymill[dask]'") from e
    return DASK_RUNNER


def job_options(
    runner: str = "DirectRunner", workers: int = 0, in_memory: bool = False, beam_args: list[str] | None = None,
) -> PipelineOptions:
    """A job's options, handed to Beam's filesystems before anything else runs.

    Beam's s3:// and gs:// filesystems take endpoint, keys and project only from these options,
    and every job's pre-flight lists inputs or opens manifests through them before a Pipeline
    exists to set them; workers get the same options at start-up.
    """
    if workers < 0:
        raise InputError(f"workers (--workers) must be 0 (one per core) or a positive count, got {workers}")
    try:
        options = make_options(runner=runner, workers=workers,
                               running_mode="in_memory" if in_memory else "multi_processing", beam_args=beam_args)
    except ValueError as e:
        raise InputError(str(e)) from e
    FileSystems.set_options(options)
    return options
