"""`replaymill build`: the command line of the build job (flags in; progress, funnel table and summary out).

`replaymill.build` (pipeline/jobs.py) checks everything a user can get wrong before the pipeline
starts (no input, unwritable output, a finished shard set in the way, a bad recipe); the error
is reported in one line with exit code 2, so a long job never dies on it half-way.
"""
from __future__ import annotations

import argparse
import logging
import time

EPILOG = """\
examples:
  # the demo: real code and prose from this machine's Python installation, no network
  replaymill build --output out/demo

  # English web text like FineWeb, from local Dolma/C4 files, on all local cores
  replaymill build --input 'data/cc/*.jsonl.gz' 'data/c4/*.json.gz' --output out/en --recipe fineweb-en

  # German and English only, shards of at most 64 MB, rejected documents kept for inspection
  replaymill build --input corpus.parquet --output out/ende --recipe multilingual \\
      --langs en,de --max-shard-mb 64 --write-rejects

  # on Google Dataflow: Beam's own flags go after `--`
  replaymill build --input 'gs://bucket/raw/*.jsonl.zst' --output gs://bucket/replay \\
      --recipe fineweb-en --runner DataflowRunner -- --project=my-proj --region=us-central1 \\
      --temp_location=gs://bucket/tmp

input formats: JSONL (plain, .gz, .zst) in the shapes of The Pile, RedPajama/SlimPajama, Dolma,
C4 and FineWeb; Parquet; WARC/WET; Hugging Face datasets saved to disk. Local paths, gs://, s3://.

output: OUT/domain=<d>/lang=<l>/part-NNNNN.arrow (Arrow IPC, zstd) and OUT/_manifest.json,
written last; a domain's small languages share lang=other (--min-partition-mb). Open with
pyarrow.dataset.dataset(OUT, format="arrow") (every row's own domain and lang columns; with
partitioning="hive" pyarrow reads lang from the directory, so pooled rows show "other").
"""

log = logging.getLogger("replaymill.build")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build",
        help="build Arrow replay shards from raw corpora (read, langid, quality, dedup, domain tags)",
        description="Read raw corpora, identify language, score quality, drop what the recipe filters,\n"
        "deduplicate exactly and (optionally) near-exactly across the whole input, tag domains, and\n"
        "write Hive-partitioned Arrow shards plus a _manifest.json; then print the funnel (read,\n"
        "dropped per reason, deduplicated, kept; docs and tokens per domain x language).\n"
        "Without --input, builds a demo corpus assembled from this machine's Python installation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", "-i", nargs="+", action="extend", metavar="GLOB",
                   help="input files or glob patterns (quote globs); default: the demo corpus")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory (local, gs://, s3://)")
    p.add_argument("--recipe", "-r", default="minimal", metavar="NAME_OR_PATH",
                   help="built-in recipe (fineweb-en, multilingual, minimal) or a recipe YAML file; default: minimal")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner (DirectRunner, DataflowRunner, FlinkRunner, "
                   "SparkRunner, PortableRunner); default: DirectRunner on all local cores")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="local worker processes; 0 = one per core (default)")
    p.add_argument("--in-memory", action="store_true",
                   help="run the DirectRunner in one process (debugging, tiny inputs) instead of one process per core")
    p.add_argument("--max-shard-mb", type=float, metavar="N", help="upper bound on one shard's size, in MB (recipe default 256)")
    p.add_argument("--min-partition-mb", type=float, metavar="N",
                   help="languages of a domain with less text than this share one lang=other partition "
                   "(rows keep their lang column; recipe default 1; 0 = every language its own)")
    p.add_argument("--write-rejects", action="store_true", default=None,
                   help="also write every dropped document's reject record to OUT/_rejects/*.jsonl.gz")
    p.add_argument("--near-dedup", action=argparse.BooleanOptionalAction, default=None,
                   help="turn MinHash near dedup on or off (overrides the recipe)")
    p.add_argument("--langs", metavar="CODES", help="comma-separated languages to keep, e.g. en,de (overrides the recipe)")
    p.add_argument("--decontaminate", nargs="+", metavar="EVAL_FILE",
                   help="drop documents sharing word 13-grams with these evaluation files (JSONL/JSON/text; "
                   "overrides the recipe's decontaminate.eval_files)")
    p.add_argument("--tokenizer", metavar="PATH",
                   help="count n_tokens with this tokenizer (tokenizer.json or an HF tokenizer/model directory, "
                   "e.g. the base model's) instead of the built-in estimate; the manifest records which counted")
    p.add_argument("--overwrite", action="store_true", help="replace a finished shard set already in --output")
    p.add_argument("--demo-mb", type=float, default=None, metavar="N",
                   help="size of the demo corpus in MB when --input is not given (default 8)")
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_ARGS",
                   help="extra Beam pipeline options after `--`, passed to the runner unchanged")
    p.set_defaults(func=run, beam_workers=True)


def run(args: argparse.Namespace) -> int:
    from replaymill.pipeline.cli.logs import configure_logging
    from replaymill.pipeline.funnel import render_funnel
    from replaymill.pipeline.jobs import build

    configure_logging()
    start = time.perf_counter()
    manifest = build(args.input, args.output, args.recipe, langs=args.langs.split(",") if args.langs is not None else None,
                     near_dedup=args.near_dedup, max_shard_mb=args.max_shard_mb,
                     min_partition_mb=args.min_partition_mb, write_rejects=args.write_rejects,
                     decontaminate=args.decontaminate,
                     tokenizer=args.tokenizer, overwrite=args.overwrite, demo_mb=args.demo_mb, runner=args.runner,
                     workers=args.workers, in_memory=args.in_memory, beam_args=args.beam_args, progress=True,
                     notify=print)
    render_funnel(manifest)
    print(f"wrote {manifest.total.docs:,} documents ({manifest.total.tokens:,} tokens) in "
          f"{len(manifest.shards)} shards to {args.output} in {time.perf_counter() - start:.1f} s; "
          f"manifest: {args.output.rstrip('/')}/_manifest.json")
    if manifest.token_counter is not None and manifest.token_counter.kind == "tokenizer":
        print(f"n_tokens counted with tokenizer {manifest.token_counter.path} (sha256 {manifest.token_counter.sha256[:12]})")
    return 0
