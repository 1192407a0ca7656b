"""Global near-duplicate removal: MinHash LSH buckets, then connected components, all through Beam shuffles.

Graph of the stage (every arrow into a group is a shuffle; nothing goes through driver memory):

    docs -> (node key, doc) -> BatchElements -> SignatureFn (vectorized MinHash, band hashes)
         -> ((band, band_hash), node) -> GroupByKey -> star edges to the bucket's smallest node
         -> [optional: Distinct all-pairs -> join shingle sets twice -> keep pairs with exact Jaccard >= t]
         -> K unrolled rounds of large-star / small-star (each a GroupByKey)
         -> per-node star check: converged -> label = (centre, component size)
                                 not converged -> all edges to one worker, union-find behind a size guard
         -> CoGroupByKey(docs, labels) -> kept (centre, dup_near_count = size) | rejects (matched_id = centre)

Why this shape: Beam has no loops, so the component rounds are unrolled `max_rounds` times; once a
round reaches the fixed point (a forest of stars centred on each component's smallest node) later
rounds return the same edges. Whether the fixed point was reached is checked inside the graph, and
a non-converged graph falls back to an exact single-worker union-find (or fails with a clear
message above `max_fallback_edges`), so the result is always the true components. Every decision is a
function of sets of node keys, so output is identical for any worker count and input order.

Node keys are ``id \\0 source \\0 url \\0 content hash``: the same total order exact dedup uses for
its representative (`transforms.order`), and unique even when ids repeat within or across corpora.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from replaymill.pipeline.rejects import RejectEmitter
from replaymill.schemas.dedup import NearDedupConfig
from replaymill.transforms.components import (
    Edge,
    jaccard,
    large_star,
    pair_edges,
    small_star,
    star_check,
    star_edges,
    union_find_components,
)
from replaymill.transforms.lsh import band_hashes, band_key
from replaymill.transforms.minhash import Permutations, batch_shingles, signatures_from_shingles
from replaymill.transforms.order import doc_rank

REJECTS_TAG = "rejects"
SHINGLES_TAG = "shingles"
REASON = "near_duplicate"
STAGE = "near_dedup"
NAMESPACE = "near_dedup"

Label = tuple[str, int]  # (component centre's node key, component size; 0 on non-centre nodes)


def node_key(doc: dict[str, Any]) -> str:
    """The graph node of a document: its rank (id, source, url, content hash) joined by NUL."""
    return "\x00".join(doc_rank(doc))


def id_of(key: str) -> str:
    """The document id inside a node key."""
    return key.rsplit("\x00", 3)[0]


class SignatureFn(beam.DoFn):
    """A batch of (node key, document) -> ((band, band hash), node key) pairs, and optionally their shingle sets.

    The keys arrive with the documents because the same keyed collection feeds the final join:
    a node key hashes the whole document (`transforms.order.content_hash`), so it is computed once."""

    def __init__(self, ngram: int, bands: int, rows: int, seed: int, keep_shingles: bool):
        self._ngram, self._bands, self._rows, self._seed = ngram, bands, rows, seed
        self._keep_shingles = keep_shingles
        self._docs = Metrics.counter(NAMESPACE, "docs_in")
        self._short = Metrics.counter(NAMESPACE, "docs_too_short_for_shingles")

    def setup(self) -> None:
        self._perms = Permutations.create(self._bands * self._rows, self._seed)

    def process(self, batch: list[tuple[str, dict[str, Any]]]) -> Iterator[Any]:
        keys = [k for k, _ in batch]
        texts = [d["text"] if isinstance(d.get("text"), str) else "" for _, d in batch]
        shingles = batch_shingles(texts, self._ngram)
        sig = signatures_from_shingles(shingles, self._perms)
        has = shingles.counts() > 0
        self._docs.inc(len(batch))
        self._short.inc(int(len(batch) - np.count_nonzero(has)))
        bh = band_hashes(sig[has], self._bands, self._rows).tolist()
        for row, i in enumerate(np.flatnonzero(has).tolist()):
            for b, h in enumerate(bh[row]):
                yield band_key(b, h), keys[i]
            if self._keep_shingles:
                yield pvalue.TaggedOutput(SHINGLES_TAG, (keys[i], shingles.unique_of(i).tobytes()))


def bucket_edges(members: Iterable[str], verify_max_bucket: int | None) -> list[Edge]:
    """Candidate edges of one LSH bucket: star edges, or all pairs (capped) when they will be verified."""
    if verify_max_bucket is None:
        return star_edges(members)
    return pair_edges(members, verify_max_bucket)


class _BucketEdgesFn(beam.DoFn):
    def __init__(self, verify_max_bucket: int | None):
        self._cap = verify_max_bucket
        self._buckets = Metrics.counter(NAMESPACE, "lsh_buckets_with_candidates")
        self._edges = Metrics.counter(NAMESPACE, "candidate_edges")

    def process(self, kv: tuple[bytes, Iterable[str]]) -> Iterator[Edge]:
        edges = bucket_edges(kv[1], self._cap)
        if edges:
            self._buckets.inc()
            self._edges.inc(len(edges))
        yield from edges


class VerifyPairs(beam.PTransform):
    """Keep candidate edges whose exact shingle-set Jaccard reaches `threshold` (two joins by node key)."""

    def __init__(self, shingles: beam.PCollection, threshold: float):
        super().__init__()
        self._shingles, self._threshold = shingles, threshold

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        threshold = self._threshold
        kept = Metrics.counter(NAMESPACE, "verified_pairs_kept")
        dropped = Metrics.counter(NAMESPACE, "verified_pairs_dropped")

        def attach_child(kv: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, bytes]]]:
            child, g = kv
            sh = next(iter(g["sh"]), None)
            if sh is not None:
                for parent in g["parents"]:
                    yield parent, (child, sh)

        def check(kv: tuple[str, dict[str, list]]) -> Iterator[Edge]:
            parent, g = kv
            sh_parent = next(iter(g["sh"]), None)
            if sh_parent is not None:
                a = np.frombuffer(sh_parent, dtype=np.uint64)
                for child, sh_child in g["children"]:
                    if jaccard(a, np.frombuffer(sh_child, dtype=np.uint64)) >= threshold:
                        kept.inc()
                        yield child, parent
                    else:
                        dropped.inc()

        with_child = (
            {"parents": edges | "Dedup" >> beam.Distinct(), "sh": self._shingles}
            | "JoinChild" >> beam.CoGroupByKey()
            | "AttachChild" >> beam.FlatMap(attach_child)
        )
        return (
            {"children": with_child, "sh": self._shingles}
            | "JoinParent" >> beam.CoGroupByKey()
            | "Check" >> beam.FlatMap(check)
        )


def _both_directions(e: Edge) -> Iterator[Edge]:
    yield e
    yield e[1], e[0]


def _large_star(kv: tuple[str, Iterable[str]]) -> Iterator[Edge]:
    return iter(large_star(kv[0], kv[1]))


def _small_star(kv: tuple[str, Iterable[str]]) -> Iterator[Edge]:
    return iter(small_star(kv[0], kv[1]))


def _node_sides(e: Edge) -> Iterator[tuple[str, tuple[str, str]]]:
    yield e[0], ("p", e[1])
    yield e[1], ("c", e[0])


class _StarCheckFn(beam.DoFn):
    """Per node: label it from its converged star, and report whether the star shape holds there."""

    VIOLATIONS = "violations"

    def process(self, kv: tuple[str, Iterable[tuple[str, str]]]) -> Iterator[Any]:
        node, sides = kv
        parents = {n for side, n in sides if side == "p"}
        children = {n for side, n in sides if side == "c"}
        if not star_check(node, parents, children):
            yield pvalue.TaggedOutput(self.VIOLATIONS, 1)
            return
        if parents:
            yield node, (next(iter(parents)), 0)
        else:
            yield node, (node, 1 + len(children))


def _union_find_labels(kv: tuple[int, Iterable[Edge]], max_edges: int, rounds: int) -> Iterator[tuple[str, Label]]:
    """Fallback when the unrolled rounds did not converge: exact components on one worker, size-guarded."""
    edges: list[Edge] = []
    for e in kv[1]:
        edges.append(e)
        if len(edges) > max_edges:
            raise RuntimeError(
                f"near dedup: connected components did not converge in {rounds} large-star/small-star "
                f"rounds and more than max_fallback_edges={max_edges} edges remain for the single-worker "
                "union-find; raise near_dedup.max_rounds (or max_fallback_edges) in the recipe"
            )
    Metrics.counter(NAMESPACE, "components_fallback_union_find").inc()
    roots = union_find_components(edges)
    sizes: dict[str, int] = {}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    for node, root in roots.items():
        yield node, (root, sizes[root] if node == root else 0)


class ConnectedComponents(beam.PTransform):
    """(child, parent) edges -> (node, (centre, size)) for every node on an edge; centre = smallest node."""

    def __init__(self, max_rounds: int, max_fallback_edges: int):
        super().__init__()
        self._rounds, self._max_fallback = max_rounds, max_fallback_edges

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        for i in range(self._rounds):
            edges = (
                edges
                | f"LargeStar{i}/BothWays" >> beam.FlatMap(_both_directions)
                | f"LargeStar{i}/Group" >> beam.GroupByKey()
                | f"LargeStar{i}/Step" >> beam.FlatMap(_large_star)
                | f"SmallStar{i}/Group" >> beam.GroupByKey()
                | f"SmallStar{i}/Step" >> beam.FlatMap(_small_star)
            )
        checked = (
            edges
            | "Check/Sides" >> beam.FlatMap(_node_sides)
            | "Check/Group" >> beam.GroupByKey()
            | "Check/Star" >> beam.ParDo(_StarCheckFn()).with_outputs(_StarCheckFn.VIOLATIONS, main="labels")
        )
        violations = pvalue.AsSingleton(
            checked[_StarCheckFn.VIOLATIONS] | "Check/Count" >> beam.CombineGlobally(sum)
        )
        converged_labels = checked["labels"] | "IfConverged" >> beam.FlatMap(
            lambda label, v: [label] if v == 0 else [], violations
        )
        fallback_labels = (
            edges
            | "IfNotConverged" >> beam.FlatMap(lambda e, v: [(0, e)] if v > 0 else [], violations)
            | "Fallback/OneWorker" >> beam.GroupByKey()
            | "Fallback/UnionFind"
            >> beam.FlatMap(_union_find_labels, max_edges=self._max_fallback, rounds=self._rounds)
        )
        return (converged_labels, fallback_labels) | "Labels" >> beam.Flatten()


class _ApplyLabelsFn(beam.DoFn):
    """Joined (node, {doc, label}) -> kept document (centre gets dup_near_count) or a reject record."""

    def __init__(self, detail: str):
        self._detail = detail
        self._rejects = RejectEmitter(STAGE, REJECTS_TAG)
        self._components = Metrics.counter(NAMESPACE, "components")
        self._kept = Metrics.counter(NAMESPACE, "docs_kept")

    def process(self, kv: tuple[str, dict[str, list]]) -> Iterator[Any]:
        key, g = kv
        labels: list[Label] = list(g["label"])
        for doc in g["doc"]:
            if not labels:
                self._kept.inc()
                yield doc
                continue
            centre, size = labels[0]
            if centre == key:
                self._kept.inc()
                self._components.inc()
                yield {**doc, "dup_near_count": size}
                continue
            matched = id_of(centre)
            yield self._rejects.document(doc, REASON, f"{self._detail}; same component as {matched!r}", matched)


class NearDedup(beam.PTransform):
    """`kept, rejects = docs | NearDedup(config)`: one document (the smallest id) per near-duplicate component."""

    def __init__(self, config: NearDedupConfig):
        super().__init__()
        self._cfg = config

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self._cfg
        bands, rows = cfg.banding()
        verify = cfg.verify_jaccard is not None
        keyed = docs | "KeyByNode" >> beam.Map(lambda d: (node_key(d), d))
        sig = (
            keyed
            | "Batch" >> beam.BatchElements(min_batch_size=min(16, cfg.batch_size), max_batch_size=cfg.batch_size)
            | "Signatures"
            >> beam.ParDo(SignatureFn(cfg.ngram, bands, rows, cfg.seed, keep_shingles=verify)).with_outputs(
                SHINGLES_TAG, main="bands"
            )
        )
        edges = (
            sig["bands"]
            | "Buckets" >> beam.GroupByKey()
            | "BucketEdges" >> beam.ParDo(_BucketEdgesFn(cfg.verify_max_bucket if verify else None))
        )
        detail = f"MinHash LSH {bands}x{rows}, word {cfg.ngram}-grams"
        if verify:
            edges = edges | "Verify" >> VerifyPairs(sig[SHINGLES_TAG], cfg.verify_jaccard)
            detail += f", exact Jaccard >= {cfg.verify_jaccard}"
        labels = edges | "Components" >> ConnectedComponents(cfg.max_rounds, cfg.max_fallback_edges)
        out = (
            {"doc": keyed, "label": labels}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "Apply" >> beam.ParDo(_ApplyLabelsFn(detail)).with_outputs(REJECTS_TAG, main="kept")
        )
        return out["kept"], out[REJECTS_TAG]
