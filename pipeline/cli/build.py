"""`replaymill build`: the command line of the build pipeline (pre-flight checks, options, funnel table).

Everything a user can get wrong before the pipeline starts (no input, unwritable output, a
finished shard set in the way, a bad recipe) is checked first and reported in one line with
exit code 2, so a long job never dies on it half-way.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import uuid

from replaymill.pipeline.cli.errors import UsageError

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
    p.add_argument("--tokenizer", metavar="PATH",
                   help="count n_tokens with this tokenizer (tokenizer.json or an HF tokenizer/model directory, "
                   "e.g. the base model's) instead of the built-in estimate; the manifest records which counted")
    p.add_argument("--overwrite", action="store_true", help="replace a finished shard set already in --output")
    p.add_argument("--demo-mb", type=float, default=None, metavar="N",
                   help="size of the demo corpus in MB when --input is not given (default 8)")
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_ARGS",
                   help="extra Beam pipeline options after `--`, passed to the runner unchanged")
    p.set_defaults(func=run)


def apply_overrides(recipe, args: argparse.Namespace):
    """Flags win over the recipe; returns a validated copy."""
    from replaymill.schemas.recipe import Recipe

    data = recipe.model_dump()
    if args.max_shard_mb is not None:
        data["output"]["max_shard_bytes"] = int(args.max_shard_mb * 1024 * 1024)
    if args.min_partition_mb is not None:
        data["output"]["min_partition_bytes"] = int(args.min_partition_mb * 1024 * 1024)
    if args.write_rejects:
        data["output"]["write_rejects"] = True
    if args.near_dedup is not None:
        data["near_dedup"]["enabled"] = args.near_dedup
    if args.langs:
        data["langid"]["keep"] = [code.strip() for code in args.langs.split(",") if code.strip()]
    return Recipe.model_validate(data)


def check_output_writable(output: str) -> None:
    """Create the output directory and write and delete a probe file there, on any Beam filesystem."""
    from apache_beam.io.filesystems import FileSystems

    probe = FileSystems.join(output, f".replaymill-probe-{uuid.uuid4().hex}")
    try:
        if "://" not in output and not FileSystems.exists(output):
            FileSystems.mkdirs(output)  # object stores have no directories to create
        with FileSystems.create(probe) as f:
            f.write(b"ok")
        FileSystems.delete([probe])
    except Exception as e:  # any filesystem's error means the same thing to the user
        raise UsageError(f"cannot write to output {output}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def preflight(args: argparse.Namespace):
    """Recipe and output checked before anything runs (inputs by `check_inputs`); raises UsageError."""
    from replaymill.pipeline.sink import OutputExistsError, prepare_output
    from pydantic import ValidationError
    from replaymill.schemas.recipe import resolve_recipe

    from replaymill.transforms.tokens import TokenizerError, open_tokenizer

    try:
        recipe = apply_overrides(resolve_recipe(args.recipe), args)
        if args.tokenizer:
            open_tokenizer(args.tokenizer)
    except (FileNotFoundError, TokenizerError) as e:
        raise UsageError(str(e)) from None
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"invalid recipe {args.recipe}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    check_output_writable(args.output)
    try:
        removed = prepare_output(args.output, args.overwrite)
    except OutputExistsError as e:
        raise UsageError(str(e)) from None
    if removed:
        log.info("removed %d files of an earlier unfinished run in %s", len(removed), args.output)
    return recipe


def check_inputs(patterns: list[str]) -> None:
    """Every pattern must match something; the readers' own message names the one that does not."""
    from replaymill.pipeline.sources import expand_inputs

    try:
        expand_inputs(patterns)
    except FileNotFoundError as e:
        raise UsageError(str(e).splitlines()[0]) from None


def run(args: argparse.Namespace) -> int:
    from replaymill.pipeline.cli.logs import configure_logging

    configure_logging()
    demo_dir = None
    try:
        from replaymill.pipeline.options import LOCAL_RUNNERS, command_options

        options = command_options(args)
        if args.input:
            check_inputs(args.input)
        elif args.runner not in LOCAL_RUNNERS:
            raise UsageError("the demo corpus is local; give --input when using a remote runner")
        recipe = preflight(args)
        if not args.input:
            from replaymill.pipeline.demo_corpus import DEFAULT_MB, write_demo_corpus

            demo_dir = tempfile.mkdtemp(prefix="replaymill-demo-")
            mb = args.demo_mb or DEFAULT_MB
            args.input = write_demo_corpus(demo_dir, mb)
            print(f"no --input: built a {mb:g} MB demo corpus from this Python installation in {demo_dir}")
        return run_build(args, recipe, options)
    finally:
        if demo_dir:
            shutil.rmtree(demo_dir, ignore_errors=True)


def run_build(args: argparse.Namespace, recipe, options) -> int:
    """Run the pipeline under progress bars, then print the funnel table from the manifest it wrote."""
    import apache_beam as beam
    from rich.console import Console

    from replaymill.pipeline.build import build
    from replaymill.pipeline.funnel import render_funnel
    from replaymill.pipeline.progress import ProgressView, Task, graph_reporting
    from replaymill.pipeline.sources import match_inputs
    from replaymill.shards.io import read_manifest

    console = Console()
    input_bytes = sum(s.size for s in match_inputs(list(args.input)))
    print(f"build: {len(args.input)} input pattern(s), {input_bytes / 1e6:,.1f} MB -> {args.output} "
          f"(recipe {recipe.name}, {args.runner}{', in memory' if args.in_memory else ''})")
    view = ProgressView([
        Task("read.bytes", "read", total=input_bytes or None, unit="bytes", detail={"read.docs": "docs"}),
        Task("annotate.kept", "filtered", unit="docs kept", detail={"annotate.docs": "seen"}),
        Task("write.rows", "write", unit="rows", detail={"write.shards": "shards"}),
    ], console=console)
    start = time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    with graph_reporting(view, args.runner):
        build(pipeline, list(args.input), args.output, recipe, tokenizer=args.tokenizer)
    view.run(pipeline)
    elapsed = time.perf_counter() - start
    manifest = read_manifest(args.output)
    render_funnel(manifest)
    print(f"wrote {manifest.total.docs:,} documents ({manifest.total.tokens:,} tokens) in "
          f"{len(manifest.shards)} shards to {args.output} in {elapsed:.1f} s; "
          f"manifest: {args.output.rstrip('/')}/_manifest.json")
    if manifest.token_counter is not None and manifest.token_counter.kind == "tokenizer":
        print(f"n_tokens counted with tokenizer {manifest.token_counter.path} (sha256 {manifest.token_counter.sha256[:12]})")
    return 0
