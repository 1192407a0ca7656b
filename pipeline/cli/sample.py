"""`replaymill sample`: materialize a replay set in a target mixture (or toward a reference sample).

Pre-flight first (no manifest, unknown preset, bad YAML, a short domain under `--on-short error`,
a finished set in the way): one clear line and exit code 2, before any Beam work starts.
"""
from __future__ import annotations

import argparse
import json

from replaymill.pipeline.cli.errors import UsageError

EPILOG = """\
examples:
  # 50M tokens in LLaMA-1's proportions, exact interleave, short domains upsampled
  replaymill sample --shards out/en --target llama1 --tokens 50000000 --on-short upsample --output out/replay

  # your own weights (per domain, or per domain/lang), by documents
  replaymill sample --shards out/en --target weights.yaml --docs 100000 --by docs --output out/replay
      # weights.yaml:  weights: {web: 0.6, code: 0.2, books/de: 0.2}

  # DSIR: the pool documents whose hashed n-grams best explain text the base model generated
  replaymill sample --shards out/en --reference generations.jsonl --tokens 20000000 --output out/replay

presets: llama1, pile, redpajama-1t, slimpajama, dolma (schemas/presets/*.yaml, each with its source).
output: OUT/domain=<d>/lang=<l>/part-NNNNN.arrow + OUT/_manifest.json (kind "sample"); the manifest's
extra.sampling holds target vs achieved proportions, total variation, KL and what happened to short domains.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample",
        help="materialize a replay set in a target mixture (preset, weights YAML) or toward a reference (DSIR)",
        description="Select documents from a built shard set so that their mixture matches a published "
        "pre-training mixture or your weights exactly (every prefix within one document of the target), or "
        "resemble a reference text sample (DSIR importance resampling), and write them as a new shard set.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--shards", required=True, metavar="DIR", help="a built shard set (with _manifest.json)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--target", metavar="PRESET|YAML", help="preset name or a weights YAML file")
    what.add_argument("--reference", metavar="FILE", help="reference text: JSONL with 'text' (.gz ok) or plain text")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--tokens", type=int, metavar="N", help="budget in tokens (n_tokens column)")
    size.add_argument("--docs", type=int, metavar="N", help="budget in documents")
    p.add_argument("--by", choices=("tokens", "docs"), default=None,
                   help="what the weights count: tokens (default, or the preset's) or documents")
    p.add_argument("--on-short", choices=("error", "upsample", "renormalize"), default="error",
                   help="when a domain has too little: fail (default), repeat it (counted), or share its gap")
    p.add_argument("--tokenizer", metavar="PATH",
                   help="count the token budget in this tokenizer's tokens (tokenizer.json or an HF tokenizer/model "
                   "directory, e.g. the base model's); documents are recounted unless the set was built with it")
    p.add_argument("--seed", type=int, default=0, help="seed of the within-domain permutations / Gumbel noise")
    p.add_argument("--quality-temperature", type=float, default=None, metavar="T",
                   help="weight documents within a domain by exp(quality / T) (smaller T: best first)")
    p.add_argument("--rows-per-shard", type=int, default=10_000, metavar="N", help="documents per output shard")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output directory (local, gs://, s3://)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished shard set already in --output")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner; default: DirectRunner on local cores")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="local worker processes; 0 = one per core")
    p.add_argument("--in-memory", action="store_true", help="run the DirectRunner in one process (small sets, debugging)")
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_ARGS", help="extra Beam options after `--`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import apache_beam as beam

    from replaymill.pipeline.cli.logs import configure_logging

    configure_logging()

    from replaymill.pipeline.options import command_options
    from replaymill.pipeline.sample import plan_target, read_reference_texts, sample_reference, sample_target
    from replaymill.pipeline.sink import OutputExistsError, prepare_output
    from replaymill.schemas.mixtures import resolve_target
    from replaymill.shards.io import read_manifest
    from replaymill.shards.reader import ShardSet
    from replaymill.shards.sampler import ShortDomainError
    from replaymill.transforms.tokens import TokenizerError, open_tokenizer

    options = command_options(args)
    budget = args.tokens if args.tokens is not None else args.docs
    budget_by = "tokens" if args.tokens is not None else "docs"
    if budget <= 0:
        raise UsageError(f"the budget must be positive, got {budget}")
    if args.rows_per_shard <= 0:
        raise UsageError("--rows-per-shard must be positive")
    if args.shards.rstrip("/") == args.output.rstrip("/"):
        raise UsageError("--output must differ from --shards")
    try:
        shardset = ShardSet.open(args.shards)
        recount = None  # a tokenizer to recount with, when the set's n_tokens were counted by something else
        if args.tokenizer:
            tokenizer, counter = open_tokenizer(args.tokenizer)
            own = shardset.manifest.token_counter
            if own is None or own.sha256 != counter["sha256"]:
                recount = tokenizer
                print(f"counting tokens with {args.tokenizer} (the set's n_tokens were counted by "
                      f"{own.name if own else 'an unrecorded counter'}): every document is recounted")
        if args.target:
            target, preset_by, described = resolve_target(args.target)
            by = args.by or preset_by or "tokens"
            picks, report = plan_target(shardset, target, by=by, budget=budget, budget_by=budget_by, seed=args.seed,
                                        on_short=args.on_short, quality_temperature=args.quality_temperature,
                                        tokenizer=recount)
            report["target_spec"] = described
        else:
            by = args.by or budget_by
            if by != budget_by:
                raise UsageError("with --reference the budget counts what --by counts (--tokens with --by tokens)")
            reference = read_reference_texts(args.reference)
        prepare_output(args.output, args.overwrite)
    except (FileNotFoundError, ValueError, ShortDomainError, OutputExistsError, TokenizerError) as e:
        raise UsageError(str(e).splitlines()[0] if str(e) else repr(e)) from None

    with beam.Pipeline(options=options) as p:
        if args.target:
            sample_target(p, shardset, args.output, picks, report, rows_per_part=args.rows_per_shard,
                          tokenizer=args.tokenizer)
        else:
            sample_reference(p, shardset, args.output, reference, budget=budget, by=by, seed=args.seed,
                             quality_temperature=args.quality_temperature, rows_per_part=args.rows_per_shard,
                             tokenizer=args.tokenizer)
    summary(read_manifest(args.output).model_dump(mode="json"))
    return 0


def summary(manifest: dict) -> None:
    """Target vs achieved per key, divergence and shortfall handling, printed after the run."""
    s = manifest["extra"]["sampling"]
    total = manifest["total"]
    counter = manifest.get("token_counter") or {}
    counted = f" ({counter.get('kind')}: {counter.get('name')})" if counter else ""
    print(f"wrote {total['docs']:,} documents, {total['tokens']:,} tokens{counted} in {len(manifest['shards'])} shards")
    target, effective = s.get("target", {}), s.get("effective_target", {})
    print(f"{'key':<16}{'target':>10}{'effective':>10}{'achieved':>10}{'units':>14}")
    for key, a in s["achieved"].items():
        t = f"{target[key]:.4f}" if key in target else "-"
        e = f"{effective[key]:.4f}" if key in effective else "-"
        print(f"{key:<16}{t:>10}{e:>10}{a['share']:>10.4f}{a['units']:>14,}")
    if s["mode"] == "target":
        eff = s["effective_divergence"]
        print(f"vs target: total variation {s['tv']:.5f}, KL {s['kl']:.6f} nats; vs effective target: "
              f"TV {eff['tv']:.5f}, KL {eff['kl']:.6f}; shortfall: {json.dumps(s['shortfall'])}")
    else:
        d = s["dsir"]
        print(f"DSIR hashed-n-gram KL(reference || selection) {d['kl_reference_to_selection']:.4f} "
              f"vs KL(reference || pool) {d['kl_reference_to_pool']:.4f} nats")
