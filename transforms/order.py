"""The total order of documents: (id, source, url, content hash).

Why a content hash as the last key: ids repeat in real corpora (Dolma CC ids are URLs that recur
across crawls), so (id, source, url) alone ties, and a tie falls back to arrival order, which
differs between input orders and worker counts. Two documents with equal keys *and* equal content
hashes are the same document, so any choice between them gives the same bytes. Shard row order,
the exact-duplicate representative and the near-duplicate component centre all use this order.
"""
from __future__ import annotations

import hashlib
import json
from itertools import groupby
from typing import Any

Rank = tuple[str, str, str, str]


def content_hash(doc: dict[str, Any]) -> str:
    """Hex BLAKE2b of the whole document (every field, canonical JSON): equal only for equal documents."""
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def doc_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    """The first three keys: id, source, url (missing values sort as empty strings)."""
    return (str(doc["id"]), doc.get("source") or "", doc.get("url") or "")


def doc_rank(doc: dict[str, Any]) -> Rank:
    """A document's place in the total order."""
    return (*doc_key(doc), content_hash(doc))


def sort_total(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`docs` in the total order; the content hash is computed only inside runs of tied keys."""
    ordered: list[dict[str, Any]] = []
    for _, run in groupby(sorted(docs, key=doc_key), key=doc_key):
        tied = list(run)
        ordered += sorted(tied, key=content_hash) if len(tied) > 1 else tied
    return ordered
