"""The trainer's data path alone, tokens/s: current code against the same code with the per-document
deepcopy of the source state and the uncached ReplaySampler fingerprint put back ("before"),
alternating in one process so both see the same machine load.

    python bench/trainer_data_path.py --task data/task.txt --replay out/replay [--replay-target w.yaml]
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import time

import numpy as np

from replaymill.shards.sampler import ReplaySampler
from replaymill.trainer.data import DataSpec, make_mixer_factory
from replaymill.trainer.packing import TokenStream
from replaymill.trainer.tokenizer import ByteTokenizer

AFTER = (TokenStream._next_document, ReplaySampler.fingerprint)


def _next_document_before(self) -> None:
    self._doc_state = copy.deepcopy(self.source.state_dict())
    _, text = next(self.source)
    self._tokens = np.append(self.tokenizer.encode(text), self.tokenizer.eos_id).astype(np.int64)
    self._offset = 0
    self.docs_read += 1


def _fingerprint_before(self) -> str:
    h = hashlib.sha256()
    for info in self.shardset.shards:
        h.update(info.sha256.encode())
    return h.hexdigest()[:16]


def rate(spec: DataSpec, seconds: float) -> float:
    mixer = make_mixer_factory(spec, ByteTokenizer(), 0, 1)(0, 1)
    for _ in range(20):
        mixer.next_batch()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        mixer.next_batch()
        n += 1
    return n * spec.batch_size * spec.seq_len / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--replay", required=True, help="a replay shard set")
    ap.add_argument("--replay-target", help="preset or weights.yaml: replay drawn by ReplaySampler")
    ap.add_argument("--replay-ratio", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    spec = DataSpec(task=args.task, replay=args.replay, replay_target=args.replay_target,
                    replay_ratio=args.replay_ratio, seq_len=128, batch_size=8)
    for i in range(args.rounds):
        results = {}
        for name, funcs in (("before", (_next_document_before, _fingerprint_before)), ("after", AFTER)):
            TokenStream._next_document, ReplaySampler.fingerprint = funcs
            results[name] = rate(spec, args.seconds)
        print(f"round {i}: before {results['before']:,.0f} tokens/s, after {results['after']:,.0f} tokens/s, "
              f"after/before {results['after'] / results['before']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
