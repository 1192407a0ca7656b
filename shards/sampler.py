"""ReplaySampler: an exact, seeded, resumable stream of documents in a target mixture, from a shard set.

The global sequence. Documents are grouped by mixture key (`domain`, or `domain/lang` where the
target names that key). Within a key, documents follow a seeded permutation, epoch by epoch
(epoch e > 0 only when a short key is upsampled). Keys are interleaved by the fair-queuing
largest-shortfall rule of `transforms.interleave` over units (tokens by default, or documents),
so every prefix is within one document of the target. This sequence depends only on the shard
set, the target, `by` and `seed`: never on rank, world size or dataloader workers.

Ranks. Rank r of W takes global positions r, r + W, r + 2W, ...; interleaving the ranks' outputs
position by position gives back the global sequence, for any W. Each rank runs the (cheap,
index-only) schedule for all positions and reads text only for its own. For DataLoader workers,
use rank' = rank * num_workers + worker and world_size' = world_size * num_workers.

Quality weighting (optional, `quality_temperature=T`): the whole key is instead ordered by a seeded
draw without replacement with probability ∝ exp(quality / T) (Gumbel top-k), best documents early
for small T. That order spans shards, so it suits materializing (`replaymill sample`) more than
streaming a large key.

Permutation within a key, cheap to read. The key's shards are put in a seeded order and cut
into blocks of `shuffle_block` shards; the documents of a block are permuted together (as
MosaicML streaming's block shuffles do). A block's shards are decoded once into rows and stay in a
small LRU (every key's current block) while consumed, so random order never means one shard decode
per document, and memory holds about `keys * shuffle_block` shards, never the whole set.

State dict (JSON, a few hundred bytes; see `state_dict`): the global position P reached, the
interleave state at P (units, documents, exhausted per key) and the settings that define the
sequence (checked on load). It is the same on every rank that has taken the same number of steps,
and loading it at any world size continues the global sequence at P.
"""
from __future__ import annotations

import hashlib
import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from replaymill.schemas.domains import WEB_TOPICS
from replaymill.schemas.manifest import ShardInfo
from replaymill.shards.reader import ShardSet, reader_slot
from replaymill.transforms.dsir import quality_log_weights
from replaymill.transforms.interleave import MixtureInterleave

STATE_FORMAT = "replaymill.sampler/1"
ON_SHORT = ("error", "upsample", "renormalize")
BY = ("tokens", "docs")


class ShortDomainError(RuntimeError):
    """A mixture key has fewer documents/tokens than the target asks for and on_short is "error".

    `detail` says which keys and by how much; `options` are the on_short values that would go on.
    `str()` names the library argument; a command line says its own flag with `hint(flag)`, so a
    user is told `--on-short upsample`, never Python syntax."""

    def __init__(self, detail: str, options: tuple[str, ...] = ("upsample", "renormalize")):
        self.detail, self.options = detail, options
        super().__init__(f"{detail} (on_short={' or '.join(repr(o) for o in options)})" if options else detail)

    def hint(self, flag: str) -> str:
        """The message with the remedy as a command-line flag, e.g. `hint("--on-short")`."""
        if not self.options:
            return self.detail
        return f"{self.detail}; rerun with {' or '.join(f'{flag} {o}' for o in self.options)}"


@dataclass
class _Key:
    """The documents of one mixture key: its shards and (tokens mode) per-document sizes."""

    name: str
    shards: list[ShardInfo]
    rows: np.ndarray                 # rows per shard
    sizes: list[np.ndarray] | None   # per shard, per row, tokens (None when no token counts are needed)
    quality: np.ndarray | None = None  # all rows' quality, in shard order (quality weighting only)

    @property
    def docs(self) -> int:
        return int(self.rows.sum())

    @property
    def tokens(self) -> int:
        return int(sum(int(s.sum()) for s in self.sizes or []))

    def mean_tokens(self) -> float:
        return self.tokens / self.docs if self.docs else 1.0


def key_for(domain: str, lang: str, keys: set[str]) -> str | None:
    """The mixture key a (domain, lang) shard belongs to: `domain/lang` if targeted, else `domain`;
    a web topic the target does not name (news, forum: `schemas.domains.WEB_TOPICS`) counts
    toward the web key; None when the target has no place for it."""
    if f"{domain}/{lang}" in keys:
        return f"{domain}/{lang}"
    if domain in WEB_TOPICS and not any(k == domain or k.startswith(domain + "/") for k in keys):
        domain = WEB_TOPICS[domain]
        if f"{domain}/{lang}" in keys:
            return f"{domain}/{lang}"
    return domain if domain in keys else None


