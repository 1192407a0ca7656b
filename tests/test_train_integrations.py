"""replaymill's replay data in other training frameworks: `ReplayDataset` + `ReplayCollator` with a
plain DataLoader (workers, resume), HF Trainer, Accelerate and Lightning. Each trains a few steps
and checks that every batch the model received held exactly the replay share."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader

import replaymill
from replaymill.schemas.document import new_document
from replaymill.trainer.errors import TrainError

B, L, RATIO = 4, 32, 0.3
R = round(RATIO * B * L)  # 38.4 -> 38 replay tokens in every micro-batch


@pytest.fixture(scope="module")
def replay_set(tmp_path_factory, make_shard_set, shared_data) -> str:
    text = (shared_data / "prose" / "en-tinyshakespeare.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if p.strip()][:240]
    docs = [new_document(f"en:{i}", p, "prose") for i, p in enumerate(paras)]
    return make_shard_set(tmp_path_factory.mktemp("replay"), {"books": docs}, rows_per_shard=30)


@pytest.fixture(scope="module")
def task_file(shared_data) -> str:
    return str(shared_data / "prose" / "de-verne-20000.txt")


def _dataset(task_file, replay_set, **kw) -> replaymill.ReplayDataset:
    return replaymill.ReplayDataset(task_file, replay_set, replay_ratio=RATIO, seq_len=L, batch_size=B, **kw)


def _tiny_model():
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=257, hidden_size=32, intermediate_size=64,
                                                        num_hidden_layers=1, num_attention_heads=2,
                                                        num_key_value_heads=1, max_position_embeddings=64,
                                                        eos_token_id=256, bos_token_id=256))


class SpyCollator(replaymill.ReplayCollator):
    """Keeps every batch it made, so a test can compare them with what the model received."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.made: list[dict[str, torch.Tensor]] = []

    def __call__(self, rows):
        out = super().__call__(rows)
        self.made.append({k: v.clone() for k, v in out.items()})
        return out


def _record_inputs(model) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True)
    return seen


def test_every_loader_batch_has_the_exact_share_and_resumes(task_file, replay_set):
    ds = _dataset(task_file, replay_set)
    collate = replaymill.ReplayCollator(replay_mask=True)
    it = iter(DataLoader(ds, batch_size=ds.batch_size, collate_fn=collate))
    first = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(ds.state_dict()))  # JSON-able, e.g. inside a checkpoint
    expected = [next(it) for _ in range(3)]
    for batch in first + expected:
        assert batch["input_ids"].shape == (B, L) and int(batch["replay_mask"].sum()) == R
        assert torch.equal(batch["labels"], batch["input_ids"])
    assert collate.stats.min_replay == collate.stats.max_replay == R and collate.stats.batches == 6
    resumed = _dataset(task_file, replay_set)
    resumed.load_state_dict(state)
    again = iter(DataLoader(resumed, batch_size=B, collate_fn=replaymill.ReplayCollator(replay_mask=True)))
    for want in expected:
        got = next(again)
        assert torch.equal(got["input_ids"], want["input_ids"]) and torch.equal(got["replay_mask"], want["replay_mask"])
    with pytest.raises(TrainError, match="batch size to the dataset's batch_size"):
        next(iter(DataLoader(ds, batch_size=3, collate_fn=replaymill.ReplayCollator())))


def test_workers_and_ranks_read_their_own_documents(task_file, replay_set):
    ds = _dataset(task_file, replay_set)
    batches = [b for _, b in zip(range(4), DataLoader(ds, batch_size=B, num_workers=2,
                                                      collate_fn=replaymill.ReplayCollator(replay_mask=True)))]
    assert all(int(b["replay_mask"].sum()) == R for b in batches)
    assert not torch.equal(batches[0]["input_ids"], batches[1]["input_ids"])  # worker 0 and worker 1
    rank0, rank1 = (next(iter(DataLoader(_dataset(task_file, replay_set, rank=r, world_size=2), batch_size=B,
                                         collate_fn=replaymill.ReplayCollator()))) for r in (0, 1))
    assert not torch.equal(rank0["input_ids"], rank1["input_ids"])
    held = _dataset(task_file, replay_set, eval_fraction=0.05, eval_tokens=512).held_out()
    assert set(held) == {"task", "replay"} and held["replay"].shape[1] == L


def test_hf_trainer_keeps_the_exact_replay_share(tmp_path, task_file, replay_set):
    from transformers import Trainer, TrainingArguments

    model = _tiny_model()
    seen = _record_inputs(model)
    collate = SpyCollator()
    args = TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=4, per_device_train_batch_size=B,
                             learning_rate=3e-3, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                             dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=_dataset(task_file, replay_set), data_collator=collate)
    trainer.train()
    assert len(seen) == 4
    for i, ids in enumerate(seen):  # the model got the collated micro-batches, unsplit and in order
        assert torch.equal(ids, collate.made[i]["input_ids"])
    assert collate.stats.min_replay == collate.stats.max_replay == R
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 4 and all(x == x for x in losses)


def test_accelerate_loop_keeps_the_exact_replay_share(task_file, replay_set):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = _tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = DataLoader(_dataset(task_file, replay_set), batch_size=B, collate_fn=replaymill.ReplayCollator(replay_mask=True))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    losses = []
    for _, batch in zip(range(4), loader):
        assert int(batch["replay_mask"].sum()) == R
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_lightning_keeps_the_exact_replay_share(tmp_path, task_file, replay_set):
    import lightning as pl

    class LM(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = _tiny_model()
            self.replay_per_batch: list[int] = []

        def training_step(self, batch, batch_idx):
            self.replay_per_batch.append(int(batch["replay_mask"].sum()))
            return self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=3e-3)

    module = LM()
    loader = DataLoader(_dataset(task_file, replay_set), batch_size=B, collate_fn=replaymill.ReplayCollator(replay_mask=True))
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, train_dataloaders=loader)
    assert module.replay_per_batch == [R] * 4
