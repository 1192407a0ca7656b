"""The one error a job raises for a problem found before any work starts."""
from __future__ import annotations


class InputError(ValueError):
    """A job's inputs, output or settings are unusable: no input matches, the output is not writable or
    holds a finished set, the recipe or target does not validate, a shard set is of another version.

    Raised by the library entry points (`replaymill.build`, `replaymill.sample`, `replaymill.audit`)
    before any pipeline runs; the command line prints it as one line and exits with status 2.
    """
