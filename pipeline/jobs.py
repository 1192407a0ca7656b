"""The jobs as library calls: `replaymill.build`, `replaymill.reshard`, `replaymill.sample` and
`replaymill.audit_report` (this module's `audit`; `replaymill.audit` is the package of report code).

Each checks everything a user can get wrong before the pipeline starts (no input, an unwritable
output, a finished set in the way, a recipe or target that does not validate), raising one
`InputError` so a long job never dies on it half-way; then it runs the Beam pipeline into a
staging directory under the output and swaps the sealed set in (`pipeline.staging`), and returns
the manifest it wrote. A set that fails its integrity gate raises `RunFailed` and is not published. The commands (`pipeline/cli/`) only parse flags, call these and print.

    import replaymill
    manifest = replaymill.build(["data/cc/*.jsonl.gz"], "out/en", recipe="fineweb-en")
    replay = replaymill.sample("out/en", "out/replay", target="llama1", tokens=50_000_000, on_short="upsample")
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from typing import TYPE_CHECKING, Callable

from replaymill.pipeline.errors import InputError, first_line, validation_message

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

    from replaymill.pipeline.sources import FileSpec
    from replaymill.schemas.manifest import Manifest
    from replaymill.schemas.recipe import Recipe

log = logging.getLogger("replaymill.build")


def worker_path(path: str) -> str:
    """A local path made absolute: workers open it too, and a Dask or portable worker's working
    directory is not the caller's (gs://, s3:// and other URLs pass unchanged)."""
    import os

    return path if "://" in path else os.path.abspath(path)


def _options(options: PipelineOptions | None, runner: str, workers: int, in_memory: bool,
             beam_args: list[str] | None) -> PipelineOptions:
    from replaymill.pipeline.options import job_options

    if options is None:
        return job_options(runner, workers, in_memory, beam_args)
    from apache_beam.io.filesystems import FileSystems

    FileSystems.set_options(options)
    return options


def resolve_build_recipe(
    recipe: str | Recipe = "minimal", *, langs: list[str] | None = None, near_dedup: bool | None = None,
    max_shard_mb: float | None = None, min_partition_mb: float | None = None, write_rejects: bool | None = None,
    decontaminate: list[str] | None = None,
) -> Recipe:
    """A built-in recipe name, a YAML path or a Recipe, with the given settings overriding it, validated."""
    from pydantic import ValidationError

    from replaymill.schemas.recipe import Recipe, resolve_recipe

    name = recipe if isinstance(recipe, str) else recipe.name
    if max_shard_mb is not None and not max_shard_mb * 1024 * 1024 >= 1:
        raise InputError(f"max_shard_mb (--max-shard-mb) must be positive, got {max_shard_mb:g}")
    if langs is not None and not [code for code in langs if code.strip()]:
        raise InputError(f"langs (--langs) {','.join(langs)!r} names no language; give codes such as en,de")
    try:
        data = (resolve_recipe(recipe) if isinstance(recipe, str) else recipe).model_dump()
        if max_shard_mb is not None:
            data["output"]["max_shard_bytes"] = int(max_shard_mb * 1024 * 1024)
        if min_partition_mb is not None:
            data["output"]["min_partition_bytes"] = int(min_partition_mb * 1024 * 1024)
        if write_rejects:
            data["output"]["write_rejects"] = True
        if near_dedup is not None:
            data["near_dedup"]["enabled"] = near_dedup
        if langs:
            data["langid"]["keep"] = [code.strip() for code in langs if code.strip()]
        if decontaminate:
            data["decontaminate"]["eval_files"] = list(decontaminate)
        return Recipe.model_validate(data)
    except FileNotFoundError as e:
        raise InputError(str(e)) from None
    except ValidationError as e:
        raise InputError(validation_message(e, f"recipe {name}")) from None
    except ValueError as e:  # not UTF-8, not YAML, a forbidden tag (schemas.yaml_file)
        raise InputError(str(e)) from None


