"""`replaymill audit`: what a shard set or raw corpus contains, against a target, three ways out.

Exit status: 0 when every `--fail-if` gate passes (or none is given), 1 when a gate fails (the
failing gates are printed one per line), 2 for a usage or input error found before any work.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
import uuid

from replaymill.pipeline.cli.errors import UsageError

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
    p.add_argument("paths", nargs="+", metavar="PATH", help="shard-set directories and/or raw corpus files or globs")
    p.add_argument("--target", metavar="PRESET|YAML", help="target mixture: a preset name or a weights YAML")
    p.add_argument("--by", choices=("tokens", "docs"), help="compare shares of tokens or documents "
                   "(default: the target's own unit, else tokens)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="X",
                   help="a domain is short when its share is below target by more than X (default 0.01)")
    p.add_argument("--contamination", nargs="+", metavar="EVAL_FILE",
                   help="evaluation files (JSONL/JSON/text, optionally compressed) to look for in the corpus")
    p.add_argument("--min-jaccard", type=float, default=None, metavar="J",
                   help="report overlaps with estimated Jaccard >= J (default 0.5)")
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
    p.set_defaults(func=run)


def _preflight(args: argparse.Namespace):
    """Split paths into shard sets and raw patterns; load target, gates and evaluation index."""
    from replaymill.audit.contamination import DEFAULT_MIN_JACCARD, EvalIndex, read_eval_file
    from replaymill.audit.gates import GateError, parse_gates
    from replaymill.audit.shardset import is_shard_set
    from replaymill.shards.io import read_manifest

    shard_sets = [p for p in args.paths if is_shard_set(p)]
    raw = [p for p in args.paths if p not in shard_sets]
    for path in shard_sets:
        try:
            read_manifest(path)  # a manifest that does not parse, or another schema version
        except ValueError as e:
            raise UsageError(str(e).splitlines()[0]) from None
    if raw:
        _expand(raw)
    gates = None
    if args.fail_if:
        try:
            gates = parse_gates(args.fail_if)
        except GateError as e:
            raise UsageError(str(e)) from None
    target = None
    if args.target:
        from replaymill.audit.compare import load_target

        try:
            target = load_target(args.target)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--target: {str(e).splitlines()[0]}") from None
    index = None
    if args.contamination:
        docs = []
        try:
            for path in _expand(args.contamination):
                docs += read_eval_file(path)
        except ValueError as e:
            raise UsageError(f"--contamination: {str(e).splitlines()[0]}") from None
        if not docs:
            raise UsageError("--contamination: the evaluation files hold no text")
        index = EvalIndex.build(docs, min_jaccard=args.min_jaccard or DEFAULT_MIN_JACCARD)
    return shard_sets, raw, target, gates, index


def _expand(patterns: list[str]) -> list[str]:
    """Files matched by `patterns` (any Beam filesystem); a pattern matching nothing is a UsageError."""
    from replaymill.pipeline.sources import expand_inputs

    try:
        return expand_inputs(patterns)
    except FileNotFoundError as e:
        raise UsageError(str(e).splitlines()[0]) from None


def _audit_raw(args: argparse.Namespace, options, raw: list[str], index, identity: str):
    """Run the Beam audit over raw patterns; returns (stats, contamination tally)."""
    from apache_beam.io.filesystems import FileSystems

    from replaymill.pipeline.audit import read_result, run_audit

    local_tmp = None if args.work_dir else tempfile.mkdtemp(prefix="replaymill-audit-")
    result = FileSystems.join(args.work_dir or local_tmp, f"audit-{uuid.uuid4().hex}.json")
    try:
        run_audit(raw, result, options, distinct=not args.no_distinct, text_identity=identity, index=index)
        return read_result(result)
    finally:
        if local_tmp:
            shutil.rmtree(local_tmp, ignore_errors=True)
        elif FileSystems.exists(result):
            FileSystems.delete([result])


def run(args: argparse.Namespace) -> int:
    # Beam logs every type-hint conversion at INFO: only replaymill's own progress is shown at INFO.
    from replaymill.pipeline.cli.logs import configure_logging

    configure_logging()
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    from replaymill.pipeline.options import command_options

    options = command_options(args)
    shard_sets, raw, target, gates, index = _preflight(args)

    from replaymill.audit.compare import amounts_by_key, compare_to_target
    from replaymill.audit.gates import GateError, apply_gates
    from replaymill.audit.render import render_terminal, render_html, to_json
    from replaymill.audit.report import build_report
    from replaymill.audit.shardset import audit_shard_sets
    from replaymill.audit.stats import AuditStats

    start = time.perf_counter()
    # one text identity for the whole run: sketches of different identities cannot merge
    identity = args.text_identity or ("exact" if not raw else "normalized")
    stats, cont, funnel = AuditStats(distinct=not args.no_distinct, text_identity=identity), None, None
    if shard_sets:
        stats, cont, funnel = audit_shard_sets(shard_sets, distinct=not args.no_distinct, text_identity=identity,
                                               index=index, verify=not args.no_verify)
    if raw:
        raw_stats, raw_cont = _audit_raw(args, options, raw, index, identity)
        stats.merge(raw_stats)
        cont = raw_cont if cont is None else (cont.merge(raw_cont) if raw_cont else cont)
        if funnel is not None:  # mixed input: the raw part's reader rejects join the manifests' funnel
            for reason, n in raw_stats.rejects.items():
                funnel["dropped"][reason] = funnel["dropped"].get(reason, 0) + n
            funnel["read"] += raw_stats.docs + sum(raw_stats.rejects.values())
            funnel["kept"] += raw_stats.docs
    kind = "shards" if not raw else ("raw" if not shard_sets else "mixed")
    report = build_report(stats, inputs=args.paths, input_kind="raw" if kind == "raw" else kind, funnel=funnel,
                          contamination=cont.report(index, args.contamination) if index is not None else None)
    if target:
        by = args.by or target["by"]
        amounts = amounts_by_key(report["by_domain_lang"], list(target["weights"]), by)
        report["target"] = {"name": target["name"], "description": target["description"],
                            **compare_to_target(amounts, target["weights"], by=by, tolerance=args.tolerance)}
    status = 0
    if gates:
        try:
            result = apply_gates(report, gates)
        except GateError as e:
            raise UsageError(str(e)) from e
        status = 0 if result["passed"] else 1
    log.info("audited %d documents in %.1f s", report["totals"]["docs"], time.perf_counter() - start)

    if args.json:
        _write(args.json, to_json(report))
    if args.html:
        _write(args.html, render_html(report))
    if not args.quiet:
        render_terminal(report)
    if status:
        for g in report["gates"]["checks"]:
            if not g["passed"]:
                print(f"replaymill audit: gate failed: {g['name']}: {g['detail']}", file=sys.stderr)
    return status


def _write(path: str, text: str) -> None:
    """Write an output file on any Beam filesystem."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
