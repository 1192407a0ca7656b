"""`replaymill reshard`: rewrite big compressed JSONL into many zstd JSONL parts that build in parallel.

A compressed file is read by one worker from start to end; a corpus of a few huge `.jsonl.gz`
files therefore builds at the speed of a few workers however many a cluster has. Reshard reads
each file once and writes N parts of about `--part-mb` each; `replaymill build` then reads the
parts in parallel. Uncompressed JSONL needs none of this: the build splits it by byte ranges.
"""
from __future__ import annotations

import argparse

EPILOG = """\
examples:
  # three 20 GB .jsonl.gz files -> ~940 parts of ~64 MB, on all local cores
  replaymill reshard --input 'raw/*.jsonl.gz' --output resharded/ --part-mb 64

  # exactly 256 parts, on Dataflow, from and to object storage (Beam flags after `--`)
  replaymill reshard --input 's3://bucket/raw/*.jsonl.zst' --output s3://bucket/resharded --parts 256 \\
      --runner DataflowRunner -- --project=my-proj --region=us-central1 --temp_location=gs://bucket/tmp

output: OUT/part-NNNNN-of-MMMMM.jsonl.zst and OUT/_reshard.json (inputs, parts, lines, damaged files),
written last. Lines are copied unchanged; a truncated input keeps the lines before the cut.
"""



def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reshard",
        help="split big compressed JSONL (.gz/.zst, which cannot be split) into many zstd parts",
        description="Stream compressed JSONL inputs once and rewrite their lines into N zstd JSONL "
        "parts, so that a later build reads them on many workers at once.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", "-i", nargs="+", action="extend", required=True, metavar="GLOB",
                   help="input JSONL files or globs (plain, .gz, .zst, .bz2, .xz); local, gs://, s3://")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory (local, gs://, s3://)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--parts", type=int, metavar="N", help="number of output parts")
    size.add_argument("--part-mb", type=float, default=64.0, metavar="MB",
                      help="target part size in MB of compressed input per part (default 64)")
    p.add_argument("--overwrite", action="store_true", help="replace parts and summary already in --output")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner on all local cores)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="local worker processes; 0 = one per core")
    p.add_argument("--in-memory", action="store_true",
                   help="run the DirectRunner in one process (small inputs, debugging) instead of one process per core")
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_ARGS",
                   help="extra Beam pipeline options after `--`, passed to the runner unchanged")
    p.set_defaults(func=run, beam_workers=True)


def run(args: argparse.Namespace) -> int:
    from replaymill.pipeline.cli.logs import configure_logging
    from replaymill.pipeline.jobs import reshard

    configure_logging()
    summary = reshard(args.input, args.output, parts=args.parts, part_mb=args.part_mb, overwrite=args.overwrite,
                      runner=args.runner, workers=args.workers, in_memory=args.in_memory,
                      beam_args=args.beam_args, progress=True, notify=print)
    print(f"wrote the parts to {args.output}; summary (lines, parts, damaged inputs): {summary}")
    return 0