def check_languages(recipe: Recipe) -> None:
    """The language-ID model must exist and every kept language code must be one it can answer."""
    from replaymill.transforms.langid_cascade import unknown_keep_codes

    try:
        unknown = unknown_keep_codes(recipe.langid)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(f"invalid recipe {recipe.name}: langid.model_path: {first_line(e)}") from None
    if unknown:
        raise InputError(f"invalid recipe {recipe.name}: langid.keep: unknown language code {', '.join(unknown)}")


def check_quality_languages(recipe: Recipe, warn: Callable[[str], None] | None = None) -> list[str]:
    """Read the recipe's stop-word files (InputError if one is unreadable), and warn when rules
    that only fit English meet non-English languages of the keep-list; returns the warnings."""
    from replaymill.transforms.quality.languages import FINEWEB2_THRESHOLDS, has_stop_words, read_stop_word_file

    quality = recipe.quality
    for lang, path in quality.stop_words.items():
        try:
            read_stop_word_file(path)
        except ValueError as e:
            raise InputError(f"invalid recipe {recipe.name}: quality.stop_words.{lang}: {first_line(e)}") from None
    others = sorted(set(recipe.langid.keep or ()) - {"en"})
    warnings = []
    if others and quality.c4.enabled:
        warnings.append(f"c4 rules are English-only (lorem ipsum, javascript and policy phrases, English sentence "
                        f"ends) but the keep-list has {', '.join(others)}")
    word_sets = [n for n in ("gopher_quality", "gopher_repetition", "fineweb") if getattr(quality, n).enabled]
    if others and word_sets and not quality.per_language:
        warnings.append(f"quality.per_language is off: {', '.join(word_sets)} apply English stop words and "
                        f"thresholds to {', '.join(others)}")
    elif others and word_sets:
        english = [c for c in others if c not in FINEWEB2_THRESHOLDS]
        if english:
            warnings.append(f"{', '.join(word_sets)}: English (Gopher/FineWeb) thresholds for {', '.join(english)} "
                            f"(FineWeb-2 per-language values ship for {', '.join(sorted(FINEWEB2_THRESHOLDS))})")
        no_list = [c for c in others if not has_stop_words(c, {k: frozenset() for k in quality.stop_words})]
        if quality.gopher_quality.enabled and no_list:
            warnings.append(f"no stop-word list for {', '.join(no_list)}: gopher_quality's stop-word rule is skipped "
                            "for them (name one with quality.stop_words)")
    for w in warnings:
        (warn or log.warning)(f"recipe {recipe.name}: {w}")
    return warnings


def check_eval_files(recipe: Recipe) -> None:
    """Every `decontaminate.eval_files` pattern must match files that hold evaluation text."""
    if not recipe.decontaminate.enabled:
        return
    from replaymill.audit.contamination import load_eval_docs

    try:
        files, docs = load_eval_docs(recipe.decontaminate.eval_files)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(f"invalid recipe {recipe.name}: decontaminate.eval_files: {first_line(e)}") from None
    log.info("decontaminate: %d evaluation documents in %d files, word %d-grams, action %s",
             len(docs), len(files), recipe.decontaminate.n, recipe.decontaminate.action)


def check_inputs(patterns: list[str]) -> list[FileSpec]:
    """Every pattern must match something; the readers' own message names the one that does not.
    Returns the input files with their sizes (the output must not be, hold or lie inside any of
    them; the sizes total the read bar), listed once for the whole job."""
    from replaymill.pipeline.sources import match_inputs

    try:
        return match_inputs(patterns)
    except FileNotFoundError as e:
        raise InputError(first_line(e)) from None


