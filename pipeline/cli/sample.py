"""`replaymill sample`: materialize a replay set in a target mixture (or toward a reference sample).

Pre-flight first (no manifest, unknown preset, bad YAML, a short domain under `--on-short error`,
a finished set in the way): one clear line and exit code 2, before any Beam work starts.
"""
from __future__ import annotations

import argparse

from replaymill.pipeline.cli.errors import UsageError

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
    p.add_argument("--dsir", choices=("mixture", "stratified", "global"), default="mixture",
                   help="with --reference: estimate the reference's mixture over the set's domain/lang keys and "
                   "draw each key's share at random (mixture, default) or by DSIR within the key (stratified), "
                   "or one DSIR top-k over all documents (global: as published; collapses onto the domain the "
                   "reference over-represents most)")
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
    p.set_defaults(func=run, beam_workers=True)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from replaymill.pipeline.cli.logs import configure_logging
    from replaymill.pipeline.errors import InputError
    from replaymill.pipeline.jobs import sample
    from replaymill.shards.sampler import ShortDomainError

    configure_logging()
    start = time.perf_counter()
    try:
        manifest = sample(args.input, args.output, target=args.target, reference=args.reference, tokens=args.tokens,
                          docs=args.docs, by=args.by, on_short=args.on_short, seed=args.seed,
                          quality_temperature=args.quality_temperature, rows_per_shard=args.rows_per_shard,
                          tokenizer=args.tokenizer, dsir=args.dsir, overwrite=args.overwrite,
                          runner=args.runner, workers=args.workers, in_memory=args.in_memory,
                          beam_args=args.beam_args, progress=True, notify=print,
                          warn=lambda m: print(f"replaymill sample: warning: {m}", file=sys.stderr))
    except InputError as e:
        if isinstance(e.__cause__, ShortDomainError):  # the remedy as this command's flag
            raise UsageError(e.__cause__.hint("--on-short")) from None
        raise
    summary(manifest)
    print(f"wrote {manifest.total.docs:,} documents ({manifest.total.tokens:,} tokens) in {len(manifest.shards)} "
          f"shards to {args.output} in {time.perf_counter() - start:.1f} s; manifest: "
          f"{args.output.rstrip('/')}/_manifest.json")
    return 0


def overshoot_line(s: dict) -> str:
    """The budget against what was drawn: sampling ends on whole documents, so the last one may cross it."""
    budget, used, unit = s["budget"], s.get("budget_used", 0), s.get("budget_by", s["by"])
    if used == budget:
        return f"budget {budget:,} {unit}: drew exactly {used:,}"
    if used < budget:
        return f"budget {budget:,} {unit}: drew {used:,}, {budget - used:,} under: the pool ran out"
    over = used - budget
    return (f"budget {budget:,} {unit}: drew {used:,}, {over:,} ({100 * over / budget:.1f}%) over, because sampling "
            f"ends on whole documents and the last one drawn crossed the budget")


def summary(manifest) -> None:
    """Target vs achieved per key (a table like build's), the funnel, the budget, and divergence."""
    from rich import box
    from rich.table import Table

    from replaymill.audit.funnel import console_for_tables, funnel_table

    console = console_for_tables()
    s = manifest.extra["sampling"]
    target, effective = s.get("target", {}), s.get("effective_target", {})
    spec = s.get("target_spec", "").split(":")[0]
    table = Table(title=f"Sample by {s['by']}" + (f" ({spec})" if target else " (DSIR)"),
                  title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
    columns = ["key", "target", "effective", "achieved", "docs", s["by"], "repeated"] if target else \
        ["domain", "achieved", s["by"]]
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for key, a in s["achieved"].items():
        if target:
            short = key in (s.get("shortfall", {}).get("keys") or {})
            table.add_row(key, f"{target.get(key, 0):.2%}", f"{effective.get(key, 0):.2%}", f"{a['share']:.2%}",
                          f"{a['docs']:,}", f"{a['units']:,}", f"{a['repeats']:,}" if a["repeats"] else "",
                          style="yellow" if short else "")
        else:
            table.add_row(key, f"{a['share']:.2%}", f"{a['units']:,}")
    console.print(table)
    console.print(funnel_table(manifest.funnel, title="Sample funnel"))
    console.print(overshoot_line(s), soft_wrap=True)
    if s["mode"] == "target":
        eff = s["effective_divergence"]
        line = f"vs target: total variation {s['tv']:.4f}, KL {s['kl']:.4f} nats"
        short = s["shortfall"]
        if short["action"] != "none":
            line += (f"; short keys ({', '.join(short['keys'])}) handled by --on-short {short['action']}: "
                     f"vs the effective target TV {eff['tv']:.4f}, KL {eff['kl']:.4f}")
            if short["repeated_docs"]:
                line += f"; {short['repeated_docs']:,} documents repeated"
        console.print(line, soft_wrap=True)
    else:
        d = s["dsir"]
        if d.get("estimated_mixture"):
            est = sorted(d["estimated_mixture"].items(), key=lambda kv: -kv[1]["doc_share"])
            console.print("estimated reference mixture (share of reference documents -> share of the budget): "
                          + ", ".join(f"{k} {e['doc_share']:.1%} -> {e['budget_share']:.1%}" for k, e in est),
                          soft_wrap=True)
        console.print(f"DSIR hashed-n-gram KL(reference || selection) {d['kl_reference_to_selection']:.4f} "
                      f"vs KL(reference || pool) {d['kl_reference_to_pool']:.4f} nats", soft_wrap=True)
