"""`replaymill lsh-curve`: print the S-curve of a MinHash LSH setting before running a build with it.

Why: bands x rows is hard to judge by eye; the table shows, for each Jaccard similarity, the
probability that a pair becomes a near-duplicate candidate, so a user can see what a recipe's
near_dedup block (or a target threshold) will catch and miss.
"""
from __future__ import annotations

import argparse

from replaymill.pipeline.cli.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lsh-curve",
        help="print the MinHash LSH S-curve (P(candidate) per Jaccard) for bands x rows or a target threshold",
        description="Print p(s) = 1 - (1 - s^rows)^bands. Give --bands and --rows, or --threshold "
        "(and --num-perm) to choose bands x rows as datasketch does; with neither, FineWeb's 14 x 8.",
    )
    p.add_argument("--bands", type=int, help="number of LSH bands")
    p.add_argument("--rows", type=int, help="signature rows per band")
    p.add_argument("--threshold", type=float, help="target Jaccard similarity; chooses bands x rows")
    p.add_argument("--num-perm", type=int, default=112, help="permutation budget with --threshold (default 112)")
    p.add_argument("--step", type=float, default=0.05, help="Jaccard step of the table (default 0.05)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from replaymill.schemas.dedup import NearDedupConfig
    from replaymill.transforms.lsh import format_scurve

    if not 0.0 < args.step <= 0.5:
        raise UsageError("--step must be in (0, 0.5]")
    try:
        cfg = NearDedupConfig(bands=args.bands, rows=args.rows, threshold=args.threshold, num_perm=args.num_perm)
    except ValidationError as err:
        raise UsageError(err.errors()[0]["msg"]) from err
    bands, rows = cfg.banding()
    if args.threshold is not None:
        print(f"threshold {args.threshold} with num_perm <= {args.num_perm} -> bands={bands} rows={rows}")
    print(format_scurve(bands, rows, args.step))
    return 0