def build(
    inputs: list[str] | None,
    output: str,
    recipe: str | Recipe = "minimal",
    *,
    langs: list[str] | None = None,
    near_dedup: bool | None = None,
    max_shard_mb: float | None = None,
    min_partition_mb: float | None = None,
    write_rejects: bool | None = None,
    decontaminate: list[str] | None = None,
    tokenizer: str | None = None,
    overwrite: bool = False,
    demo_mb: float | None = None,
    runner: str = "DirectRunner",
    workers: int = 0,
    in_memory: bool = False,
    beam_args: list[str] | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> Manifest:
    """Build a shard set from `inputs` (files or globs; local, gs://, s3://) into `output`; returns its manifest.

    `recipe` is a built-in name (minimal, fineweb-en, multilingual), a YAML path or a `Recipe`;
    `langs`, `near_dedup`, `max_shard_mb`, `min_partition_mb`, `write_rejects` and `decontaminate`
    (evaluation files whose word 13-grams mark documents to drop) override it. `tokenizer` (a
    tokenizer.json or an HF tokenizer directory) counts `n_tokens` exactly instead of estimating. `inputs=None` builds the
    demo corpus (`demo_mb` MB of this machine's Python installation; local runners only). Runs on
    `runner` (all local cores by default) or with ready `options`. Raises InputError before any
    work when something given is unusable. `progress` shows bars with an ETA on a terminal;
    `notify` (default: the log) hears what the job is about to do.
    """
    from replaymill.pipeline.options import LOCAL_RUNNERS
    from replaymill.pipeline.sources import match_inputs
    from replaymill.pipeline.staging import staged_run
    from replaymill.schemas.manifest import MANIFEST_NAME
    from replaymill.shards.io import read_manifest

    options = _options(options, runner, workers, in_memory, beam_args)
    output = worker_path(output)
    specs: list[FileSpec] = []
    if inputs:
        specs = check_inputs(list(inputs))
    elif runner not in LOCAL_RUNNERS:
        raise InputError("the demo corpus is local; give inputs when using a remote runner")
    notify = notify or log.info
    resolved = resolve_build_recipe(recipe, langs=langs, near_dedup=near_dedup, max_shard_mb=max_shard_mb,
                                    min_partition_mb=min_partition_mb, write_rejects=write_rejects,
                                    decontaminate=decontaminate)
    check_languages(resolved)
    check_quality_languages(resolved)
    check_eval_files(resolved)
    if tokenizer:
        from replaymill.transforms.tokens import TokenizerError, open_tokenizer

        try:
            open_tokenizer(tokenizer)
        except (FileNotFoundError, TokenizerError) as e:
            raise InputError(str(e)) from None
    demo_dir = None
    try:
        # Written aside and swapped in whole (pipeline.staging): the lock, foreign files, a finished
        # set without `overwrite` and an output that is or holds an input are refused first.
        with staged_run(output, MANIFEST_NAME, overwrite=overwrite, inputs=[s.path for s in specs]) as staged:
            if not inputs:
                from replaymill.pipeline.demo_corpus import DEFAULT_MB, write_demo_corpus

                demo_dir = tempfile.mkdtemp(prefix="replaymill-demo-")
                inputs = write_demo_corpus(demo_dir, demo_mb or DEFAULT_MB)
                notify(f"no --input: built a {demo_mb or DEFAULT_MB:g} MB demo corpus from this Python installation "
                       f"in {demo_dir}")
                specs = match_inputs(inputs)
            _run_build(list(inputs), sum(s.size for s in specs), output, staged.staging, resolved, tokenizer, options,
                       runner, in_memory, progress, notify)
    finally:
        if demo_dir:
            shutil.rmtree(demo_dir, ignore_errors=True)
    return read_manifest(output)


def _run_build(inputs: list[str], input_bytes: int, output: str, staging: str, recipe: Recipe,
               tokenizer: str | None, options: PipelineOptions, runner: str, in_memory: bool, progress: bool,
               notify: Callable[[str], None]) -> None:
    """Run the build pipeline into `staging`, under progress bars (read bytes of `input_bytes`,
    documents kept, rows written) when asked."""
    import apache_beam as beam

    from replaymill.pipeline import build as build_pipeline
    from replaymill.pipeline.progress import ProgressView, Task, graph_reporting

    notify(f"build: {len(inputs)} input pattern(s), {input_bytes / 1e6:,.1f} MB -> {output} "
           f"(recipe {recipe.name}, {runner}{', in memory' if in_memory else ''})")
    view = ProgressView([
        Task("read.bytes", "read", total=input_bytes or None, unit="bytes", detail={"read.docs": "docs"}),
        Task("annotate.kept", "filtered", unit="docs kept", detail={"annotate.docs": "seen"}),
        Task("write.rows", "write", unit="rows", detail={"write.shards": "shards"}),
    ], enabled=None if progress else False)
    pipeline = beam.Pipeline(options=options)
    with graph_reporting(view, runner):
        build_pipeline.build(pipeline, inputs, staging, recipe, tokenizer=tokenizer)
    view.run(pipeline)


def sample(
    shards: str,
    output: str,
    *,
    target: str | None = None,
    reference: str | None = None,
    tokens: int | None = None,
    docs: int | None = None,
    by: str | None = None,
    on_short: str = "error",
    seed: int = 0,
    quality_temperature: float | None = None,
    rows_per_shard: int = 10_000,
    tokenizer: str | None = None,
    dsir: str = "mixture",
    overwrite: bool = False,
    runner: str = "DirectRunner",
    workers: int = 0,
    in_memory: bool = False,
    beam_args: list[str] | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Manifest:
    """Write a replay set drawn from the shard set `shards` into `output`; returns its manifest.

    With `reference`, `dsir` is "mixture" (default: estimate the reference's mixture over the set's
    domain/lang keys and draw each key's share at random within it), "stratified" (the same shares,
    DSIR within each key) or "global" (one top-k over everything, DSIR as published).

    Exactly one of `target` (a preset name or a weights YAML: the exact interleave) and `reference`
    (a text file: DSIR importance resampling), and one budget, `tokens` or `docs`. `by` is what the
    weights count (default: the preset's unit, else tokens); `on_short` what happens when a domain
    has too little (error, upsample, renormalize). `tokenizer` counts the budget in that tokenizer's
    tokens (documents are recounted unless the set was built with it; `notify`, default the log,
    hears when they are). The manifest's `extra.sampling` holds target
    vs achieved shares and the divergence. Raises InputError before any work when something given
    is unusable (a short domain under on_short="error": its `__cause__` is the ShortDomainError,
    whose `hint(flag)` a command uses to name its own flag). `warn` (default: the log) hears about
    shard domains the target does not name: counted toward web (news, forum) or left out, with
    their size. `progress` shows bars with an ETA on a terminal.
    """
    from pydantic import ValidationError

    from replaymill.pipeline.sample import plan_target, read_reference_texts
    from replaymill.pipeline.staging import staged_run
    from replaymill.schemas.manifest import MANIFEST_NAME
    from replaymill.schemas.mixtures import resolve_target
    from replaymill.shards.io import read_manifest
    from replaymill.pipeline.sample import DSIR_MODES
    from replaymill.shards.reader import ShardSet
    from replaymill.shards.sampler import ShortDomainError
    from replaymill.transforms.tokens import TokenizerError, open_tokenizer

    if (target is None) == (reference is None):
        raise InputError("give exactly one of target and reference")
    if (tokens is None) == (docs is None):
        raise InputError("give exactly one budget: tokens or docs")
    if dsir not in DSIR_MODES:
        raise InputError(f"dsir (--dsir) must be one of {', '.join(DSIR_MODES)}, got {dsir!r}")
    options = _options(options, runner, workers, in_memory, beam_args)
    shards, output = worker_path(shards), worker_path(output)
    budget = tokens if tokens is not None else docs
    budget_by = "tokens" if tokens is not None else "docs"
    if budget <= 0:
        raise InputError(f"the budget must be positive, got {budget}")
    if rows_per_shard <= 0:
        raise InputError("rows per shard must be positive")
    try:
        shardset = ShardSet.open(shards)
        recount = None  # a tokenizer to recount with, when the set's n_tokens were counted by something else
        if tokenizer:
            opened, counter = open_tokenizer(tokenizer)
            own = shardset.manifest.token_counter
            if own is None or own.sha256 != counter["sha256"]:
                recount = opened
                (notify or log.info)(f"counting tokens with {tokenizer} (the set's n_tokens were counted by "
                                     f"{own.name if own else 'an unrecorded counter'}): every document is recounted")
        if target:
            weights, preset_by, described = resolve_target(target)
            by = by or preset_by or "tokens"
            plan, report = plan_target(shardset, weights, by=by, budget=budget, budget_by=budget_by, seed=seed,
                                       on_short=on_short, quality_temperature=quality_temperature,
                                       tokenizer=recount, rows_per_part=rows_per_shard)
            report["target_spec"] = described
        else:
            by = by or budget_by
            if by != budget_by:
                raise InputError("with a reference the budget counts what `by` counts (tokens with by=tokens)")
            texts = read_reference_texts(reference)
    # A weights YAML's validation error is already a one-line ValueError (schemas.yaml_file); a model
    # validated here directly (a shipped preset, get_preset) still raises pydantic's: every bad field
    # named, not its headline, and before the ValueError branch below, which would catch it too.
    except ValidationError as e:
        raise InputError(validation_message(e, f"target {target}")) from None
    except ShortDomainError as e:
        raise InputError(str(e)) from e
    except (FileNotFoundError, ValueError, TokenizerError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(first_line(e) if str(e) else repr(e)) from None

    m = shardset.manifest
    (notify or log.info)(f"sample: {shards} ({m.total.docs:,} docs, {m.total.tokens:,} tokens) -> "
                         f"{f'target {target} by {by}' if target else f'DSIR toward {reference}'}, "
                         f"budget {budget:,} {budget_by} -> {output}")
    if target:
        warn_coverage(report, target, warn or log.warning)
    # Written aside and swapped in whole; refused if the output is, holds or lies inside `shards`.
    with staged_run(output, MANIFEST_NAME, overwrite=overwrite, inputs=[shards]) as staged:
        _run_sample(shardset, staged.staging, plan if target else None, report if target else None,
                    texts if reference else None, budget=budget, by=by, seed=seed,
                    quality_temperature=quality_temperature, rows_per_shard=rows_per_shard, tokenizer=tokenizer,
                    options=options, runner=runner, progress=progress, dsir=dsir)
    return read_manifest(output)


def warn_coverage(report: dict, target: str, warn: Callable[[str], None]) -> None:
    """One warning per shard domain the target does not name: counted toward web (a web topic,
    `schemas.domains.WEB_TOPICS`) or left out, with its size, so nothing disappears silently."""
    for domain, key in report.get("folded", {}).items():
        warn(f"domain {domain!r} is not named by {target}; counted toward {key!r} "
             "(topical web pages count as web: docs/sample.md)")
    for domain, size in report.get("unnamed", {}).items():
        docs = f"{size['docs']:,} doc{'s' if size['docs'] != 1 else ''}"
        warn(f"domain {domain!r} ({docs}, {size['tokens']:,} tokens) is not named by {target} and is left "
             "out; to keep it, give a weights YAML that names it")


def _run_sample(shardset, output: str, plan, report, texts, *, budget: int, by: str, seed: int,
                quality_temperature: float | None, rows_per_shard: int, tokenizer: str | None,
                options: PipelineOptions, runner: str, progress: bool, dsir: str = "mixture") -> None:
    """Materialize the plan (or the DSIR selection), under progress bars when asked."""
    import apache_beam as beam

    from replaymill.pipeline.progress import ProgressView, Task, graph_reporting
    from replaymill.pipeline.sample import sample_reference, sample_target

    if plan is not None:
        tasks = [Task("sample.rows", "read", total=plan.rows, unit="rows"),
                 Task("sample.parts", "write", total=len(plan.parts), unit="parts")]
    else:
        tasks = [Task("sample.scored", "score", total=len(shardset.shards), unit="shards"),
                 Task("sample.rows", "read", unit="rows"), Task("sample.parts", "write", unit="parts")]
    view = ProgressView(tasks, enabled=None if progress else False)
    pipeline = beam.Pipeline(options=options)
    with graph_reporting(view, runner):
        if plan is not None:
            sample_target(pipeline, shardset, output, plan, report, tokenizer=tokenizer)
        else:
            sample_reference(pipeline, shardset, output, texts, budget=budget, by=by, seed=seed,
                             quality_temperature=quality_temperature, rows_per_part=rows_per_shard,
                             tokenizer=tokenizer, mode=dsir)
    view.run(pipeline)


def _load_audit_settings(shard_sets: list[str], target: str | None, fail_if: str | None,
                         contamination: list[str] | None, min_jaccard: float | None,
                         ngram: int = 13, min_ngrams: int = 3, min_overlap: float = 0.0):
    """Manifests, target, gates and evaluation index, each checked; (manifests, target, gates, index),
    the manifests in `shard_sets` order, read once for the whole audit."""
    from replaymill.audit.gates import GateError, parse_gates
    from replaymill.shards.io import read_manifest

    manifests = []
    for path in shard_sets:
        try:
            manifests.append(read_manifest(path))  # a manifest that does not parse, or another schema version
        except ValueError as e:
            raise InputError(first_line(e)) from None
    gates = None
    if fail_if:
        try:
            gates = parse_gates(fail_if)
        except GateError as e:
            raise InputError(str(e)) from None
    loaded = None
    if target:
        from replaymill.audit.compare import load_target

        try:
            loaded = load_target(target)
        except (FileNotFoundError, ValueError) as e:
            raise InputError(f"target: {first_line(e)}") from None
    index = _contamination_index(contamination, min_jaccard, ngram, min_ngrams, min_overlap) if contamination else None
    return manifests, loaded, gates, index


def _contamination_index(contamination: list[str], min_jaccard: float | None, ngram: int, min_ngrams: int,
                         min_overlap: float):
    """The evaluation files as an n-gram index, or (with `min_jaccard`) a MinHash near-duplicate index."""
    from replaymill.audit.contamination import EvalIndex, NgramEvalIndex, load_eval_docs

    try:
        _, docs = load_eval_docs(contamination)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(f"contamination: {first_line(e)}") from None
    if min_jaccard is not None:
        if not 0.0 < min_jaccard < 1.0:
            raise InputError(f"min_jaccard must be in (0, 1), got {min_jaccard}")
        return EvalIndex.build(docs, min_jaccard=min_jaccard)
    if not 1 <= ngram <= 16 or min_ngrams < 1 or not 0.0 <= min_overlap <= 1.0:
        raise InputError("contamination: ngram must be 1..16, min_ngrams >= 1 and min_overlap in [0, 1]")
    return NgramEvalIndex.build(docs, ngram, min_ngrams, min_overlap)


def _refuse_unfinished_shard_set(path: str) -> None:
    """A directory laid out as a shard set (`domain=*/lang=*/part-*.arrow`) but without its manifest
    is an unfinished or damaged build, not a raw corpus: auditing its rows as raw input would
    report a set whose shards cannot be verified as if it were whole."""
    from apache_beam.io.filesystems import FileSystems

    from replaymill.schemas.manifest import MANIFEST_NAME

    if any(ch in path for ch in "*?["):
        return
    pattern = FileSystems.join(path.rstrip("/"), "domain=*", "lang=*", "part-*.arrow")
    try:
        found = FileSystems.match([pattern], limits=[1])[0].metadata_list
    except Exception:  # noqa: BLE001 - not a directory (a file, a prefix that lists nothing): raw input
        return
    if found:
        raise InputError(f"{path} holds shards (domain=*/lang=*/part-*.arrow) but no {MANIFEST_NAME}: an "
                         "unfinished or damaged shard set; rebuild it (or audit its files by glob as raw input)")


def _audit_raw(patterns: list[str], options: PipelineOptions, work_dir: str | None, index, *, distinct: bool,
               identity: str, progress: bool = False, runner: str = "DirectRunner"):
    """Run the Beam audit over raw patterns; returns (stats, contamination tally)."""
    from apache_beam.io.filesystems import FileSystems

    from replaymill.pipeline.audit import read_result, run_audit

    local_tmp = None if work_dir else tempfile.mkdtemp(prefix="replaymill-audit-")
    result = FileSystems.join(work_dir or local_tmp, f"audit-{uuid.uuid4().hex}.json")
    try:
        run_audit(patterns, result, options, distinct=distinct, text_identity=identity, index=index,
                  progress=progress, runner=runner)
        return read_result(result)
    finally:
        if local_tmp:
            shutil.rmtree(local_tmp, ignore_errors=True)
        elif FileSystems.exists(result):
            FileSystems.delete([result])


def _scan_shard_sets(roots: list[str], manifests: list[Manifest], *, distinct: bool, identity: str, index,
                     verify: bool, progress: bool):
    """`audit_shard_sets` under a bar of rows scanned against the manifests' total (with an ETA)."""
    from replaymill.audit.shardset import audit_shard_sets
    from replaymill.pipeline.progress import ProgressReporter, ProgressView, Task

    rows = sum(manifest.total.docs for manifest in manifests)
    view = ProgressView([Task("audit.rows", "scan", total=rows or None, unit="rows")],
                        enabled=None if progress else False)
    with view:
        reporter = ProgressReporter(view.channel, metrics=False)
        result = audit_shard_sets(roots, distinct=distinct, text_identity=identity, index=index, verify=verify,
                                  on_rows=lambda n: reporter.add("audit.rows", n), manifests=manifests)
        reporter.flush()
    return result


def merge_raw_funnel(funnel: dict, raw_stats) -> None:
    """Mixed input: the raw part's reader rejects and documents join the manifests' funnel, in place."""
    from replaymill.audit.funnel import merge_funnels, raw_funnel

    funnel.update(merge_funnels([funnel, raw_funnel(raw_stats.rejects, raw_stats.docs)]))


def audit(
    paths: list[str],
    *,
    target: str | None = None,
    by: str | None = None,
    tolerance: float = 0.01,
    contamination: list[str] | None = None,
    min_jaccard: float | None = None,
    ngram: int = 13,
    min_ngrams: int = 3,
    min_overlap: float = 0.0,
    fail_if: str | None = None,
    distinct: bool = True,
    text_identity: str | None = None,
    verify: bool = True,
    work_dir: str | None = None,
    runner: str = "DirectRunner",
    workers: int = 0,
    in_memory: bool = False,
    beam_args: list[str] | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
) -> dict:
    """The audit report (a JSON-ready dict) of shard sets and/or raw corpora.

    `paths` holding `_manifest.json` are read as shard sets (a columnar scan); the others are files
    or globs in any format build reads, tagged on the fly by a Beam pipeline. `target` (preset or
    weights YAML) adds the distance to it, `contamination` (evaluation files) the documents sharing
    at least `min_ngrams` word `ngram`-grams (and `min_overlap` of an item's) with them, or with
    `min_jaccard` their MinHash near duplicates instead, `fail_if` (e.g. "max_tv=0.1,min_docs=1000") the gates: `report["gates"]
    ["passed"]` says whether they held. Raises InputError before any work when something given is
    unusable. `progress` shows bars with an ETA on a terminal (rows of shard sets scanned; bytes of
    raw input read).
    """
    from replaymill.audit.compare import amounts_by_key, compare_to_target, counted_as
    from replaymill.audit.gates import GateError, apply_gates
    from replaymill.audit.report import build_report
    from replaymill.audit.shardset import is_shard_set
    from replaymill.audit.stats import AuditStats

    options = _options(options, runner, workers, in_memory, beam_args)
    work_dir = worker_path(work_dir) if work_dir else None
    shard_sets = [p for p in paths if is_shard_set(p)]
    raw = [p for p in paths if p not in shard_sets]
    for path in raw:
        _refuse_unfinished_shard_set(path)
    if raw:
        check_inputs(raw)
    manifests, loaded, gates, index = _load_audit_settings(shard_sets, target, fail_if, contamination, min_jaccard,
                                                           ngram, min_ngrams, min_overlap)

    # one text identity for the whole run: sketches of different identities cannot merge
    identity = text_identity or ("exact" if not raw else "normalized")
    stats, cont, funnel = AuditStats(distinct=distinct, text_identity=identity), None, None
    if shard_sets:
        stats, cont, funnel = _scan_shard_sets(shard_sets, manifests, distinct=distinct, identity=identity, index=index,
                                               verify=verify, progress=progress)
    if raw:
        raw_stats, raw_cont = _audit_raw(raw, options, work_dir, index, distinct=distinct, identity=identity,
                                         progress=progress, runner=runner)
        stats.merge(raw_stats)
        cont = raw_cont if cont is None else (cont.merge(raw_cont) if raw_cont else cont)
        if funnel is not None:
            merge_raw_funnel(funnel, raw_stats)
    kind = "shards" if not raw else ("raw" if not shard_sets else "mixed")
    report = build_report(stats, inputs=list(paths), input_kind=kind, funnel=funnel,
                          contamination=cont.report(index, contamination) if index is not None else None)
    if loaded:
        unit = by or loaded["by"]
        amounts = amounts_by_key(report["by_domain_lang"], list(loaded["weights"]), unit)
        report["target"] = {"name": loaded["name"], "description": loaded["description"],
                            **compare_to_target(amounts, loaded["weights"], by=unit, tolerance=tolerance),
                            "counted_as": counted_as(report["by_domain_lang"], list(loaded["weights"]))}
    if gates:
        try:
            apply_gates(report, gates)
        except GateError as e:
            raise InputError(str(e)) from e
    return report


def reshard(
    inputs: list[str],
    output: str,
    *,
    parts: int | None = None,
    part_mb: float = 64.0,
    overwrite: bool = False,
    runner: str = "DirectRunner",
    workers: int = 0,
    in_memory: bool = False,
    beam_args: list[str] | None = None,
    options: PipelineOptions | None = None,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> str:
    """Rewrite compressed JSONL `inputs` as `parts` zstd parts (default: about `part_mb` of input
    each) in `output`, so a later build reads them in parallel; returns the summary file's path.
    `progress` shows a bar of input bytes read (with an ETA) on a terminal."""
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from replaymill.pipeline.reshard import SUMMARY_NAME, Reshard, max_parts, parts_for
    from replaymill.pipeline.sources import match_inputs
    from replaymill.pipeline.staging import staged_run

    options = _options(options, runner, workers, in_memory, beam_args)
    output = worker_path(output)
    try:
        specs = match_inputs(list(inputs))
    except FileNotFoundError as e:
        raise InputError(first_line(e)) from None
    if parts is not None and parts < 1:
        raise InputError("the number of parts must be at least 1")
    if parts is None and not part_mb * 1024 * 1024 >= 1:
        raise InputError(f"part_mb (--part-mb) must be positive, got {part_mb:g}")
    size = sum(s.size for s in specs)
    num_parts = parts or parts_for(size, int(part_mb * 1024 * 1024))
    if num_parts > max_parts(size):
        asked = f"parts={parts}" if parts else f"part_mb={part_mb:g} ({num_parts:,} parts)"
        raise InputError(f"{asked} is more parts than {size:,} bytes of input can fill: at most "
                         f"{max_parts(size):,} (one per KB of input, never over 100,000)")
    (notify or logging.getLogger("replaymill.reshard").info)(
        f"reshard: {len(specs)} input file(s), {size / 1e6:,.1f} MB -> {num_parts} part(s) in {output}")
    from replaymill.pipeline.progress import ProgressView, Task, graph_reporting

    view = ProgressView([Task("read.bytes", "read", total=size or None, unit="bytes", detail={"reshard.lines": "lines"})],
                        enabled=None if progress else False)
    # Written aside and swapped in whole; refused if the output is or holds an input.
    with staged_run(output, SUMMARY_NAME, overwrite=overwrite, inputs=[s.path for s in specs]) as staged:
        p = beam.Pipeline(options=options)
        with graph_reporting(view, runner):
            p | "Reshard" >> Reshard([s.path for s in specs], staged.staging, num_parts)
        view.run(p)
    return FileSystems.join(output, SUMMARY_NAME)
