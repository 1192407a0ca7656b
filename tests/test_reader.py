"""ShardSet: verified reading, column projection and the rank x worker split of shards."""
from __future__ import annotations

import pytest

from replaymill.shards.io import CorruptShardError
from replaymill.shards.reader import ShardSet


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory, make_shard_set, real_docs_by_domain):
    return make_shard_set(tmp_path_factory.mktemp("set"), real_docs_by_domain, rows_per_shard=50)


def test_open_and_read_all(shard_root, real_docs_by_domain):
    ss = ShardSet.open(shard_root)
    assert ss.root == shard_root and ss.shards == ss.manifest.shards
    assert set(ss.domains()) == {"books", "news", "web"}
    ids = [d["id"] for d in ss.iter_documents(columns=["id"])]
    expected = {d["id"] for docs in real_docs_by_domain.values() for d in docs}
    assert len(ids) == len(expected) and set(ids) == expected


def test_projection(shard_root):
    ss = ShardSet.open(shard_root)
    doc = next(ss.iter_documents(columns=["id", "domain", "n_tokens"]))
    assert set(doc) == {"id", "domain", "n_tokens"}
    with pytest.raises(KeyError, match="unknown column"):
        next(ss.iter_documents(columns=["nope"]))


@pytest.mark.parametrize("world_size,num_workers", [(2, 1), (2, 3), (4, 2), (64, 1)])
def test_readers_disjoint_and_complete(shard_root, world_size, num_workers):
    ss = ShardSet.open(shard_root)
    seen: list[str] = []
    for rank in range(world_size):
        for worker in range(num_workers):
            seen += [d["id"] for d in ss.iter_documents(["id"], rank=rank, world_size=world_size,
                                                          worker=worker, num_workers=num_workers)]
    assert len(seen) == len(set(seen)) == ss.manifest.total.docs


def test_bad_slot(shard_root):
    with pytest.raises(ValueError, match="rank"):
        next(ShardSet.open(shard_root).iter_documents(rank=2, world_size=2))


def test_corrupt_shard_is_clear_error(tmp_path, make_shard_set, real_docs_by_domain):
    root = make_shard_set(tmp_path, {"news": real_docs_by_domain["news"]}, rows_per_shard=16)
    ss = ShardSet.open(root)
    path = tmp_path / ss.shards[1].path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="sha256"):
        list(ss.iter_documents(["id"]))
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(CorruptShardError, match="not a readable Arrow IPC"):
        ss.read_index_columns(ss.shards[1], ["n_tokens"])
    assert len(list(ShardSet.open(root, verify=False).iter_documents(["id"], shards=ss.shards[:1]))) == 16


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="_manifest.json"):
        ShardSet.open(str(tmp_path))


def test_read_table_cache(shard_root):
    ss = ShardSet.open(shard_root, cache_shards=2)
    t1 = ss.read_table(ss.shards[0], ["id", "n_tokens"])
    assert ss.read_table(ss.shards[0], ["id", "n_tokens"]) is t1
    assert t1.num_rows == ss.shards[0].rows
    ss.read_table(ss.shards[1], ["id"])
    ss.read_table(ss.shards[2], ["id"])
    assert ss.read_table(ss.shards[0], ["id", "n_tokens"]) is not t1


def test_index_columns_by_random_access(shard_root):
    ss = ShardSet.open(shard_root)
    info = ss.shards[0]
    idx = ss.read_index_columns(info, ["n_tokens", "quality"])
    assert idx.column_names == ["n_tokens", "quality"] and idx.num_rows == info.rows
    assert idx.column("n_tokens").to_pylist() == ss.read_table(info, ["n_tokens"]).column("n_tokens").to_pylist()
