"""Mergeable audit accumulators: counts, histograms, duplicate rates and distinct-count sketches.

Why mergeable: the audit of a raw corpus runs as a Beam `CombineGlobally`, where many workers
each accumulate a part of the input and the runner merges the parts in any order and grouping.
So every field here is either a sum (counts, histograms over *fixed* bins) or a HyperLogLog
register array (merged by element-wise max); `merge` is associative and commutative, memory is
independent of the number of documents, and the result does not depend on how input was split.

Accumulation is vectorized over an Arrow table or record batch (`add_table`): one numpy
`bincount` per statistic per batch instead of Python work per document.
"""
from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datasketch import HyperLogLogPlusPlus

from replaymill.schemas.document import DOC_SCHEMA
from replaymill.transforms.normalize import dedup_key

STATS_VERSION = 1

UNKNOWN_DOMAIN = "unknown"
UNKNOWN_LANG = "und"

QUALITY_BINS = 20
QUALITY_EDGES: tuple[float, ...] = tuple(round(i / QUALITY_BINS, 4) for i in range(QUALITY_BINS + 1))
"""Quality bins [0, .05), [.05, .1), ..., [.95, 1.0]; a score of exactly 1.0 falls in the last bin."""

LENGTH_EDGES: tuple[int, ...] = (0,) + tuple(2**k for k in range(5, 21))
"""Length bins in characters: [0, 32), [32, 64), ..., [2^19, 2^20), [2^20, inf): powers of two, so
web pages, books and code files each land in a readable number of bins and all of them merge."""

STAT_COLUMNS: tuple[str, ...] = (
    "domain", "lang", "n_chars", "n_tokens", "quality", "dup_exact_count", "dup_near_count",
)
"""Columns the counting statistics read (a projection: shards need not decode `text` for these)."""

DISTINCT_COLUMNS: tuple[str, ...] = ("url", "text")
"""Extra columns the distinct-count sketches read."""

TEXT_IDENTITIES = ("normalized", "exact")

HLL_PRECISION = 14
"""2^14 registers: 16 KiB per sketch, relative standard error 1.04 / sqrt(2^14) = 0.8%."""


def hll_relative_error(precision: int = HLL_PRECISION) -> float:
    """Relative standard error of a HyperLogLog with 2^precision registers (Flajolet et al.)."""
    return 1.04 / math.sqrt(2**precision)


_HOST_RE = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]/?#]*\]|[^:/?#]*)"


def url_hosts(urls: pa.Array) -> pa.Array:
    """Lower-cased host of each URL (vectorized regex, as urllib.parse.urlsplit reads the authority);
    null where a string has no scheme://host (so junk URLs are not hosts)."""
    hosts = pc.struct_field(pc.extract_regex(urls, _HOST_RE), "host")
    hosts = pc.utf8_trim(pc.utf8_lower(hosts), "[]")  # IPv6 literals without brackets, as urllib gives them
    return pc.if_else(pc.equal(hosts, ""), pa.scalar(None, pa.string()), hosts)


def hll_add(reg: np.ndarray, hashes: np.ndarray, precision: int) -> None:
    """Add 64-bit hashes to HyperLogLog++ registers in place, vectorized.

    Same register rule as datasketch's `HyperLogLogPlusPlus.update` (index: the low `precision`
    bits; value: rank of the first 1-bit of the rest, counted from the top of its 64-p bits), so
    datasketch's `count` and `merge` apply; only the hash differs (xxh3-64 of bytes, computed once,
    instead of a SHA-1 per `update` call), and every sketch here uses the same one.
    """
    if hashes.size == 0:
        return
    idx = (hashes & np.uint64((1 << precision) - 1)).astype(np.intp)
    w = hashes >> np.uint64(precision)
    hi = (w >> np.uint64(32)).astype(np.float64)
    lo = (w & np.uint64(0xFFFFFFFF)).astype(np.float64)  # 32-bit halves are exact in float64
    bit_length = np.where(hi > 0, 32 + np.frexp(hi)[1], np.frexp(lo)[1])
    rank = (64 - precision) - bit_length + 1
    np.maximum.at(reg, idx, rank.astype(reg.dtype))


def _hashes_of_bytes(values: pa.Array) -> np.ndarray:
    """xxh3-64 of each non-null string's UTF-8 bytes (cast to binary: no decode/encode round trip)."""
    values = values.drop_null().cast(pa.binary())
    return np.fromiter((xxhash.xxh3_64_intdigest(b) for b in values.to_pylist()), dtype=np.uint64, count=len(values))


