"""`replaymill audit`: what a shard set or raw corpus contains, against a target, three ways out.

Exit status: 0 when every `--fail-if` gate passes (or none is given), 3 when a gate fails (the
failing gates are printed one per line), 2 for a usage or input error (one line); an unexpected
crash keeps Python's 1, so a CI step can tell "the corpus failed its gates" from "the audit broke".
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from replaymill.pipeline.cli.errors import GATE_FAILED, UsageError

EPILOG = """\
examples:
  # a shard set written by build or sample: composition against the LLaMA-1 mixture
  replaymill audit out/en --target llama1 --html audit.html

  # raw corpora in any format build reads (tags computed on the fly through Beam)
  replaymill audit 'data/dolma-cc/*.jsonl.gz' 'data/c4/*.json.gz' --json audit.json

  # CI gate: fail unless close to the target, large enough, few duplicates, no benchmark leakage
  replaymill audit out/en --target weights.yaml --contamination evals/*.jsonl \\
      --fail-if max_tv=0.1,min_docs=1000,max_dup_rate=0.05,max_contaminated=0

gates (--fail-if NAME=NUMBER,...): max_tv, max_kl, max_short, min_docs, min_tokens, max_dup_rate,
max_contaminated, max_contamination_rate. JSON keys are documented in the README (section audit).
"""

log = logging.getLogger("replaymill.audit")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="report what a shard set or raw corpus contains (domains, languages, quality, dups, target, contamination)",
        description="Audit shard sets (directories with _manifest.json) or raw corpora (files or globs in any "
        "format build reads): documents, characters and tokens by domain x language; quality and length "
        "distributions; duplicate rates; distinct counts (HyperLogLog); the build funnel; distance to a target "
        "mixture; near-duplicate overlap with evaluation files. Prints a table; writes JSON and HTML on request.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="shard-set directories and/or raw corpus files or globs")
    p.add_argument("--input", "-i", nargs="+", action="extend", default=[], metavar="PATH",
                   help="the same as PATH (the name every command uses for its input)")
    p.add_argument("--target", metavar="PRESET|YAML", help="target mixture: a preset name or a weights YAML")
    p.add_argument("--by", choices=("tokens", "docs"), help="compare shares of tokens or documents "
                   "(default: the target's own unit, else tokens)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="X",
                   help="a domain is short when its share is below target by more than X (default 0.01)")
    p.add_argument("--contamination", nargs="+", metavar="EVAL_FILE",
                   help="evaluation files (JSONL/JSON/text, optionally compressed) to look for in the corpus")
    p.add_argument("--ngram", type=int, default=13, metavar="N",
                   help="contamination by shared word N-grams (default 13, as GPT-3)")
    p.add_argument("--min-ngrams", type=int, default=3, metavar="K",
                   help="a corpus document overlaps an evaluation item when it holds at least K of its N-grams (default 3)")
    p.add_argument("--min-overlap", type=float, default=0.0, metavar="F",
                   help="... and they are at least this fraction of the item's N-grams (default 0)")
    p.add_argument("--min-jaccard", type=float, default=None, metavar="J",
                   help="instead, MinHash near duplicates with estimated Jaccard >= J; the LSH banding is chosen "
                   "so a pair at J is a candidate with probability >= 0.95")
    p.add_argument("--json", metavar="OUT.json", help="write the report as JSON")
    p.add_argument("--html", metavar="OUT.html", help="write a self-contained HTML report with plots")
    p.add_argument("--fail-if", metavar="GATES", help="comma-separated gates, e.g. max_tv=0.1,min_docs=1000")
    p.add_argument("--no-distinct", action="store_true",
                   help="skip HyperLogLog distinct counts (shards are then read without their text column)")
    p.add_argument("--text-identity", choices=("normalized", "exact"),
                   help="when two texts count as one in the distinct count: 'normalized' as exact dedup (about 1 ms "
                   "per 4 kB text) or 'exact' bytes (fast); default: normalized for raw input, exact for shard sets")
    p.add_argument("--no-verify", action="store_true", help="do not check shard sha256 against the manifest")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal table (gates still print)")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner for raw input (default DirectRunner)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="local worker processes; 0 = one per core")
    p.add_argument("--in-memory", action="store_true", help="run the DirectRunner in one process (small inputs)")
    p.add_argument("--work-dir", metavar="DIR", help="where the Beam audit writes its result (must be reachable by "
                   "the workers and this machine: gs:// or s3:// for remote runners; default: a local temp dir)")
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_ARGS", help="extra Beam options after `--`")
    p.set_defaults(func=run, beam_workers=True)


def run(args: argparse.Namespace) -> int:
    if not args.input and not args.paths:
        raise UsageError("give at least one PATH (or --input)")
    # Beam logs every type-hint conversion at INFO: only replaymill's own progress is shown at INFO.
    from replaymill.pipeline.cli.logs import configure_logging

    configure_logging()
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    from replaymill.audit.render import render_html, render_terminal, to_json
    from replaymill.pipeline.jobs import audit

    start = time.perf_counter()
    report = audit(args.input + args.paths, target=args.target, by=args.by, tolerance=args.tolerance,
                   contamination=args.contamination, min_jaccard=args.min_jaccard, ngram=args.ngram,
                   min_ngrams=args.min_ngrams, min_overlap=args.min_overlap, fail_if=args.fail_if,
                   distinct=not args.no_distinct, text_identity=args.text_identity, verify=not args.no_verify,
                   work_dir=args.work_dir, runner=args.runner, workers=args.workers, in_memory=args.in_memory,
                   beam_args=args.beam_args, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    if args.json:
        _write(args.json, to_json(report))
    if args.html:
        _write(args.html, render_html(report))
    if not args.quiet:
        render_terminal(report)
    written = [f"{kind}: {path}" for kind, path in (("HTML", args.html), ("JSON", args.json)) if path]
    print(f"audited {report['totals']['docs']:,} documents in {elapsed:.1f} s"
          + (f"; report {', '.join(written)}" if written else ""))  # where the output went, even with -q
    failed = [g for g in (report.get("gates") or {}).get("checks", []) if not g["passed"]]
    for g in failed:
        print(f"replaymill audit: gate failed: {g['name']}: {g['detail']}", file=sys.stderr)
    return GATE_FAILED if failed else 0


def _write(path: str, text: str) -> None:
    """Write an output file on any Beam filesystem."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
