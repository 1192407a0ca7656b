"""replaymill: replay corpora from open pre-training data (build, sample, train with replay, audit).

The public API. Names resolve lazily, so `import replaymill` costs nothing until a name is used
(Beam, pyarrow and torch load only with the part that needs them):

    import replaymill
    manifest = replaymill.build(["data/cc/*.jsonl.gz"], "out/en", recipe="fineweb-en")   # Beam, all local cores
    replay = replaymill.sample("out/en", "out/replay", target="llama1", tokens=50_000_000, on_short="upsample")
    report = replaymill.audit_report(["out/replay"], target="llama1")                      # a JSON-ready dict
    shards = replaymill.ShardSet.open("out/replay")    # a verified, finished shard set
    for doc in shards.iter_documents(["text", "domain"]):
        ...

    ds = replaymill.ReplayDataset("task.jsonl", "out/replay", replay_ratio=0.05, seq_len=512, batch_size=8)
    loader = DataLoader(ds, batch_size=ds.batch_size, collate_fn=replaymill.ReplayCollator())  # any trainer

Installed, the repository's folders are the subpackages `replaymill.pipeline` (Beam stages and the
command line), `replaymill.transforms` (pure functions), `replaymill.schemas` (data contracts),
`replaymill.shards`, `replaymill.audit`, `replaymill.trainer` and `replaymill.deploy`.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("replaymill")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# public name -> "module:attribute"
_API: dict[str, str] = {
    "build": "replaymill.pipeline.jobs:build",
    "reshard": "replaymill.pipeline.jobs:reshard",
    "sample": "replaymill.pipeline.jobs:sample",
    # `replaymill.audit` is the package of report code, so the job's function has its own name
    "audit_report": "replaymill.pipeline.jobs:audit",
    "InputError": "replaymill.pipeline.errors:InputError",
    "ShardSet": "replaymill.shards.reader:ShardSet",
    "CorruptShardError": "replaymill.shards.io:CorruptShardError",
    "read_manifest": "replaymill.shards.io:read_manifest",
    "Manifest": "replaymill.schemas.manifest:Manifest",
    "Recipe": "replaymill.schemas.recipe:Recipe",
    "resolve_recipe": "replaymill.schemas.recipe:resolve_recipe",
    "ReplaySampler": "replaymill.shards.sampler:ReplaySampler",
    "ReplayDataset": "replaymill.trainer.dataset:ReplayDataset",
    "ReplayCollator": "replaymill.trainer.collate:ReplayCollator",
    "TrainConfig": "replaymill.trainer.config:TrainConfig",
    "TrainError": "replaymill.trainer.errors:TrainError",
    "train": "replaymill.trainer.loop:train",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name].split(":")
    except KeyError:
        raise AttributeError(f"module 'replaymill' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
