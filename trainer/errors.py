"""The trainer's one error type for problems with the configuration or the data.

`replaymill train` turns these (and the shard errors listed in `data_errors`) into a single line
on stderr with exit status 2; library callers catch `TrainError` (a `ValueError`) instead of
parsing messages. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class TrainError(ValueError):
    """A configuration or data problem the user can fix: a bad key, missing data, a changed resume."""


class OutputExistsError(TrainError, FileExistsError):
    """The output directory holds a previous run (needs --resume) or files that are not a run."""


def data_errors() -> tuple[type[BaseException], ...]:
    """Errors the shard readers raise mid-run that mean "fix your data" (imported only once one occurred)."""
    from replaymill.shards.io import CorruptShardError
    from replaymill.shards.sampler import ShortDomainError

    return CorruptShardError, ShortDomainError


def one_line(error: BaseException) -> str:
    """The message as one line; a DataLoader worker's re-raised error keeps only its original last line."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    if lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        return lines[-1]
    return lines[0] if len(lines) == 1 else "; ".join(lines)
