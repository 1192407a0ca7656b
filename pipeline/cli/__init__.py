"""The command-line room: the `replaymill` command, one module per subcommand, one error path.

Each module in SUBCOMMANDS exposes `register(subparsers)`, which adds its parser and sets
`func(args) -> int`. Heavy imports (Beam, torch) happen inside `func`, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys

from replaymill import __version__
from replaymill.pipeline.cli.errors import USAGE_ERROR, failure_line, failure_places
from replaymill.pipeline.cli.worker_output import HeldWorkerStderr
from replaymill.pipeline.errors import InputError, RunFailed



class _NoBigQueryNotice(logging.Filter):
    """Beam installed without its `gcp` extra logs, when `apache_beam.io` is first imported, that the
    BigQuery clients are missing: replaymill uses none, and the core install has no `gcp` (the extra
    adds it), so the line is only noise on every command's stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_NoBigQueryNotice())  # before any subcommand imports Beam

SUBCOMMANDS: tuple[str, ...] = (  # workflow order, as `--help` lists them
    "replaymill.pipeline.cli.build",
    "replaymill.pipeline.cli.reshard",
    "replaymill.pipeline.cli.probe",
    "replaymill.pipeline.cli.sample",
    "replaymill.pipeline.cli.train",
    "replaymill.pipeline.cli.audit",
    "replaymill.pipeline.cli.lsh_curve",
)


class _Parser(argparse.ArgumentParser):
    """Words after the first `--` are the runner's own Beam flags (`beam_args`), whatever comes
    before: argparse alone cannot give them to `beam_args` after a variable-length positional
    (`audit PATH... --runner R -- --flag` was refused, or the flag taken for a PATH)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if "--" not in args:
            return super().parse_known_args(args, namespace)
        cut = args.index("--")
        namespace, extras = super().parse_known_args(args[:cut], namespace)
        if hasattr(namespace, "beam_args"):
            namespace.beam_args = [*(namespace.beam_args or []), *args[cut + 1:]]
        else:
            extras += args[cut:]
        return namespace, extras


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="replaymill",
        description="Build replay corpora from open pre-training data, sample them toward a base "
        "model's original mixture, fine-tune with replay, and audit what a corpus contains.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit statuses as `pipeline.cli.errors` documents them. Commands that run
    local Beam workers (`set_defaults(beam_workers=True)`) hold the workers' raw stderr back
    (`worker_output`), so a known failure stays one line."""
    args = make_parser().parse_args(argv)
    held = HeldWorkerStderr() if getattr(args, "beam_workers", False) else None
    try:
        with held or contextlib.nullcontext():
            return int(args.func(args) or 0)
    except (InputError, RunFailed) as e:  # UsageError (a command's flags), a job's pre-flight, a failed gate
        message, status = str(e), getattr(e, "exit_code", USAGE_ERROR)
    except Exception as e:  # a full disk or a damaged shard set is reported in one line; a bug is not
        message, status = failure_line(e, failure_places(args)), USAGE_ERROR
        if message is None:
            if held is not None:
                held.replay()
            raise
    finally:
        if held is not None:
            held.close()
    print(f"replaymill {args.command}: error: {message}", file=sys.stderr)
    return status
