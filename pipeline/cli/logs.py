"""Console logging for the Beam commands: replaymill's progress lines, worker lines relayed cleanly.

Local runs relay every worker's log records through Beam's job service as one long proto dump;
the filter here turns them back into plain lines and drops the harness's start-up chatter, so a
user sees progress and real warnings, not Beam's internals.
"""
from __future__ import annotations

import logging
import re

from replaymill.pipeline.options import PROGRESS_LOGGERS

WORKER_RELAY = "apache_beam.runners.portability.local_job_service"
BEAM_RERAISE = "apache_beam.runners.common"
_RELAYED = re.compile(r'severity: (\w+).*?message: "((?:[^"\\]|\\.)*)".*?log_location: "([^"]*)"')
_HARNESS_NOISE = ("semi_persistent_directory",)
_TRACEBACK = "Traceback (most recent call last)"


class _WorkerLines(logging.Filter):
    """Shows a relayed worker line as just its message: replaymill's own lines, and Beam's only when
    they are warnings or errors (the harness's start-up chatter and notices are dropped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = _RELAYED.search(record.getMessage())
        if match is None:
            return True
        severity, text, location = match.groups()
        ours = "/apache_beam/" not in location
        if not ours and (severity in ("DEBUG", "INFO", "NOTICE") or any(n in text for n in _HARNESS_NOISE)):
            return False
        if not ours and _TRACEBACK in text:
            return False  # a failing DoFn's exception: it reaches the driver, which reports it (pipeline.cli.main)
        record.msg, record.args, record.name = text, (), "worker"
        return True


def configure_logging() -> None:
    """replaymill's progress lines at INFO (from workers too); Beam's own only from WARNING."""
    # force: importing Beam may already have configured the root logger (a module-level
    # `logging.warning` at import calls basicConfig), which would make this call a no-op.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        force=True)
    for name in (*PROGRESS_LOGGERS, WORKER_RELAY):
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger(WORKER_RELAY).addFilter(_WorkerLines())
    from replaymill.pipeline.integrity import filter_gate_failures

    filter_gate_failures()
    # Beam logs a failing DoFn's exception with its traceback before re-raising it; the exception
    # reaches `pipeline.cli.main`, which prints a known failure in one line and re-raises a bug
    # with its whole traceback, so the copy logged here is only noise.
    logging.getLogger(BEAM_RERAISE).setLevel(logging.CRITICAL)
