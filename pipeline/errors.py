"""The one error a job raises for a problem found before any work starts."""
from __future__ import annotations


class InputError(ValueError):
    """A job's inputs, output or settings are unusable: no input matches, the output is not writable or
    holds a finished set, the recipe or target does not validate, a shard set is of another version.

    Raised by the library entry points (`replaymill.build`, `replaymill.sample`, `replaymill.audit`)
    before any pipeline runs; the command line prints it as one line and exits with status 2.
    """


def validation_message(error, what: str) -> str:
    """A pydantic ValidationError as one line naming every offending field, e.g.
    `invalid target w.yaml: weights.web: Input should be a valid number (got 'lots')`.
    (pydantic's own first line, "1 validation error for UserTarget", names no field.)"""
    parts = []
    for e in error.errors():
        field = ".".join(str(p) for p in e.get("loc", ())) or "(top level)"
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        parts.append(f"{field}: {e['msg']}{got}")
    return f"invalid {what}: " + "; ".join(parts)


class RunFailed(RuntimeError):
    """A job whose output failed a check after the work (the integrity gate): nothing was published.

    The command line prints it as one line too, but exits with status 3, so scripts can tell a
    refused start (2) from a run that did its work and found it broken.
    """

    exit_code = 3
