"""The one way a `replaymill` command refuses to start."""
from __future__ import annotations

from replaymill.pipeline.errors import InputError


class UsageError(InputError):
    """A problem found before any work starts: a bad flag, a missing input, an unwritable output.

    `pipeline.cli.main` prints it (and every library `InputError`) as the single line
    `replaymill COMMAND: error: MESSAGE` and exits with status 2, so no subcommand carries its own
    printing and exit-code code.
    """

