"""The errors a job raises (`InputError` before any work, `RunFailed` after it) and the reading of
errors that others raised: an exception's cause/context chain, and Beam's step suffix on the
message of an error a DoFn raised."""
from __future__ import annotations

import re

# Beam appends the step to the message of an exception a DoFn raised; it names no data, only the graph.
BEAM_STEP_SUFFIX = re.compile(r" \[while running '[^']*'\]")


class InputError(ValueError):
    """A job's inputs, output or settings are unusable: no input matches, the output is not writable or
    holds a finished set, the recipe or target does not validate, a shard set is of another version.

    Raised by the library entry points (`replaymill.build`, `replaymill.sample`, `replaymill.audit`)
    before any pipeline runs; the command line prints it as one line and exits with status 2.
    """


def validation_message(error, what: str) -> str:
    """A pydantic ValidationError as one line naming every offending field, e.g.
    `invalid target w.yaml: weights.web: Input should be a valid number (got 'lots')`.
    (`schemas.yaml_file.field_errors`, imported here so the command line starts without pydantic.)"""
    from replaymill.schemas.yaml_file import field_errors

    return f"invalid {what}: " + field_errors(error, top_level="(top level)", strip_value_error=False)


def exception_chain(error: BaseException | None) -> list[BaseException]:
    """`error`, then its cause (or context), and so on, each once (a cycle ends the walk)."""
    seen: list[BaseException] = []
    while error is not None and not any(error is s for s in seen):
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def first_line(error: BaseException) -> str:
    """An error's message cut to its first line (the rest is a traceback or detail a one-line
    error has no room for); the exception type's name when the message is empty."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def without_beam_step(text: str) -> str:
    """`text` without Beam's ` [while running '<step>']` suffix."""
    return BEAM_STEP_SUFFIX.sub("", text)


class RunFailed(RuntimeError):
    """A job whose output failed a check after the work (the integrity gate): nothing was published.

    The command line prints it as one line too, but exits with status 3, so scripts can tell a
    refused start (2) from a run that did its work and found it broken.
    """

    exit_code = 3
