"""Document sources with a resumable position, split over ranks and DataLoader workers.

Every source yields `(id, text)` pairs forever (epoch after epoch) and exposes `state_dict()` /
`load_state_dict()` describing the *next* document it will yield, so the packer can store "the
document I am in and how far" and a resumed run re-reads exactly the same tokens.

Readers are numbered `rank * num_workers + worker` out of `world_size * num_workers`; each reader
owns a disjoint part of the data (task documents by index, replay shards round-robin), so no two
workers ever train on the same document.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from replaymill.schemas.manifest import MANIFEST_NAME
from replaymill.transforms.plain_text import text_documents


class DocSource(Protocol):
    def __next__(self) -> tuple[str, str]: ...

    def state_dict(self) -> dict[str, Any]:
        """A snapshot: later iteration must not change the returned object (it is kept, not copied,
        once per document by the token stream)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def is_held_out(doc_id: str, fraction: float) -> bool:
    """Stable train/eval split by a hash of the document id: the same on every rank, run and machine."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


def is_shard_set(path: str) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST_NAME).exists()


def _text_documents(path: Path) -> Iterator[str]:
    """Documents of a plain-text file, split exactly as `replaymill build` splits one
    (`transforms.plain_text`: blank-line paragraphs, runs of lines cut at ~2000 characters)."""
    with path.open(encoding="utf-8-sig", errors="replace") as f:  # a byte-order mark is not text
        for _, doc in text_documents(enumerate(f)):
            yield doc


def _jsonl_documents(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a JSON object with a 'text' field ({e})") from e
            if not isinstance(text, str):
                raise ValueError(f"{path}:{n}: 'text' is {type(text).__name__}, expected a string")
            yield text


def _file_documents(path: Path) -> Iterator[str]:
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        return _jsonl_documents(path)
    if name.endswith((".txt", ".md")):
        return _text_documents(path)
    raise ValueError(f"{path}: unsupported task file (use .txt, .jsonl, .jsonl.gz, an HF dataset dir or a shard set)")


def _expand(spec: str) -> list[Path]:
    """Comma-separated files or directories of them (sorted), each must exist."""
    out: list[Path] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        path = Path(part)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
            if not files:
                raise FileNotFoundError(f"{part}: directory holds no data files")
            out.extend(files)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"task data {part!r} does not exist")
    if not out:
        raise FileNotFoundError(f"no task data in {spec!r}")
    return out


class ListSource:
    """Documents held in memory (task text/JSONL files, an HF dataset), reshuffled every epoch.

    Fine-tuning sets are small; the reader keeps only its own part. The order of epoch `e` is a
    permutation seeded by (seed, e), so the position is just (epoch, index).
    """

    def __init__(self, docs: list[tuple[str, str]], seed: int, label: str):
        if not docs:
            raise ValueError(f"{label}: no training documents for this reader (too few documents for the readers?)")
        self.docs = docs
        self.seed = seed
        self.epoch = 0
        self.index = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.docs))

    def __iter__(self) -> "ListSource":
        return self

    def __next__(self) -> tuple[str, str]:
        if self.index >= len(self.docs):
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        doc = self.docs[int(self._order[self.index])]
        self.index += 1
        return doc

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = self._permutation(self.epoch)


def load_documents(spec: str, *, reader: int = 0, readers: int = 1, held_out: float = 0.0,
                   keep: str = "train") -> list[tuple[str, str]]:
    """(id, text) of task data outside shard sets, this reader's share, train or held-out part.

    Ids are `file-name:index`; documents are dealt round-robin to readers by index.
    """
    path = Path(spec)
    docs: list[tuple[str, str]] = []
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()):
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
        if "text" not in ds.column_names:
            raise ValueError(f"{spec}: HF dataset has no 'text' column (columns: {ds.column_names})")
        texts: Iterator[tuple[str, str]] = ((f"{path.name}:{i}", t) for i, t in enumerate(ds["text"]))
    else:
        texts = ((f"{p.name}:{i}", t) for p in _expand(spec) for i, t in enumerate(_file_documents(p)))
    for n, (doc_id, text) in enumerate(texts):
        if n % readers != reader or not text:
            continue
        if is_held_out(doc_id, held_out) == (keep == "eval"):
            docs.append((doc_id, text))
    return docs


class ShardSetSource:
    """Replay (or task) documents streamed from a verified shard set, this reader's shards only.

    Shard order is permuted per epoch (seeded), rows are read in order; the position is
    (epoch, shard index, row), so resume skips whole shards without reading them.
    """

    def __init__(self, shardset, *, seed: int, reader: tuple[int, int, int, int], held_out: float = 0.0):
        self.shardset = shardset
        self.seed = seed
        self.reader = reader
        self.held_out = held_out
        self.epoch, self.shard_pos, self.row = 0, 0, 0
        self._shards = self._my_shards(0)
        if not self._shards:
            rank, world, worker, workers = reader
            raise ValueError(
                f"{shardset.root}: {len(shardset.shards)} shards cannot feed {world * workers} readers "
                f"(world_size {world} x num_workers {workers}); reshard it or use fewer workers"
            )
        self._rows: Iterator[dict] | None = None

    def _my_shards(self, epoch: int) -> list:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shardset.shards))
        rank, world, worker, workers = self.reader
        return self.shardset.shards_for_reader([self.shardset.shards[i] for i in order], rank, world, worker, workers)

    def _open_current(self) -> Iterator[dict]:
        info = self._shards[self.shard_pos]
        rows = self.shardset.iter_documents(columns=["id", "text"], shards=[info])
        for _ in range(self.row):
            next(rows)
        return rows

    def __iter__(self) -> "ShardSetSource":
        return self

    def __next__(self) -> tuple[str, str]:
        while True:
            if self.shard_pos >= len(self._shards):
                self.epoch, self.shard_pos, self.row = self.epoch + 1, 0, 0
                self._shards = self._my_shards(self.epoch)
                self._rows = None
            if self._rows is None:
                self._rows = self._open_current()
            doc = next(self._rows, None)
            if doc is None:
                self.shard_pos, self.row, self._rows = self.shard_pos + 1, 0, None
                continue
            self.row += 1
            if doc["text"] and not is_held_out(doc["id"], self.held_out):
                return doc["id"], doc["text"]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "shard_pos": self.shard_pos, "row": self.row}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.shard_pos, self.row = int(state["epoch"]), int(state["shard_pos"]), int(state["row"])
        self._shards = self._my_shards(self.epoch)
        self._rows = None


def held_out_shard_documents(shardset, fraction: float, max_chars: int) -> list[tuple[str, str]]:
    """The held-out documents of a shard set (by id hash), read in manifest order up to `max_chars`."""
    out, chars = [], 0
    for doc in shardset.iter_documents(columns=["id", "text"]):
        if doc["text"] and is_held_out(doc["id"], fraction):
            out.append((doc["id"], doc["text"]))
            chars += len(doc["text"])
            if chars >= max_chars:
                break
    return out