class KeyOrder:
    """The order in which one mixture key's documents are drawn, epoch after epoch: a pure function
    of the seed, the key's name, its shards' row counts and `shuffle_block` (or, with quality
    weighting, its documents' quality), so it can be rebuilt anywhere from these few numbers.

    Within an epoch the shards are put in a seeded order and cut into blocks of `shuffle_block`
    shards; the documents of a block are permuted together. Positions p = epoch * docs + q.
    Small and picklable: a Beam worker holding one writes any stretch of the key's sequence
    (`segments`) without the sampler, the schedule or the other keys.
    """

    def __init__(self, name: str, rows: np.ndarray, seed: int, shuffle_block: int,
                 quality: np.ndarray | None = None, quality_temperature: float | None = None):
        self.name, self.rows, self.seed, self.shuffle_block = name, np.asarray(rows, dtype=np.int64), seed, shuffle_block
        self.quality, self.quality_temperature = quality, quality_temperature
        self.docs = int(self.rows.sum())
        self._cached: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None  # (epoch, shard order, block starts)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cached": None, "_epoch": None}

    def _rng(self, *parts: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(self.name.encode()), *parts])

    def block(self, epoch: int, q: int) -> tuple[int, np.ndarray, np.ndarray]:
        """(first within-epoch position, shard indices, rows) of the block holding position q of `epoch`."""
        cached = self._cached
        if cached is not None and cached[0][0] == epoch and cached[0][1] <= q < cached[0][1] + len(cached[1]):
            return cached[0][1], cached[1], cached[2]
        if self.quality_temperature is not None:  # the whole key is one block, ordered by quality draw
            noise = self._rng(epoch, 0).gumbel(size=self.docs)
            keys = quality_log_weights(self.quality, self.quality_temperature) + noise
            order = np.lexsort((np.arange(self.docs), -keys))
            shard_ids = np.repeat(np.arange(len(self.rows)), self.rows)
            rows = np.concatenate([np.zeros(0, dtype=np.int64)] + [np.arange(r) for r in self.rows])
            self._cached = ((epoch, 0), shard_ids[order], rows[order])
            return 0, self._cached[1], self._cached[2]
        if self._epoch is None or self._epoch[0] != epoch:  # the epoch's shard order, cut into blocks
            # (a permutation of one item needs no draw: each draw has its own fresh generator, so
            # skipping it changes nothing else)
            order = self._rng(epoch).permutation(len(self.rows)) if len(self.rows) > 1 else np.zeros(1, dtype=np.int64)
            block_rows = np.add.reduceat(self.rows[order], np.arange(0, len(order), self.shuffle_block))
            self._epoch = (epoch, order, np.concatenate([[0], np.cumsum(block_rows)]))
        _, order, starts = self._epoch
        if not 0 <= q < starts[-1]:
            raise IndexError(f"position {q} outside the {self.docs} documents of key {self.name!r}")
        i = int(np.searchsorted(starts, q, side="right")) - 1
        b = i * self.shuffle_block
        members = order[b:b + self.shuffle_block]
        start, n = int(starts[i]), int(starts[i + 1] - starts[i])
        shard_ids = np.repeat(members, self.rows[members])
        rows = np.concatenate([np.arange(self.rows[m]) for m in members])
        perm = self._rng(epoch, b + 1).permutation(n) if n > 1 else np.zeros(1, dtype=np.int64)
        self._cached = ((epoch, start), shard_ids[perm], rows[perm])
        return start, self._cached[1], self._cached[2]

    def locate(self, p: int) -> tuple[int, int, int]:
        """(shard index within the key, row, epoch) of the key's p-th document."""
        epoch, q = divmod(p, self.docs)
        start, shard_ids, rows = self.block(epoch, q)
        return int(shard_ids[q - start]), int(rows[q - start]), epoch

    def segments(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """The key's positions [start, stop) as (epoch, shard indices, rows) runs, one per block
        piece: bounded memory (one block) however long the stretch."""
        p = start
        while p < stop:
            epoch, q = divmod(p, self.docs)
            first, shard_ids, rows = self.block(epoch, q)
            end = min(first + len(shard_ids), q + (stop - p))
            yield epoch, shard_ids[q - first:end - first], rows[q - first:end - first]
            p += end - q


def renormalized_weights(weights: list[float], available: list[int], budget: int) -> list[float]:
    """Water-filling: keys that cannot supply `w_k * budget` get all they have, the rest share the remainder.

    Proportional to the original weights among the keys that are not capped, so a short key
    changes the others' ratios to each other not at all.
    """
    capped: set[int] = set()
    while True:
        remaining = budget - sum(available[k] for k in capped)
        free = [k for k in range(len(weights)) if k not in capped and weights[k] > 0]
        wsum = math.fsum(weights[k] for k in free)
        newly = [k for k in free if wsum > 0 and weights[k] / wsum * remaining > available[k]]
        if not newly:
            break
        capped.update(newly)
    alloc = [float(available[k]) if k in capped else
             (weights[k] / wsum * remaining if wsum > 0 and weights[k] > 0 else 0.0) for k in range(len(weights))]
    total = math.fsum(alloc)
    if total <= 0:
        raise ShortDomainError("no documents available for any key of the target", options=())
    return [a / total for a in alloc]


class ReplaySampler:
    """Iterator of document dicts in the exact interleaved order; `state_dict`/`load_state_dict` resume it.

    `budget` (in `budget_by` units, by default the same as `by`) ends the stream once reached (the
    last document may overshoot by less than one document) and lets `on_short` act up front: "error" raises
    ShortDomainError naming every short key, "renormalize" caps short keys at what they have and
    shares the rest (water-filling), "upsample" repeats short keys in new seeded epochs. Without a
    budget the stream is endless under "upsample"; under "renormalize" a key leaves the mixture when
    it runs out and the stream ends when all have; under "error" running out raises.

    Each yielded dict has the requested `columns` (all by default) plus scratch keys `_key` (the
    mixture key) and `_epoch` (0 unless upsampled), dropped by the shard sink.
    """

    def __init__(
        self,
        shardset: ShardSet,
        target: dict[str, float],
        *,
        by: str = "tokens",
        seed: int = 0,
        on_short: str = "error",
        rank: int = 0,
        world_size: int = 1,
        budget: int | None = None,
        budget_by: str | None = None,
        columns: list[str] | None = None,
        shuffle_block: int = 2,
        quality_temperature: float | None = None,
        token_counts: Callable[[ShardInfo], np.ndarray] | None = None,
    ):
        if by not in BY:
            raise ValueError(f"by must be one of {BY}, got {by!r}")
        budget_by = budget_by or by
        if budget_by not in BY:
            raise ValueError(f"budget_by must be one of {BY}, got {budget_by!r}")
        if on_short not in ON_SHORT:
            raise ValueError(f"on_short must be one of {ON_SHORT}, got {on_short!r}")
        if shuffle_block < 1:
            raise ValueError("shuffle_block must be >= 1")
        reader_slot(rank, world_size, 0, 1)
        positive = {k: float(v) for k, v in target.items() if v > 0}
        if not positive:
            raise ValueError("target needs at least one positive weight")
        total_w = math.fsum(positive.values())
        self.target = {k: positive[k] / total_w for k in sorted(positive)}
        self.shardset, self.by, self.seed, self.on_short = shardset, by, int(seed), on_short
        self.rank, self.world_size, self.budget, self.budget_by = rank, world_size, budget, budget_by
        self.columns, self.shuffle_block = columns, shuffle_block
        if quality_temperature is not None and quality_temperature <= 0:
            raise ValueError(f"quality_temperature must be > 0, got {quality_temperature}")
        self.quality_temperature = quality_temperature
        self.token_counts = token_counts  # per-row counts replacing the n_tokens column (another tokenizer)
        self.keys = self._index(list(self.target), need_tokens=by == "tokens" or budget_by == "tokens")
        self.available = [k.docs if by == "docs" else k.tokens for k in self.keys]
        self.weights = self._effective_weights()
        self.interleave = MixtureInterleave(self.weights)
        self.budget_used = 0  # in budget_by units, so a docs-weighted stream can stop at a token budget
        self._orders = [KeyOrder(k.name, k.rows, self.seed, shuffle_block, k.quality, quality_temperature)
                        for k in self.keys]
        self._next_sizes: list[int | None] = [None] * len(self.keys)  # each key's next document, looked up once
        self._rows_cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._rows_cache_size = len(self.keys) * shuffle_block + 1  # every key's current block
        for k, key in enumerate(self.keys):
            if key.docs == 0:
                self._run_out(k)

    # ----- index ---------------------------------------------------------------------------------
    def _index(self, names: list[str], need_tokens: bool) -> list[_Key]:
        """Group the set's shards by mixture key; read per-document token counts once if needed
        (only the n_tokens buffers, by random access: no text is decompressed for the index)."""
        wanted = set(names)
        by_key: dict[str, list[ShardInfo]] = {n: [] for n in names}
        for info in self.shardset.shards:
            key = key_for(info.domain, info.lang, wanted)
            if key is not None and info.rows > 0:
                by_key[key].append(info)
        keys = []
        for name in names:
            shards = by_key[name]
            sizes = None
            if need_tokens:
                sizes = []
                for info in shards:
                    if self.token_counts is not None:
                        arr = np.asarray(self.token_counts(info), dtype=np.int64)
                    else:
                        col = self.shardset.read_index_columns(info, ["n_tokens"]).column("n_tokens")
                        arr = np.asarray(col.fill_null(1).to_numpy(zero_copy_only=False), dtype=np.int64)
                    sizes.append(np.maximum(arr, 1))
            quality = None
            if self.quality_temperature is not None:
                quality = np.concatenate([np.zeros(0)] + [
                    np.asarray(self.shardset.read_index_columns(info, ["quality"]).column("quality")
                               .fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64) for info in shards])
            keys.append(_Key(name, shards, np.array([s.rows for s in shards], dtype=np.int64), sizes, quality))
        return keys

    def _effective_weights(self) -> list[float]:
        weights = [self.target[k.name] for k in self.keys]
        if self.budget is None or self.on_short == "upsample":
            if self.on_short == "upsample":
                empty = [k.name for k in self.keys if k.docs == 0]
                if empty:
                    raise ShortDomainError(f"cannot upsample keys with no documents: {', '.join(empty)} "
                                           "(renormalize drops them and shares their weight)", options=("renormalize",))
            return weights
        budget = self.budget_in_units(weights)
        need = [w * budget for w in weights]
        short = [(k.name, need[i], self.available[i]) for i, k in enumerate(self.keys) if need[i] > self.available[i]]
        if short and self.on_short == "error":
            lines = "; ".join(f"{n}: needs {need:,.0f} {self.by}, has {have:,}" for n, need, have in short)
            raise ShortDomainError(f"target short for {len(short)} key(s) at budget {self.budget:,} {self.budget_by}: "
                                   f"{lines}")
        return renormalized_weights(weights, self.available, round(budget)) if short else weights

    def budget_in_units(self, weights: list[float]) -> float:
        """The budget in `by` units: a token budget over a docs-weighted mix (or the reverse) is
        converted with each key's mean document length."""
        if self.budget_by == self.by:
            return float(self.budget)
        means = [k.mean_tokens() for k in self.keys]
        if self.by == "docs":   # tokens per document of the mix = sum w_k * mean_k
            return self.budget / max(1e-9, sum(w * m for w, m in zip(weights, means)))
        return self.budget / max(1e-9, sum(w / m for w, m in zip(weights, means)))  # docs -> tokens

    # ----- within-key order ----------------------------------------------------------------------
    def key_order(self, k: int) -> KeyOrder:
        """Key k's document order (`KeyOrder`), shared with whoever writes its documents."""
        return self._orders[k]

    def _locate(self, k: int, p: int) -> tuple[int, int, int]:
        """(shard index within key, row, epoch) of the p-th document of key k's sequence."""
        return self._orders[k].locate(p)

    def _tokens(self, k: int, p: int) -> int:
        s, row, _ = self._locate(k, p)
        return int(self.keys[k].sizes[s][row])

    def _size(self, k: int, p: int) -> int:
        return 1 if self.by == "docs" else self._tokens(k, p)

    # ----- schedule ------------------------------------------------------------------------------
    def _run_out(self, k: int) -> None:
        if self.on_short == "error":
            key = self.keys[k]
            raise ShortDomainError(
                f"key {key.name!r} ran out after {self.interleave.docs[k]:,} documents "
                f"({self.interleave.units[k]:,} {self.by}; it has {key.docs:,} documents)")
        self.interleave.exhaust(k)

    def _step(self) -> tuple[int, int] | None:
        """Advance the global schedule by one position: (key, position within key) or None at the end."""
        machine = self.interleave
        if self.budget is not None and self.budget_used >= self.budget:
            return None
        for k in machine.active:
            if self.on_short != "upsample" and machine.docs[k] >= self.keys[k].docs:
                self._run_out(k)
        sizes = self._next_sizes
        for j in range(len(sizes)):  # only the key taken last needs its next size looked up
            if sizes[j] is None:
                sizes[j] = 0 if machine.exhausted[j] else self._size(j, machine.docs[j])
        k = machine.choose(sizes)
        if k is None:
            return None
        p, size = machine.docs[k], sizes[k]
        machine.advance(k, size)
        sizes[k] = None
        self.budget_used += size if self.budget_by == self.by else (1 if self.budget_by == "docs" else self._tokens(k, p))
        return k, p

    def run_schedule(self) -> int:
        """Step the global schedule to its end keeping nothing but its counts (the interleave state,
        the budget used): how many documents a materialized sample takes from each key, in memory
        that does not grow with the budget. Returns the positions stepped."""
        if self.budget is None and self.on_short == "upsample":
            raise ValueError("an upsampled stream without a budget never ends; give a budget")
        steps = 0
        while self._step() is not None:
            steps += 1
        return steps

    @property
    def position(self) -> int:
        """Global positions stepped so far (all ranks together)."""
        return sum(self.interleave.docs)

    def iter_plan(self) -> Iterator[tuple[str, ShardInfo, int, int]]:
        """This rank's picks without reading text: (key, shard, row, epoch), in order (used to materialize).

        The schedule is stepped a whole block of `world_size` positions at a time, so after each
        yield every rank sits at the same global position: the one its state dict records.
        """
        while True:
            block = []
            while len(block) < self.world_size:
                picked = self._step()
                if picked is None:
                    break
                block.append(picked)
            if len(block) > self.rank:
                k, p = block[self.rank]
                s, row, epoch = self._locate(k, p)
                yield self.keys[k].name, self.keys[k].shards[s], row, epoch
            if len(block) < self.world_size:
                return

    def _rows(self, info: ShardInfo) -> list[dict[str, Any]]:
        """A shard's rows as dicts, decoded once while the shard is in the working set (small LRU)."""
        rows = self._rows_cache.get(info.path)
        if rows is None:
            rows = self.shardset.read_table(info, self.columns, cache=False).to_pylist()
            self._rows_cache[info.path] = rows
            while len(self._rows_cache) > self._rows_cache_size:
                self._rows_cache.popitem(last=False)
        else:
            self._rows_cache.move_to_end(info.path)
        return rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for name, info, row, epoch in self.iter_plan():
            doc = dict(self._rows(info)[row])
            doc["_key"], doc["_epoch"] = name, epoch
            yield doc

    # ----- state ---------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Short hash of the shard set's checksums: a state dict only resumes on the same data.
        Computed once: a trainer asks for the state at every document."""
        if getattr(self, "_fingerprint", None) is None:
            h = hashlib.sha256()
            for info in self.shardset.shards:
                h.update(info.sha256.encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def _settings(self) -> dict[str, Any]:
        return {"seed": self.seed, "by": self.by, "on_short": self.on_short, "budget": self.budget,
                "budget_by": self.budget_by, "quality_temperature": self.quality_temperature,
                "shuffle_block": self.shuffle_block, "target": self.target, "shards": self.fingerprint()}

    def state_dict(self) -> dict[str, Any]:
        """{"format", "position", "interleave": {units, docs, exhausted}, "budget_used", "settings"}; JSON-safe."""
        return {"format": STATE_FORMAT, "position": self.position, "interleave": self.interleave.state_dict(),
                "budget_used": self.budget_used, "settings": self._settings()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the global sequence at the saved position (any rank, any world size)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a ReplaySampler state (format {state.get('format')!r}, expected {STATE_FORMAT!r})")
        mine, theirs = self._settings(), state["settings"]
        diff = [f for f in mine if mine[f] != theirs.get(f)]
        if diff:
            raise ValueError(f"state dict was made with different settings: {', '.join(diff)} "
                             f"(saved {[theirs.get(f) for f in diff]}, now {[mine[f] for f in diff]})")
        self.interleave.load_state_dict(state["interleave"])
        self._next_sizes = [None] * len(self.keys)
        self.budget_used = int(state["budget_used"])

    def shortfall(self) -> dict[str, dict[str, int]]:
        """Keys that cannot supply their share of the budget: {key: {"needed", "available"}} in `by` units."""
        if self.budget is None:
            return {}
        budget = self.budget_in_units([self.target[k.name] for k in self.keys])
        return {k.name: {"needed": round(self.target[k.name] * budget), "available": self.available[i]}
                for i, k in enumerate(self.keys) if self.target[k.name] * budget > self.available[i]}

    # ----- report --------------------------------------------------------------------------------
    def achieved(self) -> dict[str, dict[str, int]]:
        """Per key: units and documents taken so far by the global schedule, and repeated documents."""
        m = self.interleave
        return {k.name: {"units": m.units[i], "docs": m.docs[i], "repeats": max(0, m.docs[i] - k.docs)}
                for i, k in enumerate(self.keys)}
