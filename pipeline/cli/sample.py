"""`replaymill sample`: materialize a replay set in a target mixture (or toward a reference sample).

Pre-flight first (no manifest, unknown preset, bad YAML, a short domain under `--on-short error`,
a finished set in the way): one clear line and exit code 2, before any Beam work starts.
"""
from __future__ import annotations

import argparse
import json

EPILOG = """\
examples:
  # 50M tokens in LLaMA-1's proportions, exact interleave, short domains upsampled
  replaymill sample --input out/en --target llama1 --tokens 50000000 --on-short upsample --output out/replay

  # your own weights (per domain, or per domain/lang), by documents
  replaymill sample --input out/en --target weights.yaml --docs 100000 --by docs --output out/replay
      # weights.yaml:  weights: {web: 0.6, code: 0.2, books/de: 0.2}

  # DSIR: the pool documents whose hashed n-grams best explain text the base model generated
  replaymill sample --input out/en --reference generations.jsonl --tokens 20000000 --output out/replay

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
    p.add_argument("--input", "-i", "--shards", dest="input", required=True, metavar="DIR",
                   help="the shard set to draw from (a build's output, with _manifest.json); --shards is the old name")
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
    from replaymill.pipeline.cli.logs import configure_logging
    from replaymill.pipeline.jobs import sample
    from replaymill.pipeline.options import command_options

    configure_logging()
    options = command_options(args)
    manifest = sample(args.input, args.output, target=args.target, reference=args.reference, tokens=args.tokens,
                      docs=args.docs, by=args.by, on_short=args.on_short, seed=args.seed,
                      quality_temperature=args.quality_temperature, rows_per_shard=args.rows_per_shard,
                      tokenizer=args.tokenizer, overwrite=args.overwrite, runner=args.runner, options=options,
                      notify=print)
    summary(manifest.model_dump(mode="json"))
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
