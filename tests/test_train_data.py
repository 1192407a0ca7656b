"""The trainer's data path: exact replay mixing, packing, resumable and disjoint document streams."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from replaymill.schemas.document import new_document
from replaymill.trainer.mixer import MixedBatches, ReplayMixer, replay_tokens_per_batch
from replaymill.trainer.packing import TokenStream, pack_documents
from replaymill.trainer.sources import ListSource, ShardSetSource, is_held_out, load_documents
from replaymill.trainer.tokenizer import ByteTokenizer

TOK = ByteTokenizer()


def _docs(prefix: str, n: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(len(prefix) + n)
    return [(f"{prefix}{i}", f"{prefix}{i} " + "x" * int(rng.integers(0, 40))) for i in range(n)]


def _stream_tokens(docs: list[tuple[str, str]], n: int, seed: int) -> np.ndarray:
    """The first n tokens a TokenStream over `docs` must deliver, computed independently."""
    src = ListSource(docs, seed=seed, label="t")
    out: list[int] = []
    while len(out) < n:
        _, text = next(src)
        out.extend(text.encode())
        out.append(TOK.eos_id)
    return np.array(out[:n])


@settings(max_examples=60, deadline=None)
@given(ratio=st.floats(0.0, 1.0), batch=st.integers(1, 8), seq_len=st.integers(2, 48), n_batches=st.integers(1, 3))
def test_every_batch_has_exactly_the_replay_share(ratio, batch, seq_len, n_batches):
    task_docs, replay_docs = _docs("t", 30), _docs("r", 30)
    mixer = ReplayMixer(TokenStream(ListSource(task_docs, 1, "t"), TOK), TokenStream(ListSource(replay_docs, 2, "r"), TOK),
                        ratio, batch, seq_len)
    r = replay_tokens_per_batch(ratio, batch, seq_len)
    assert r == int(np.floor(ratio * batch * seq_len + 0.5)) and abs(r - ratio * batch * seq_len) <= 0.5
    replay_seen, task_seen = [], []
    for _ in range(n_batches):
        ids, mask = mixer.next_batch()
        assert ids.shape == mask.shape == (batch, seq_len)
        assert int(mask.sum()) == r  # exact per batch, not on average
        replay_seen.append(ids[mask])
        task_seen.append(ids[~mask])
    # each stream is consumed contiguously: nothing skipped, nothing repeated
    np.testing.assert_array_equal(np.concatenate(replay_seen), _stream_tokens(replay_docs, n_batches * r, 2))
    np.testing.assert_array_equal(np.concatenate(task_seen), _stream_tokens(task_docs, n_batches * (batch * seq_len - r), 1))


def test_fractional_share_uses_one_mixed_sequence():
    # 5% of 8 x 100 = 40 tokens: no whole replay sequence, one sequence starts with 40 replay tokens
    mixer = ReplayMixer(TokenStream(ListSource(_docs("t", 5), 0, "t"), TOK), TokenStream(ListSource(_docs("r", 5), 0, "r"), TOK),
                        0.05, 8, 100)
    _, mask = mixer.next_batch()
    assert mask[0, :40].all() and not mask[0, 40:].any() and not mask[1:].any()
    # 30% of 4 x 10 = 12: one whole replay sequence + 2 tokens of the next
    mixer = ReplayMixer(TokenStream(ListSource(_docs("t", 5), 0, "t"), TOK), TokenStream(ListSource(_docs("r", 5), 0, "r"), TOK),
                        0.3, 4, 10)
    _, mask = mixer.next_batch()
    assert mask[0].all() and mask[1, :2].all() and mask.sum() == 12


def test_token_stream_resumes_mid_document():
    docs = _docs("d", 12)
    a = TokenStream(ListSource(docs, 3, "d"), TOK)
    a.take(37)
    state = a.state_dict()
    expected = a.take(200)
    b = TokenStream(ListSource(docs, 3, "d"), TOK)
    b.load_state_dict(state)
    np.testing.assert_array_equal(b.take(200), expected)


def test_pack_documents_separates_with_eos():
    rows = pack_documents(["abc", "de"], TOK, 3)
    assert rows.tolist() == [[97, 98, 99], [256, 100, 101]]  # tail (EOS) dropped
    assert pack_documents([], TOK, 4).shape == (0, 4)


def test_list_source_reshuffles_per_epoch_and_resumes():
    src = ListSource(_docs("e", 5), seed=7, label="e")
    first = [next(src)[0] for _ in range(5)]
    state = src.state_dict()
    second = [next(src)[0] for _ in range(5)]
    assert sorted(first) == sorted(second) and first != second
    again = ListSource(_docs("e", 5), seed=7, label="e")
    again.load_state_dict(state)
    assert [next(again)[0] for _ in range(5)] == second


def test_text_task_readers_are_disjoint_and_held_out_is_excluded(shared_data):
    path = str(shared_data / "prose" / "de-verne-20000.txt")
    every = {i for i, _ in load_documents(path)}
    parts = [{i for i, _ in load_documents(path, reader=k, readers=3, held_out=0.1)} for k in range(3)]
    held = {i for i, _ in load_documents(path, held_out=0.1, keep="eval")}
    assert held and all(is_held_out(i, 0.1) for i in held)
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2]) and not (parts[0] & parts[2])
    assert set().union(*parts) | held == every and not (set().union(*parts) & held)


@pytest.fixture(scope="module")
def replay_set(tmp_path_factory, make_shard_set, shared_data):
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if p.strip()][:320]
    docs = [new_document(f"en:{i}", p, "prose") for i, p in enumerate(paras)]
    return make_shard_set(tmp_path_factory.mktemp("replay"), {"books": docs}, rows_per_shard=40)  # 8 shards


def test_shard_readers_are_disjoint_over_ranks_and_workers(replay_set):
    from replaymill.shards.reader import ShardSet

    ss = ShardSet.open(replay_set)
    seen = []
    for rank in range(2):
        for worker in range(2):
            src = ShardSetSource(ss, seed=0, reader=(rank, 2, worker, 2))
            ids = []
            while src.epoch == 0:
                ids.append(next(src)[0])
            seen.append(set(ids[:-1]))  # the last one is from epoch 1
    assert sum(len(s) for s in seen) == 320 == len(set().union(*seen))


def test_shard_source_resumes_without_rereading(replay_set):
    from replaymill.shards.reader import ShardSet

    ss = ShardSet.open(replay_set)
    a = ShardSetSource(ss, seed=4, reader=(0, 1, 0, 1), held_out=0.05)
    for _ in range(123):
        next(a)
    state = a.state_dict()
    expected = [next(a)[0] for _ in range(400)]  # crosses into epoch 2 (reshuffled shards)
    b = ShardSetSource(ShardSet.open(replay_set), seed=4, reader=(0, 1, 0, 1), held_out=0.05)
    b.load_state_dict(state)
    assert [next(b)[0] for _ in range(400)] == expected
    assert not any(is_held_out(i, 0.05) for i in expected)


def test_more_readers_than_shards_is_a_clear_error(replay_set):
    from replaymill.shards.reader import ShardSet

    with pytest.raises(ValueError, match="cannot feed 16 readers"):
        ShardSetSource(ShardSet.open(replay_set), seed=0, reader=(3, 4, 3, 4))


def _factory(replay_root):
    from replaymill.shards.reader import ShardSet

    def make(worker, workers):
        task = ListSource([d for k, d in enumerate(_docs("t", 40)) if k % workers == worker], 0, "t")
        replay = ShardSetSource(ShardSet.open(replay_root), seed=1, reader=(0, 1, worker, workers))
        return ReplayMixer(TokenStream(task, TOK), TokenStream(replay, TOK), 0.25, 2, 16)
    return make


def test_dataloader_workers_interleave_and_resume(replay_set):
    loader = DataLoader(MixedBatches(_factory(replay_set), 2), batch_size=None, num_workers=2)
    batches = []
    for b in loader:
        batches.append(b)
        if len(batches) == 6:
            break
    assert [b["worker"] for b in batches] == [0, 1, 0, 1, 0, 1]
    states = [batches[2]["state"], batches[3]["state"]]  # as checkpointed after micro-batch 4
    resumed = iter(MixedBatches(_factory(replay_set), 2, states))
    # in-process (no workers) the dataset plays worker 0's part: it must continue with batch 4
    assert torch.equal(next(resumed)["input_ids"], batches[4]["input_ids"])


def test_sampler_replay_through_the_mixer_factory_resumes(tmp_path, make_shard_set, shared_data):
    """--replay-target draws replay with ReplaySampler; the mixer state resumes it exactly."""
    import yaml

    from replaymill.trainer.config import TrainConfig
    from replaymill.trainer.data import make_mixer_factory

    en = [p for p in (shared_data / "prose" / "en-tinyshakespeare.txt").read_text().split("\n\n") if p.strip()][:120]
    de = load_documents(str(shared_data / "prose" / "de-grimm.txt"))[:60]
    root = make_shard_set(tmp_path / "mix", {
        "books": [new_document(f"en:{i}", t, "prose") for i, t in enumerate(en)],
        "web": [dict(new_document(i, t, "prose"), lang="de") for i, t in de]}, rows_per_shard=30)
    (tmp_path / "w.yaml").write_text(yaml.safe_dump({"books": 0.5, "web": 0.5}))
    cfg = TrainConfig(model="tiny-llama", task=str(shared_data / "prose" / "de-verne-20000.txt"), replay=root,
                      replay_target=str(tmp_path / "w.yaml"), replay_ratio=0.5, seq_len=64, batch_size=4,
                      output=str(tmp_path / "o"))
    make = make_mixer_factory(cfg, TOK, rank=0, world_size=1)
    a = make(0, 1)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    assert state["replay"]["source"]["format"]  # the sampler's own state dict is the replay position
    expected = [a.next_batch()[0] for _ in range(3)]
    b = make(0, 1)
    b.load_state_dict(state)
    for ids in expected:
        np.testing.assert_array_equal(b.next_batch()[0], ids)


def test_jsonl_and_hf_dataset_task_data(tmp_path):
    import json

    from datasets import Dataset

    rows = [{"text": f"doc {i}"} for i in range(10)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [t for _, t in load_documents(str(tmp_path / "t.jsonl"))] == [r["text"] for r in rows]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    assert load_documents(str(tmp_path / "hf")) == [(f"hf:{i}", f"doc {i}") for i in range(10)]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON object with a 'text' field"):
        load_documents(str(tmp_path / "bad.jsonl"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_documents(str(tmp_path / "missing.txt"))
