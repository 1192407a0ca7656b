"""Pure step functions of distributed connected components (large-star / small-star), and exact Jaccard.

Why: LSH candidates form a graph whose connected components are the near-duplicate clusters. At
corpus scale the graph does not fit one worker, so components are found by alternating the two
star operations of Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014),
each one a group-by-node in Beam. They converge in O(log^2 n) rounds (a few in practice) to a
forest of stars whose centres are the smallest node of each component: exactly the deterministic
representative we want. Keeping the per-node logic here lets tests check it against a union-find
oracle without Beam, and lets `pipeline.near_dedup` stay a thin shell.

Edges are directed pairs ``(child, parent)`` with ``child > parent`` (node keys compare as strings);
each undirected edge is stored once. Functions return sets, so duplicate inputs are harmless.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

Edge = tuple[str, str]


def normalize_edge(u: str, v: str) -> Edge | None:
    """The canonical (larger, smaller) form of an undirected edge; None for a self-loop."""
    if u == v:
        return None
    return (u, v) if u > v else (v, u)


def star_edges(members: Iterable[str]) -> list[Edge]:
    """Edges from every member of an LSH bucket to its smallest member (a star, not a clique)."""
    uniq = sorted(set(members))
    return [(m, uniq[0]) for m in uniq[1:]]


def pair_edges(members: Iterable[str], max_members: int) -> list[Edge]:
    """All pairs of a bucket (for exact verification), or the star when the bucket exceeds `max_members`.

    Verifying only star edges would lose a member that is similar to another member but not to
    the smallest one; all pairs keep it. The cap bounds the quadratic cost of huge buckets
    (templated pages), for which only the star edges are verified.
    """
    uniq = sorted(set(members))
    if len(uniq) > max_members:
        return star_edges(uniq)
    return [(uniq[j], uniq[i]) for i in range(len(uniq)) for j in range(i + 1, len(uniq))]


def large_star(node: str, neighbors: Iterable[str]) -> set[Edge]:
    """Large-star at `node`: connect every strictly larger neighbour to the smallest of node + neighbours.

    `neighbors` is the full undirected neighbourhood (both directions of every edge at `node`).
    """
    nbrs = set(neighbors)
    nbrs.discard(node)
    if not nbrs:
        return set()
    m = min(min(nbrs), node)
    return {(v, m) for v in nbrs if v > node}


def small_star(node: str, parents: Iterable[str]) -> set[Edge]:
    """Small-star at `node`: connect node and its smaller neighbours (`parents`) to the smallest of them."""
    group = set(parents)
    group.discard(node)
    if not group:
        return set()
    group.add(node)
    m = min(group)
    return {(v, m) for v in group if v != m}


def large_star_round(edges: Iterable[Edge]) -> set[Edge]:
    """One large-star step over a whole edge set (what the Beam group-by-node computes)."""
    nbrs: dict[str, set[str]] = defaultdict(set)
    for c, p in edges:
        nbrs[c].add(p)
        nbrs[p].add(c)
    out: set[Edge] = set()
    for node, ns in nbrs.items():
        out |= large_star(node, ns)
    return out


def small_star_round(edges: Iterable[Edge]) -> set[Edge]:
    """One small-star step over a whole edge set (group by the larger endpoint)."""
    parents: dict[str, set[str]] = defaultdict(set)
    for c, p in edges:
        parents[c].add(p)
    out: set[Edge] = set()
    for node, ps in parents.items():
        out |= small_star(node, ps)
    return out


def star_check(node: str, parents: Iterable[str], children: Iterable[str]) -> bool:
    """True if the edges at `node` fit a converged forest of stars.

    Converged means: every node has at most one parent, and a node with a parent has no
    children. Then each component is a star centred on its smallest node, and another
    large-star/small-star round would return the same edges (the fixed point).
    """
    ps = set(parents)
    return len(ps) <= 1 and not (ps and any(True for _ in children))


def is_converged(edges: Iterable[Edge]) -> bool:
    """`star_check` at every node of an edge set."""
    parents: dict[str, set[str]] = defaultdict(set)
    children: dict[str, set[str]] = defaultdict(set)
    for c, p in edges:
        parents[c].add(p)
        children[p].add(c)
    return all(star_check(n, parents.get(n, ()), children.get(n, ())) for n in set(parents) | set(children))


def star_components(edges: Iterable[Edge], max_rounds: int) -> tuple[set[Edge], bool]:
    """Alternate large-star and small-star up to `max_rounds` times; returns (edges, converged).

    The in-memory twin of the Beam rounds in `pipeline.near_dedup`, used by tests and benchmarks.
    """
    current = {e for e in (normalize_edge(u, v) for u, v in edges) if e is not None}
    for _ in range(max_rounds):
        if is_converged(current):
            return current, True
        current = small_star_round(large_star_round(current))
    return current, is_converged(current)


def union_find_components(edges: Iterable[Edge]) -> dict[str, str]:
    """node -> smallest node of its component, for every node on an edge (single-worker oracle/fallback)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for u, v in edges:
        parent.setdefault(u, u)
        parent.setdefault(v, v)
        ru, rv = find(u), find(v)
        if ru != rv:
            # The smaller root wins, so every root is its component's minimum.
            if ru < rv:
                parent[rv] = ru
            else:
                parent[ru] = rv
    return {node: find(node) for node in parent}


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted, distinct uint64 shingle-hash arrays (0.0 if both empty)."""
    if a.size == 0 and b.size == 0:
        return 0.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)
