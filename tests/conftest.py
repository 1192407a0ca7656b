"""Shared fixtures: the real data in ../shared/data, found relative to the repository."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REPLAYMILL_SHARED_DATA", REPO.parent / "shared" / "data"))


def read_path(path: str | Path, max_record_bytes: int = 32 << 20, range_bytes: int = 64 << 20):
    """Documents and rejects of every input a pattern names, read without Beam (as build's readers do)."""
    from replaymill.pipeline.readers import read_item
    from replaymill.pipeline.sources import match_inputs, plan_reads

    docs, rejects = [], []
    for spec in match_inputs([str(path)]):
        for item in plan_reads(spec, range_bytes):
            for parsed in read_item(item, max_record_bytes):
                (docs.append(parsed.doc) if parsed.doc is not None else rejects.append(parsed.reject))
    return docs, rejects


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data; tests that need it skip with a clear reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# --- shard-set fixtures (used by the sample, train and audit tests) ---------------------------

def write_shard_set(root, docs_by_domain, *, rows_per_shard: int = 64, kind: str = "build") -> str:
    """Write real shards + manifest under `root` from `{domain: [document dicts]}`; returns root.

    Documents are `schemas.document.new_document` dicts; `domain` is set from the key, `lang`
    defaults to "en" where unset and `n_tokens` to the whitespace word count where unset. Shards
    follow the real layout `domain=<d>/lang=<l>/part-NNNNN.arrow`, `rows_per_shard` rows each.
    """
    from datetime import datetime, timezone

    import pyarrow as pa

    from replaymill.schemas.document import SCHEMA_VERSION, to_record_batch
    from replaymill.schemas.manifest import Manifest, totals_from_shards
    from replaymill.shards.io import write_manifest, write_shard

    root = str(root)
    infos = []
    for domain in sorted(docs_by_domain):
        by_lang: dict[str, list[dict]] = {}
        for doc in docs_by_domain[domain]:
            d = dict(doc, domain=domain)
            d["lang"] = d.get("lang") or "en"
            if d.get("n_tokens") is None:
                d["n_tokens"] = max(1, len(d["text"].split()))
            by_lang.setdefault(d["lang"], []).append(d)
        for lang in sorted(by_lang):
            docs = by_lang[lang]
            for part, start in enumerate(range(0, len(docs), rows_per_shard)):
                table = pa.Table.from_batches([to_record_batch(docs[start:start + rows_per_shard])])
                rel = f"domain={domain}/lang={lang}/part-{part:05d}.arrow"
                infos.append(write_shard(root, rel, table, domain, lang))
    by_domain, by_lang, total = totals_from_shards(infos)
    write_manifest(root, Manifest(
        schema_version=SCHEMA_VERSION, kind=kind, created_at=datetime.now(timezone.utc).isoformat(),
        tool_version="test", shards=infos, by_domain=by_domain, by_lang=by_lang, total=total,
    ))
    return root


@pytest.fixture(scope="session")
def make_shard_set():
    """`make_shard_set(root, {domain: [docs]}, rows_per_shard=64)` -> root (see write_shard_set)."""
    return write_shard_set


def _chunks(text: str, size: int) -> list[str]:
    """Consecutive non-empty lines of `text` packed into chunks of about `size` characters."""
    out, cur = [], ""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        cur = f"{cur}\n{line}" if cur else line
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


@pytest.fixture(scope="session")
def real_docs_by_domain(shared_data) -> dict[str, list[dict]]:
    """Real documents from ../shared/data tagged with several domains, for shard-set fixtures.

    web: Dolma Common Crawl documents (697); news: C4 samples incl. The Guardian (40);
    books: Tiny Shakespeare (en) and Grimm (de, first 150 chunks), split into ~2000-char chunks.
    """
    import gzip
    import json

    from replaymill.schemas.document import new_document

    def jsonl(path):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    web = [new_document(r["id"], r["text"], "dolma-cc")
           for r in jsonl(shared_data / "dolma-cc" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")]
    news = []
    for path in sorted((shared_data / "olmo-c4").glob("*.json*.gz")):
        for i, r in enumerate(jsonl(path)):
            news.append(new_document(f"{path.name}:{i}", r["text"], "c4", url=r.get("url")))
    books = []
    en = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    for i, chunk in enumerate(_chunks(en, 2000)):
        books.append(dict(new_document(f"shakespeare:{i}", chunk, "prose"), lang="en"))
    de = (shared_data / "prose" / "de-grimm.txt").read_text(encoding="utf-8")
    for i, chunk in enumerate(_chunks(de, 2000)[:150]):
        books.append(dict(new_document(f"grimm:{i}", chunk, "prose"), lang="de"))
    return {"web": web, "news": news, "books": books}


# --- portable-runner fixtures ------------------------------------------------------

@pytest.fixture(scope="session")
def portable_cluster(tmp_path_factory):
    """A loopback portable Beam cluster (job service + 2 external SDK worker pools) shared by the
    session; teardown checks that no process it started survives."""
    import os

    from replaymill.deploy.local_cluster import LocalPortableCluster

    with LocalPortableCluster(pools=2, workdir=str(tmp_path_factory.mktemp("cluster"))) as cluster:
        groups = cluster.process_groups
        yield cluster
    for pgid in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)  # signal 0: does anything of that child's process group still exist?


@pytest.fixture(scope="session")
def build_inputs(shared_data) -> list[str]:
    """The build input of the cluster tests: real Dolma CC and C4 files (730 documents)."""
    return [str(shared_data / "dolma-cc" / "*.json*.gz"), str(shared_data / "olmo-c4" / "*.gz")]