def _hashes_of_normalized(texts: pa.Array) -> np.ndarray:
    """64 bits of each non-null text's exact-dedup key (already a BLAKE2b digest of the normalized text)."""
    texts = texts.drop_null()
    return np.fromiter((int.from_bytes(dedup_key(t)[:8], "little") for t in texts.to_pylist()),
                       dtype=np.uint64, count=len(texts))


def _flat(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class DistinctSketches:
    """HyperLogLog++ sketches of distinct texts, URLs and URL hosts.

    `text_identity` says when two texts are the same: "normalized" counts a text by its
    exact-dedup key (`transforms.normalize.dedup_key`), so `texts` estimates how many documents
    exact dedup would keep (the question for raw input; it costs about a millisecond per 4 kB
    document, the price of Unicode normalization); "exact" counts the text bytes as they are
    (microseconds; enough for shard sets, which exact dedup already made distinct when normalized).
    """

    NAMES = ("texts", "urls", "hosts")

    def __init__(self, precision: int = HLL_PRECISION, text_identity: str = "normalized"):
        if text_identity not in TEXT_IDENTITIES:
            raise ValueError(f"text identity must be one of {TEXT_IDENTITIES}, not {text_identity!r}")
        self.precision = precision
        self.text_identity = text_identity
        self.sketches = {name: HyperLogLogPlusPlus(p=precision) for name in self.NAMES}

    def add(self, texts: pa.Array | pa.ChunkedArray | None, urls: pa.Array | pa.ChunkedArray | None) -> None:
        """Feed one batch's text and URL columns; nulls and empty URLs are not counted as values."""
        if texts is not None:
            texts = _flat(texts)
            hashes = _hashes_of_normalized(texts) if self.text_identity == "normalized" else _hashes_of_bytes(texts)
            hll_add(self.sketches["texts"].reg, hashes, self.precision)
        if urls is not None:
            urls = _flat(urls)
            urls = pc.if_else(pc.equal(urls, ""), pa.scalar(None, pa.string()), urls)
            hll_add(self.sketches["urls"].reg, _hashes_of_bytes(urls), self.precision)
            hll_add(self.sketches["hosts"].reg, _hashes_of_bytes(url_hosts(urls)), self.precision)

    def merge(self, other: "DistinctSketches") -> None:
        if other.text_identity != self.text_identity:
            raise ValueError(f"cannot merge {self.text_identity} and {other.text_identity} distinct-text sketches")
        for name in self.NAMES:
            self.sketches[name].merge(other.sketches[name])

    def estimates(self) -> dict[str, int]:
        return {name: int(round(s.count())) for name, s in self.sketches.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "text_identity": self.text_identity,
            "registers": {n: base64.b64encode(s.reg.astype(np.int8).tobytes()).decode("ascii")
                          for n, s in self.sketches.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DistinctSketches":
        out = cls(int(d["precision"]), d["text_identity"])
        for name, b64 in d["registers"].items():
            reg = np.frombuffer(base64.b64decode(b64), dtype=np.int8).copy()
            out.sketches[name] = HyperLogLogPlusPlus(p=out.precision, reg=reg)
        return out


def _labels(column: pa.ChunkedArray | pa.Array, missing: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their label strings for a string column, nulls and "" mapped to `missing`."""
    col = pc.fill_null(column, missing)
    col = pc.if_else(pc.equal(col, ""), missing, col)
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks() if enc.num_chunks != 1 else enc.chunk(0)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def _numbers(column: pa.ChunkedArray | pa.Array, fill: float) -> np.ndarray:
    """A numeric column as float64 with nulls (and NaN) replaced by `fill`."""
    arr = pc.fill_null(column, fill).to_numpy(zero_copy_only=False).astype(np.float64)
    arr[np.isnan(arr)] = fill
    return arr


def quality_bins(q: np.ndarray) -> np.ndarray:
    """Bin index of each quality score (scores are clipped to [0, 1]; NaN is handled by the caller)."""
    return np.minimum((np.clip(q, 0.0, 1.0) * QUALITY_BINS).astype(np.int64), QUALITY_BINS - 1)


def length_bins(n_chars: np.ndarray) -> np.ndarray:
    """Bin index of each document length in LENGTH_EDGES (the last bin is open-ended)."""
    return np.searchsorted(np.asarray(LENGTH_EDGES), n_chars, side="right") - 1


def _grouped(codes: np.ndarray, groups: int, bins: np.ndarray, n_bins: int) -> np.ndarray:
    """A (groups x n_bins) histogram: count of rows per (group code, bin)."""
    flat = np.bincount(codes * n_bins + bins, minlength=groups * n_bins)
    return flat.reshape(groups, n_bins).astype(np.int64)


class AuditStats:
    """Everything the audit counts, as sums and sketches that merge exactly.

    Per (domain, language): documents, characters, tokens. Per domain: a quality histogram
    (plus a count of unscored documents), a length histogram, the rows and the documents they
    represent before exact and near dedup (from `dup_exact_count` / `dup_near_count`). Overall:
    documents whose `n_tokens` was missing, rejected records by reason (raw input), and optional
    HyperLogLog sketches of distinct texts, URLs and hosts.
    """

    def __init__(self, distinct: bool = True, hll_precision: int = HLL_PRECISION, text_identity: str = "normalized"):
        self.cells: dict[tuple[str, str], np.ndarray] = {}       # (domain, lang) -> [docs, chars, tokens]
        self.quality: dict[str, np.ndarray] = {}                 # domain -> QUALITY_BINS + 1 (last: unscored)
        self.quality_sum: dict[str, float] = {}                  # domain -> sum of scores (for the mean)
        self.length: dict[str, np.ndarray] = {}                  # domain -> len(LENGTH_EDGES)
        self.dups: dict[str, np.ndarray] = {}                    # domain -> [rows, sum exact, sum near]
        self.tokens_missing = 0
        self.rejects: dict[str, int] = {}
        self.sketches = DistinctSketches(hll_precision, text_identity) if distinct else None

    # ---- accumulation -------------------------------------------------------------------

    def add_table(self, table: pa.Table | pa.RecordBatch) -> "AuditStats":
        """Add every row of `table` (needs STAT_COLUMNS; the sketches also read DISTINCT_COLUMNS present)."""
        n = table.num_rows
        if n == 0:
            return self
        d_codes, d_names = _labels(table.column("domain"), UNKNOWN_DOMAIN)
        l_codes, l_names = _labels(table.column("lang"), UNKNOWN_LANG)
        n_dom, n_lang = len(d_names), len(l_names)
        chars = _numbers(table.column("n_chars"), 0.0)
        tokens_raw = table.column("n_tokens")
        self.tokens_missing += int(tokens_raw.null_count)
        tokens = _numbers(tokens_raw, 0.0)

        key = d_codes * n_lang + l_codes
        size = n_dom * n_lang
        docs_c = np.bincount(key, minlength=size)
        chars_c = np.rint(np.bincount(key, weights=chars, minlength=size)).astype(np.int64)
        tokens_c = np.rint(np.bincount(key, weights=tokens, minlength=size)).astype(np.int64)
        for k in np.flatnonzero(docs_c):
            cell = (d_names[k // n_lang], l_names[k % n_lang])
            add = np.array([docs_c[k], chars_c[k], tokens_c[k]], dtype=np.int64)
            self.cells[cell] = self.cells[cell] + add if cell in self.cells else add

        q_raw = _numbers(table.column("quality"), np.nan)
        q_missing = np.isnan(q_raw)
        q_bins = np.where(q_missing, QUALITY_BINS, quality_bins(np.nan_to_num(q_raw)))
        q_hist = _grouped(d_codes, n_dom, q_bins, QUALITY_BINS + 1)
        q_sum = np.bincount(d_codes, weights=np.where(q_missing, 0.0, q_raw), minlength=n_dom)
        len_hist = _grouped(d_codes, n_dom, length_bins(chars), len(LENGTH_EDGES))
        exact = np.maximum(_numbers(table.column("dup_exact_count"), 1.0), 1.0)
        near = np.maximum(_numbers(table.column("dup_near_count"), 1.0), 1.0)
        rows_d = np.bincount(d_codes, minlength=n_dom)
        exact_d = np.rint(np.bincount(d_codes, weights=exact, minlength=n_dom)).astype(np.int64)
        near_d = np.rint(np.bincount(d_codes, weights=near, minlength=n_dom)).astype(np.int64)
        for i, dom in enumerate(d_names):
            if rows_d[i] == 0:
                continue
            self._add_to(self.quality, dom, q_hist[i])
            self.quality_sum[dom] = self.quality_sum.get(dom, 0.0) + float(q_sum[i])
            self._add_to(self.length, dom, len_hist[i])
            self._add_to(self.dups, dom, np.array([rows_d[i], exact_d[i], near_d[i]], dtype=np.int64))

        if self.sketches is not None:
            self.sketches.add(
                table.column("text") if "text" in table.column_names else None,
                table.column("url") if "url" in table.column_names else None,
            )
        return self

    def add_documents(self, docs: list[dict[str, Any]]) -> "AuditStats":
        """Add in-flight document dicts (as Beam carries them) through the same vectorized path."""
        if not docs:
            return self
        cols = STAT_COLUMNS + (DISTINCT_COLUMNS if self.sketches is not None else ())
        table = pa.table({c: [d.get(c) for d in docs] for c in cols}, schema=_stat_schema(cols))
        return self.add_table(table)

    def add_rejects(self, reason: str, count: int = 1) -> "AuditStats":
        """Count records a reader or filter rejected (raw input has no manifest funnel)."""
        self.rejects[reason] = self.rejects.get(reason, 0) + count
        return self

    @staticmethod
    def _add_to(table: dict[str, np.ndarray], key: str, value: np.ndarray) -> None:
        table[key] = table[key] + value if key in table else value.copy()

    def merge(self, other: "AuditStats") -> "AuditStats":
        """Add `other` into self (associative, commutative); returns self."""
        for store, o_store in ((self.cells, other.cells), (self.quality, other.quality),
                               (self.length, other.length), (self.dups, other.dups)):
            for k, v in o_store.items():
                self._add_to(store, k, v)
        for k, v in other.quality_sum.items():
            self.quality_sum[k] = self.quality_sum.get(k, 0.0) + v
        for k, v in other.rejects.items():
            self.rejects[k] = self.rejects.get(k, 0) + v
        self.tokens_missing += other.tokens_missing
        if other.sketches is not None:
            if self.sketches is None:
                self.sketches = DistinctSketches(other.sketches.precision, other.sketches.text_identity)
            self.sketches.merge(other.sketches)
        return self

    # ---- views ---------------------------------------------------------------------------

    @property
    def docs(self) -> int:
        return int(sum(int(v[0]) for v in self.cells.values()))

    def domains(self) -> list[str]:
        return sorted({d for d, _ in self.cells})

    def totals_by(self, axis: int) -> dict[str, dict[str, int]]:
        """docs/chars/tokens summed by domain (axis 0) or language (axis 1), sorted by name."""
        out: dict[str, np.ndarray] = {}
        for cell, v in self.cells.items():
            self._add_to(out, cell[axis], v)
        return {k: _totals(out[k]) for k in sorted(out)}

    # ---- serialization (the Beam pipeline hands this to the CLI as JSON) ---------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats_version": STATS_VERSION,
            "quality_edges": list(QUALITY_EDGES),
            "length_edges": list(LENGTH_EDGES),
            "cells": [[d, l, *map(int, v)] for (d, l), v in sorted(self.cells.items())],
            "quality": {k: v.tolist() for k, v in sorted(self.quality.items())},
            "quality_sum": dict(sorted(self.quality_sum.items())),
            "length": {k: v.tolist() for k, v in sorted(self.length.items())},
            "dups": {k: v.tolist() for k, v in sorted(self.dups.items())},
            "tokens_missing": self.tokens_missing,
            "rejects": dict(sorted(self.rejects.items())),
            "sketches": self.sketches.to_dict() if self.sketches is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AuditStats":
        if d.get("stats_version") != STATS_VERSION:
            raise ValueError(f"audit stats version {d.get('stats_version')!r}, this code reads {STATS_VERSION}")
        if tuple(d["quality_edges"]) != QUALITY_EDGES or tuple(d["length_edges"]) != LENGTH_EDGES:
            raise ValueError("audit stats were binned with different histogram edges; they cannot be merged")
        out = cls(distinct=False)
        out.cells = {(c[0], c[1]): np.array(c[2:], dtype=np.int64) for c in d["cells"]}
        out.quality = {k: np.array(v, dtype=np.int64) for k, v in d["quality"].items()}
        out.quality_sum = {k: float(v) for k, v in d["quality_sum"].items()}
        out.length = {k: np.array(v, dtype=np.int64) for k, v in d["length"].items()}
        out.dups = {k: np.array(v, dtype=np.int64) for k, v in d["dups"].items()}
        out.tokens_missing = int(d["tokens_missing"])
        out.rejects = {k: int(v) for k, v in d["rejects"].items()}
        out.sketches = DistinctSketches.from_dict(d["sketches"]) if d.get("sketches") else None
        return out


def _totals(v: np.ndarray) -> dict[str, int]:
    return {"docs": int(v[0]), "chars": int(v[1]), "tokens": int(v[2])}


def _stat_schema(columns: tuple[str, ...]) -> pa.Schema:
    """Arrow types of the audited columns, taken from the document schema (one source of truth)."""
    return pa.schema([DOC_SCHEMA.field(c) for c in columns])


def duplicate_rate(rows_represented: int, rows: int) -> float:
    """Fraction of original documents removed as duplicates: sum(count - 1) / sum(count)."""
    return (rows_represented - rows) / rows_represented if rows_represented else 0.0
