"""The data-moat experiment: does replay built from OPEN data do what the closed pre-training data does?

    python bench/moat_experiment.py --workdir /tmp/moat-exp            # default size (~13 min on 2 idle cores)
    python bench/moat_experiment.py --workdir /tmp/moat-q --quick      # every stage at toy size (~1 min)

1. Closed corpus: documents of three origins (web pages, Python code, book text; every path a flag)
   whose sites / modules / book sections hash to the closed side, mixed by tokens in fixed hidden
   weights (`--weights`, e.g. web/en=0.4,code=0.35,books/en=0.25), split into pre-training,
   oracle-replay and evaluation parts that each hold the hidden mixture.
2. Base model: a byte-level BPE (`tokenizers`) trained on the closed pre-training part, a small
   Llama initialised from it and pre-trained on that part with `replaymill`'s trainer
   (`TrainConfig` + `train`): a plain HF directory.
3. Open pool: the other sites, modules and book sections plus distractors (other languages, package
   documentation), built with `replaymill build --tokenizer BASE` (token counts in the base
   model's own tokens); nothing in it was seen in pre-training.
4. Replay sets of the same budget in base-model tokens (what 25% replay consumes), one per seed
   (`sample --seed`): oracle (held-out closed documents, `sample --target` of the hidden weights),
   preset (`replaymill sample --target` with the published = hidden weights over the pool), DSIR
   (`replaymill probe` of the base model -> `sample --reference`: the reference's mixture over the
   pool's keys, drawn at random within each key, the product default), uniform (`sample --target`
   in the pool's own proportions) and wrong-domain (`sample --target` of one pool key outside the
   mixture); `--sources` adds dsir-stratified and dsir-global (the other `--dsir` modes).
5. Fine-tuning on German prose at equal compute (same steps, same tokens per step) with 0% and each
   `--ratios` share of every batch's tokens replayed from each source, `--seeds` seeds per cell,
   through `train` with replay drawn by the exact ReplaySampler in the set's own proportions.
6. Report: forgetting (held-out closed loss after - before, overall and per hidden key), task loss,
   the share of the oracle's forgetting reduction each source achieves (the figure of merit), the
   recovered mixture (origin shares of each selection vs the hidden weights, total variation),
   which key's shortfall costs the most, and the oracle at 0/5/25% for `--sizes` model sizes.
   Markdown, JSON and a PNG (forgetting vs replay ratio, one line per source) in `--report-dir`.

Stages are cached in the workdir by their settings (a rerun with the same flags reuses them);
`--fresh` starts over.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules moat_corpus, moat_report

import moat_corpus as corpus  # noqa: E402
from measure import cpu_seconds  # noqa: E402
from moat_report import SOURCES  # noqa: E402

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REQUIRED_SOURCES = ("oracle", "preset", "dsir", "uniform", "wrong")
DSIR_MODE = {"dsir": "mixture", "dsir-stratified": "stratified", "dsir-global": "global"}


# ----- settings ---------------------------------------------------------------------------------

class UsageError(Exception):
    """A bad flag or data path: one line on stderr and exit 2, before any work."""


def check_paths(args: argparse.Namespace) -> None:
    """Every data path given must exist (the experiment reads nothing else)."""
    for flag in ("web", "code", "books", "task", "distractors"):
        for path in getattr(args, flag):
            if not Path(path).exists():
                raise UsageError(f"--{flag} {path}: no such file or directory")

def parse_weights(spec: str) -> dict[str, float]:
    """`web/en=0.4,code=0.35,books/en=0.25` -> normalized {key: weight}; keys are origin[/lang]."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        key, _, value = part.partition("=")
        origin = key.split("/")[0]
        if origin not in corpus.ORIGINS:
            raise UsageError(f"--weights: {key!r}: origin must be one of {', '.join(corpus.ORIGINS)}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--weights: {part!r} is not key=number") from None
    total = sum(out.values())
    if len(out) < 3 or total <= 0 or min(out.values()) <= 0:
        raise UsageError("--weights needs at least three keys with positive weights")
    return {k: v / total for k, v in out.items()}


def parse_sizes(spec: str) -> list[tuple[int, int]]:
    """`64x2,96x3,128x4` -> [(hidden, layers), ...]."""
    sizes = []
    for part in spec.split(","):
        h, _, layers = part.strip().partition("x")
        try:
            sizes.append((int(h), int(layers)))
        except ValueError:
            raise UsageError(f"--sizes: {part!r} is not HIDDENxLAYERS") from None
    return sizes


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = ap.add_argument_group("data (every path a flag)")
    data.add_argument("--web", nargs="+", default=[str(SHARED / "dolma-cc"), str(SHARED / "olmo-c4")],
                      help="web pages: JSONL(.gz) files or directories of them (Dolma, C4, ...)")
    data.add_argument("--code", nargs="+", default=[corpus.stdlib_root()], help="directories of Python files")
    data.add_argument("--books", nargs="+", default=[str(SHARED / "prose" / "en-tinyshakespeare.txt")],
                      help="plain-text books in the base model's language")
    data.add_argument("--task", nargs="+", default=[str(SHARED / "prose" / "de-grimm.txt"),
                                                    str(SHARED / "prose" / "de-verne-20000.txt")],
                      help="the new task's text (.txt / .jsonl)")
    data.add_argument("--distractors", nargs="+", default=[
        str(SHARED / "prose" / "fr-Verne-2ans.txt"),
        *(str(SHARED / "lingua-sentences" / f"{c}.txt") for c in ("es", "it", "nl", "pl", "pt", "sv")),
        corpus.purelib_root()], help="pool-only text: other languages (.txt, .jsonl), directories of .md/.rst docs")
    data.add_argument("--workdir", default="/tmp/moat-exp")
    data.add_argument("--report-dir", default=None, help="where report.md/json/png go (default WORKDIR/report)")
    exp = ap.add_argument_group("experiment")
    exp.add_argument("--weights", default="web/en=0.4,code=0.35,books/en=0.25",
                     help="the hidden pre-training mixture by tokens, keys origin[/lang]")
    exp.add_argument("--ratios", default="0.05,0.25", help="replay ratios besides 0")
    exp.add_argument("--sources", default="oracle,preset,dsir,uniform,wrong",
                     help=f"replay sources to compare, of {','.join(SOURCES)} (oracle is the reference; "
                     "dsir-stratified and dsir-global are the other `sample --dsir` modes)")
    exp.add_argument("--seeds", type=int, default=3)
    exp.add_argument("--sizes", default="32x2,64x2,96x3", help="model sizes hidden x layers for the scale trend")
    exp.add_argument("--main-size", type=int, default=2, help="index in --sizes of the model all sources are run on")
    exp.add_argument("--vocab", type=int, default=2048)
    exp.add_argument("--seq-len", type=int, default=128)
    exp.add_argument("--batch-size", type=int, default=8)
    exp.add_argument("--pretrain-steps", type=int, default=1500,
                     help="pre-training steps of the main size; the others get steps in proportion to their "
                     "parameters (tokens per parameter held fixed), at least a third of these")
    exp.add_argument("--pretrain-lr", type=float, default=3e-3)
    exp.add_argument("--finetune-steps", type=int, default=100)
    exp.add_argument("--finetune-lr", type=float, default=1e-3)
    exp.add_argument("--eval-tokens", type=int, default=32768, help="held-out closed tokens (split by the weights)")
    exp.add_argument("--oracle-pool", type=float, default=3.0,
                     help="held-out closed tokens the oracle sets are drawn from, in replay budgets")
    exp.add_argument("--doc-chars", type=int, default=1000, help="documents are cut to about this many characters")
    exp.add_argument("--closed-fraction", type=float, default=0.5, help="share of units on the closed side")
    exp.add_argument("--max-code-mb", type=float, default=3.0, help="code read per side, MB")
    exp.add_argument("--max-web-mb", type=float, default=None, help="web text read, MB (default: all)")
    exp.add_argument("--max-books-mb", type=float, default=None, help="text read per book, MB (default: all)")
    exp.add_argument("--max-distractor-mb", type=float, default=1.0, help="per distractor path, MB")
    exp.add_argument("--probe-samples", type=int, default=512)
    exp.add_argument("--probe-max-new-tokens", type=int, default=None,
                     help="cap per generated document (default: the model's context, seq-len - 1)")
    exp.add_argument("--wrong-key", default=None, help="pool key (domain/lang) of the wrong-domain source "
                     "(default: the largest pool key outside the published weights)")
    exp.add_argument("--salt", default="moat", help="salt of the closed/open split hash")
    run = ap.add_argument_group("running")
    run.add_argument("--jobs", type=int, default=2, help="training processes in parallel (one torch thread each)")
    run.add_argument("--quick", action="store_true", help="every stage at toy size (the test's mode)")
    run.add_argument("--fresh", action="store_true", help="ignore cached stages in the workdir")
    return ap


QUICK = dict(sizes="32x1,48x1", main_size=1, vocab=384, seq_len=64, batch_size=8, pretrain_steps=40,
             finetune_steps=12, seeds=2, eval_tokens=3072, probe_samples=48, probe_max_new_tokens=48, doc_chars=500,
             max_code_mb=0.15, max_web_mb=0.6, max_books_mb=0.3, max_distractor_mb=0.04)


# ----- small helpers ----------------------------------------------------------------------------

def stamp(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(directory: Path, key: str, fresh: bool) -> bool:
    """True if `directory` holds a finished stage made with settings `key`."""
    marker = directory / ".stage.json"
    return not fresh and marker.exists() and json.loads(marker.read_text())["key"] == key


def finish_stage(directory: Path, key: str, info: dict | None = None) -> None:
    (directory / ".stage.json").write_text(json.dumps({"key": key, **(info or {})}))


def reset(directory: Path) -> None:
    """Clear a stage directory of this experiment (only ever under --workdir) before rebuilding it."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def cli(args: list[str], log: Path) -> None:
    """Run a replaymill command in-process, exactly as a user's `replaymill ...` does; its console
    output goes to `log` (the experiment's own output stays readable)."""
    from replaymill.pipeline.cli import main

    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        rc = main([str(a) for a in args])
    if rc != 0:
        raise SystemExit(f"replaymill {args[0]} failed with exit code {rc}; see {log}")


def key_file(key: str) -> str:
    return key.replace("/", "_")


class Clock:
    """Wall and CPU seconds per stage: on a shared machine the CPU time says what an idle one would take."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._last, self._last_cpu = self.t0, cpu_seconds()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), cpu_seconds()
        self.stages[name] = self.stages.get(name, 0.0) + now - self._last
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu - self._last_cpu
        self._last, self._last_cpu = now, cpu
        print(f"[moat] {name}: {now - self.t0:.0f} s elapsed, {cpu:.0f} CPU s", flush=True)


# ----- stage 1: closed corpus and tokenizer ------------------------------------------------------

def closed_candidates(docs: list[corpus.Doc], weights: dict[str, float]) -> dict[str, list[corpus.Doc]]:
    """Closed-side documents per hidden key; a key with a language keeps only documents fastText
    identifies as that language (the model builder's filter)."""
    from replaymill.transforms.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    lid.load()
    out: dict[str, list[corpus.Doc]] = {}
    for key in weights:
        origin, _, lang = key.partition("/")
        cands = [d for d in docs if d.origin == origin]
        if lang:
            langs = lid.predict_batch([d.text for d in cands])
            cands = [d for d, (got, score) in zip(cands, langs) if got == lang and score >= 0.5]
        out[key] = cands
    return out


def take_tokens(docs: list, counts: dict[str, int], target: float) -> tuple[list, list]:
    """Documents from the front until their tokens reach `target` (the last one crosses it), and the rest."""
    used = 0
    for i, d in enumerate(docs):
        if used >= target:
            return docs[:i], docs[i:]
        used += counts[d.id]
    return docs, []


def build_closed(args, weights: dict[str, float], closed: dict[str, list[corpus.Doc]], budget: int,
                 work: Path) -> dict:
    """Eval / oracle / pre-training parts in the hidden weights, the BPE, and their files."""
    import numpy as np

    from replaymill.trainer.bpe import train_bpe
    from replaymill.transforms.tokens import count_tokens, load_tokenizer

    rng = np.random.default_rng(7)
    shuffled = {k: [docs[i] for i in rng.permutation(len(docs))] for k, docs in closed.items()}
    # Reserve generous characters (5 per token) for eval and oracle, train the BPE on the rest only.
    oracle_tokens = budget * args.oracle_pool
    reserve_chars = {k: 5 * w * (args.eval_tokens + oracle_tokens) for k, w in weights.items()}
    held, rest = {}, {}
    for k, docs in shuffled.items():
        chars, i = 0, 0
        while i < len(docs) and chars < reserve_chars[k]:
            chars += len(docs[i].text)
            i += 1
        held[k], rest[k] = docs[:i], docs[i:]
    rest_chars = {k: sum(len(d.text) for d in v) for k, v in rest.items()}
    scale = min(rest_chars[k] / w for k, w in weights.items())
    bpe_texts = []
    for k, docs in rest.items():
        bpe_texts += [d.text for d in take_tokens(docs, {d.id: len(d.text) for d in docs}, weights[k] * scale)[0]]
    tok_dir = work / "tokenizer"
    train_bpe(bpe_texts, args.vocab, tok_dir)
    tok = load_tokenizer(str(tok_dir))
    every = [d for v in shuffled.values() for d in v]
    counts = dict(zip((d.id for d in every), count_tokens([d.text for d in every], tok)))

    parts: dict[str, dict[str, list]] = {"eval": {}, "oracle": {}, "pretrain": {}}
    for k, w in weights.items():
        parts["eval"][k], left = take_tokens(held[k], counts, w * args.eval_tokens)
        parts["oracle"][k], _ = take_tokens(left, counts, w * oracle_tokens)
    rest_tokens = {k: sum(counts[d.id] for d in v) for k, v in rest.items()}
    pretrain_total = min(rest_tokens[k] / w for k, w in weights.items())
    for k, w in weights.items():
        parts["pretrain"][k], _ = take_tokens(rest[k], counts, w * pretrain_total)
    report = {part: {k: sum(counts[d.id] for d in v) for k, v in by_key.items()} for part, by_key in parts.items()}
    for part, by_key in report.items():
        total = sum(by_key.values())
        report[part] = {"tokens": by_key, "shares": {k: v / total for k, v in by_key.items()}, "total": total,
                        "docs": {k: len(parts[part][k]) for k in by_key}}

    files = {}
    for part in ("eval", "pretrain"):
        docs = [d for v in parts[part].values() for d in v]
        docs = [docs[i] for i in rng.permutation(len(docs))]  # interleaved: any prefix holds the mixture
        files[part] = corpus.write_text_jsonl([(d.id, d.text) for d in docs], work / f"{part}.jsonl")
    for k, v in parts["eval"].items():
        files[f"eval:{k}"] = corpus.write_text_jsonl([(d.id, d.text) for d in v], work / f"eval-{key_file(k)}.jsonl")
    files["oracle"] = write_oracle_set(parts["oracle"], counts, work / "oracle-set")
    return {"files": files, "parts": report, "tokenizer": str(tok_dir),
            "units": {k: len({d.unit for d in v}) for k, v in closed.items()}}


def write_oracle_set(by_key: dict[str, list[corpus.Doc]], counts: dict[str, int], root: Path) -> str:
    """The held-out closed documents as a real shard set (base-model token counts), one key per partition."""
    from datetime import datetime, timezone

    import pyarrow as pa

    from replaymill.schemas.document import SCHEMA_VERSION, new_document, to_record_batch
    from replaymill.schemas.manifest import Manifest, totals_from_shards
    from replaymill.shards.io import write_manifest, write_shard

    infos = []
    for key, docs in by_key.items():
        domain, _, lang = key.partition("/")
        lang = lang or "en"
        rows = [dict(new_document(d.id, d.text, "closed"), domain=domain, lang=lang, n_tokens=counts[d.id],
                     n_chars=len(d.text)) for d in docs]
        table = pa.Table.from_batches([to_record_batch(rows)])
        infos.append(write_shard(str(root), f"domain={domain}/lang={lang}/part-00000.arrow", table, domain, lang))
    by_domain, by_lang, total = totals_from_shards(infos)
    write_manifest(str(root), Manifest(
        schema_version=SCHEMA_VERSION, kind="sample", created_at=datetime.now(timezone.utc).isoformat(),
        tool_version="bench/moat_experiment", inputs=["closed corpus (held out)"], shards=infos,
        by_domain=by_domain, by_lang=by_lang, total=total))
    return str(root)


# ----- stage 2: base models ----------------------------------------------------------------------

def count_params(model_dir: Path) -> int:
    """Parameters of a saved model, from its safetensors header (no weights loaded)."""
    import struct

    total = 0
    for path in Path(model_dir).glob("*.safetensors"):
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        for name, entry in header.items():
            if name != "__metadata__":
                total += math.prod(entry["shape"])
    return total


def init_model(directory: Path, tokenizer_dir: str, hidden: int, layers: int, seq_len: int, seed: int) -> None:
    """A randomly initialised Llama with the BPE, saved as a plain HF directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    heads = max(2, hidden // 32)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=int(hidden * 8 / 3 + 15) // 16 * 16,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max(seq_len, 128), bos_token_id=tok.eos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    hf_logging.disable_progress_bar()
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tok.save_pretrained(directory)


# ----- training jobs (run in worker processes) ----------------------------------------------------

def run_job(job: dict) -> dict:
    """One `train` run (pre-training or a fine-tune), then held-out loss per hidden key; cached by config."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    out = Path(job["config"]["output"])
    result_file = out.parent / f"{out.name}.result.json"
    key = stamp(job)
    from replaymill.trainer.config import TrainConfig
    from replaymill.trainer.loop import train

    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.console.log", "w", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        res = train(TrainConfig(**job["config"]))
    seconds = time.perf_counter() - t0
    per_key = evaluate_files(str(out / "final"), job["eval_files"], job["config"]["seq_len"])
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # written by this run; the final model stays
    if not job.get("keep_model"):
        shutil.rmtree(out / "final", ignore_errors=True)
    result = {"key": key, "name": job["name"], "eval": res["eval"], "per_key": per_key, "seconds": seconds,
              "parameters": res["parameters"], "meta": job.get("meta", {})}
    result_file.write_text(json.dumps(result))
    return result


def evaluate_files(model_dir: str, files: dict[str, str], seq_len: int) -> dict[str, float]:
    """Mean next-token loss of a saved model on each JSONL file (all documents, packed), and "all":
    the token-weighted mean over the files (the held-out set as a whole)."""
    import torch
    from transformers import AutoModelForCausalLM

    from replaymill.trainer.evaluate import evaluate
    from replaymill.trainer.packing import pack_documents
    from replaymill.trainer.tokenizer import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out, sizes = {}, {}
    for name, path in files.items():
        texts = [json.loads(line)["text"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
        rows = pack_documents(texts, tok, seq_len)
        out[name] = evaluate(model, rows, 16, torch.device("cpu"))
        sizes[name] = rows.size
    out["all"] = sum(out[k] * sizes[k] for k in files) / sum(sizes.values())
    return out


def cached_result(job: dict) -> dict | None:
    out = Path(job["config"]["output"])
    path = out.parent / f"{out.name}.result.json"
    if path.exists():
        result = json.loads(path.read_text())
        if result["key"] == stamp(job):
            return result
    return None


def run_jobs(jobs: list[dict], n: int) -> list[dict]:
    """Every job's result: cached ones read back, the others run `n` at a time in spawned workers."""
    results = {i: cached_result(j) for i, j in enumerate(jobs)}
    todo = [i for i, r in results.items() if r is None]
    if n <= 1 or len(todo) <= 1:
        for i in todo:
            results[i] = run_job(jobs[i])
    else:
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            for i, r in zip(todo, pool.map(run_job, [jobs[i] for i in todo])):
                results[i] = r
    return [results[i] for i in range(len(jobs))]


# ----- stage 3: pool and replay sets -------------------------------------------------------------

def set_weights_yaml(root: str, path: Path) -> str:
    """A weights YAML of a shard set's own composition per domain/lang (by tokens), so the trainer's
    ReplaySampler draws it in exactly its own proportions in every prefix."""
    import yaml

    path.write_text(yaml.safe_dump({"by": "tokens", "weights": key_tokens(root)}), encoding="utf-8")
    return str(path)


def key_tokens(root: str) -> dict[str, int]:
    """Tokens per domain/lang key of a shard set, from its manifest."""
    from replaymill.shards.io import read_manifest

    tokens: dict[str, int] = {}
    for s in read_manifest(root).shards:
        tokens[f"{s.domain}/{s.lang}"] = tokens.get(f"{s.domain}/{s.lang}", 0) + s.tokens
    return tokens


def origin_shares(root: str, weights: dict[str, float]) -> dict[str, float]:
    """Token shares of a replay set by what its documents really are: a hidden key (origin, and the
    key's language where it names one) or "other"."""
    import pyarrow.dataset as pds

    table = pds.dataset(root, format="arrow", partitioning="hive", exclude_invalid_files=True).to_table(
        columns=["id", "lang", "n_tokens"])
    acc = {k: 0 for k in weights} | {"other": 0}
    prefix = {v: k for k, v in corpus.DOC_PREFIX.items()}
    for doc_id, lang, n in zip(*(table.column(c).to_pylist() for c in ("id", "lang", "n_tokens"))):
        origin = prefix.get(doc_id.split(":", 1)[0], "distractor")
        key = next((k for k in weights if k.split("/")[0] == origin and
                    (("/" not in k) or k.split("/", 1)[1] == lang)), "other")
        acc[key] += n or 0
    total = sum(acc.values()) or 1
    return {k: v / total for k, v in acc.items()}


# ----- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    ap = make_parser()
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            if ap.get_default(k) == getattr(args, k):
                setattr(args, k, v)
    weights = parse_weights(args.weights)
    try:
        ratios = [float(r) for r in args.ratios.split(",")]
    except ValueError:
        raise UsageError(f"--ratios {args.ratios!r}: comma-separated numbers, e.g. 0.05,0.25") from None
    if not ratios or not all(0 < r <= 1 for r in ratios):
        raise UsageError("--ratios must lie in (0, 1]")
    sizes = parse_sizes(args.sizes)
    if not 0 <= args.main_size < len(sizes):
        raise UsageError(f"--main-size {args.main_size} is not an index into --sizes")
    if args.seeds < 2:
        raise UsageError("--seeds must be at least 2 (the report gives mean ± std)")
    sources = [x.strip() for x in args.sources.split(",") if x.strip()]
    unknown = [x for x in sources if x not in SOURCES]
    if unknown:
        raise UsageError(f"--sources: unknown {', '.join(unknown)} (choose from {', '.join(SOURCES)})")
    if missing := [x for x in REQUIRED_SOURCES if x not in sources]:
        raise UsageError(f"--sources must include {', '.join(missing)} (the report's goals compare them)")
    sources = [x for x in SOURCES if x in sources]
    check_paths(args)
    main_size = sizes[args.main_size]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    report_dir = Path(args.report_dir) if args.report_dir else work / "report"
    clock = Clock()
    load0 = os.getloadavg()
    if args.probe_max_new_tokens is None:
        args.probe_max_new_tokens = args.seq_len - 1
    tokens_per_step = args.batch_size * args.seq_len
    budget = math.ceil(max(ratios) * args.finetune_steps * tokens_per_step * 1.05)
    print(f"[moat] hidden weights {weights}; replay budget {budget:,} tokens per source; sizes {sizes}; "
          f"load average {load0[0]:.2f}", flush=True)

    # 1. documents, sides, closed corpus, tokenizer
    data_key = stamp(args.web, args.code, args.books, args.distractors, args.weights, args.doc_chars,
                     args.closed_fraction, args.max_code_mb, args.max_web_mb, args.max_books_mb, args.max_distractor_mb, args.salt, args.vocab,
                     args.eval_tokens, budget, args.oracle_pool)
    data_dir = work / "data"
    if not cached(data_dir, data_key, args.fresh):
        reset(data_dir)
        code_cap = int(args.max_code_mb * 1e6)
        mb = lambda v: float("inf") if v is None else v * 1e6  # noqa: E731
        docs = (corpus.web_docs(args.web, args.doc_chars, mb(args.max_web_mb))
                + corpus.code_docs(args.code, args.doc_chars, {"closed": code_cap, "open": code_cap},
                                   args.closed_fraction, args.salt)
                + corpus.book_docs(args.books, args.doc_chars, mb(args.max_books_mb)))
        sides = {d.id: corpus.side_of(d.origin, d.unit, args.closed_fraction, args.salt) for d in docs}
        closed = closed_candidates([d for d in docs if sides[d.id] == "closed"], weights)
        if empty := [k for k, v in closed.items() if not v]:
            raise UsageError(f"no closed-side documents for {', '.join(empty)}: give more input of that origin "
                             "(its units, e.g. books, are dealt to the closed or open side by a hash)")
        info = build_closed(args, weights, closed, budget, data_dir / "closed")
        distractors = corpus.distractor_docs(args.distractors, args.doc_chars, int(args.max_distractor_mb * 1e6))
        pool_docs = [d for d in docs if sides[d.id] == "open"] + distractors
        closed_units = {(d.origin, d.unit) for d in docs if sides[d.id] == "closed"}
        assert not any((d.origin, d.unit) in closed_units for d in pool_docs), "a unit on both sides"
        info["pool_inputs"] = corpus.write_pool_jsonl(pool_docs, data_dir / "pool-raw")
        info["pool_raw"] = {o: sum(len(d.text) for d in pool_docs if d.origin == o)
                            for o in (*corpus.ORIGINS, "distractor")}
        (data_dir / "info.json").write_text(json.dumps(info, indent=1))
        finish_stage(data_dir, data_key)
    info = json.loads((data_dir / "info.json").read_text())
    files = info["files"]
    clock.lap("closed corpus + tokenizer")

    # 2. base models (pre-training), every size; the main one is the base of everything else
    common = dict(seq_len=args.seq_len, batch_size=args.batch_size, weight_decay=0.1, max_grad_norm=1.0,
                  min_lr_ratio=0.1, plot=False, log_every=10_000)
    eval_files = {k: files[f"eval:{k}"] for k in weights}
    base_dirs, pre_jobs, params, inits = {}, [], {}, {}
    for hidden, layers in sizes:
        name = f"{hidden}x{layers}"
        init_dir = work / "models" / f"init-{name}"
        init_key = stamp(data_key, hidden, layers, args.seq_len)
        if not cached(init_dir, init_key, args.fresh):
            reset(init_dir)
            init_model(init_dir, info["tokenizer"], hidden, layers, args.seq_len, seed=0)
            finish_stage(init_dir, init_key)
        params[name], inits[name] = count_params(init_dir), (init_dir, init_key)
    main_name = f"{main_size[0]}x{main_size[1]}"
    for name, (init_dir, init_key) in inits.items():
        steps = max(args.pretrain_steps // 3, round(args.pretrain_steps * params[name] / params[main_name]))
        out = work / "models" / f"base-{name}"
        base_dirs[name] = str(out / "final")
        pre_jobs.append({"name": f"pretrain-{name}", "keep_model": True, "eval_files": eval_files,
                         "meta": {"size": name, "steps": steps},
                         "init_key": init_key, "config": dict(
                             # no held-out set in the trainer: evaluate_files scores the closed one once
                             model=str(init_dir), task=files["pretrain"], eval_fraction=0.0,
                             steps=steps, eval_every=steps,
                             warmup=max(1, steps // 15), lr=args.pretrain_lr, seed=0, output=str(out),
                             **common)})
    pre = {r["meta"]["size"]: r for r in run_jobs(pre_jobs, args.jobs)}
    base = base_dirs[main_name]
    clock.lap("pre-training")

    # 3. pool (replaymill build --tokenizer BASE), probe, replay sets (replaymill sample)
    pool = work / "pool"
    pool_key = stamp(data_key, pre[main_name]["key"])
    if not cached(pool, pool_key, args.fresh):
        shutil.rmtree(pool, ignore_errors=True)
        cli(["build", "--input", *info["pool_inputs"], "--output", pool, "--recipe", "minimal", "--tokenizer", base,
             "--in-memory"], work / "logs" / "build.log")
        finish_stage(pool, pool_key)
    clock.lap("pool build")
    gens = work / "probe" / "generations.jsonl"
    probe_key = stamp(pool_key, args.probe_samples, args.probe_max_new_tokens)
    if not cached(gens.parent, probe_key, args.fresh):
        reset(gens.parent)
        cli(["probe", "--model", base, "--samples", args.probe_samples, "--max-new-tokens", args.probe_max_new_tokens,
             "--seed", 0, "--batch-size", 256, "--device", "cpu", "--output", gens], work / "logs" / "probe.log")
        finish_stage(gens.parent, probe_key)
    clock.lap("probe")

    from replaymill.shards.io import read_manifest

    pool_tokens = key_tokens(str(pool))
    published = dict(weights)  # the data card: the hidden keys are pool keys (domain or domain/lang)
    from replaymill.shards.sampler import key_for

    covered = {k for k in pool_tokens if key_for(*k.split("/", 1), set(published)) is not None}
    wrong_key = args.wrong_key or max((k for k in pool_tokens if k not in covered), key=lambda k: pool_tokens[k])
    sets_dir = work / "sets"
    sets_dir.mkdir(exist_ok=True)
    import yaml

    targets = {"oracle": published, "preset": published, "uniform": pool_tokens, "wrong": {wrong_key: 1.0}}
    inputs = {"oracle": files["oracle"]}
    replay_sets: dict[str, list[str]] = {}
    set_keys: dict[str, list[str]] = {}
    for source in sources:
        for seed in range(args.seeds):  # one set per seed: the spread includes which documents were drawn
            out = sets_dir / f"{source}-s{seed}"
            key = stamp(probe_key, source, targets.get(source), budget, seed)
            replay_sets.setdefault(source, []).append(str(out))
            set_keys.setdefault(source, []).append(key)
            if cached(out, key, args.fresh):
                continue
            shutil.rmtree(out, ignore_errors=True)
            if source.startswith("dsir"):
                what = ["--reference", gens, "--dsir", DSIR_MODE[source]]
            else:
                wfile = sets_dir / f"{source}-weights.yaml"
                wfile.write_text(yaml.safe_dump({"by": "tokens", "weights": targets[source]}))
                what = ["--target", wfile, "--on-short", "renormalize"]
            cli(["sample", "--shards", inputs.get(source, pool), *what, "--tokens", budget, "--tokenizer", base,
                 "--seed", seed, "--rows-per-shard", 64, "--output", out, "--in-memory"],
                work / "logs" / f"sample-{source}-s{seed}.log")
            finish_stage(out, key)
    mixtures = {s: [origin_shares(root, weights) for root in roots] for s, roots in replay_sets.items()}
    estimated = {s: [read_manifest(r).extra["sampling"]["dsir"] for r in roots] for s, roots in replay_sets.items()
                 if s.startswith("dsir")}
    clock.lap("replay sets")

    # Mixture recovery against base-model quality: probe every size, stratified DSIR, origin shares.
    recovery = {main_name: {"shares": mixtures["dsir"][0], "estimate": estimated["dsir"][0]["estimated_mixture"]}}
    for name, base_dir in base_dirs.items():
        if name == main_name:
            continue
        out = work / "probe" / f"dsir-{name}"
        key = stamp(pool_key, pre[name]["key"], args.probe_samples, args.probe_max_new_tokens, budget)
        if not cached(out, key, args.fresh):
            shutil.rmtree(out, ignore_errors=True)
            size_gens = work / "probe" / f"generations-{name}.jsonl"
            cli(["probe", "--model", base_dir, "--samples", args.probe_samples, "--max-new-tokens",
                 args.probe_max_new_tokens, "--seed", 0, "--batch-size", 256, "--device", "cpu", "--output", size_gens,
                 "--overwrite"], work / "logs" / f"probe-{name}.log")
            cli(["sample", "--shards", pool, "--reference", size_gens, "--tokens", budget, "--tokenizer", base,
                 "--rows-per-shard", 64, "--output", out, "--in-memory"], work / "logs" / f"sample-dsir-{name}.log")
            finish_stage(out, key)
        recovery[name] = {"shares": origin_shares(str(out), weights),
                          "estimate": read_manifest(str(out)).extra["sampling"]["dsir"]["estimated_mixture"]}
    clock.lap("mixture recovery per size")

    # 4. fine-tunes: 0% and every ratio x source x seed on the main size; oracle on every size
    task = ",".join(args.task)
    jobs = []
    for hidden, layers in sizes:
        name = f"{hidden}x{layers}"
        srcs = sources if name == main_name else ("oracle",)
        cells = [("none", 0.0)] + [(s, r) for s in srcs for r in ratios]
        for source, ratio in cells:
            for seed in range(args.seeds):
                run = f"ft-{name}-{source}-r{ratio:g}-s{seed}"
                root = None if source == "none" else replay_sets[source][seed]
                replay = {} if root is None else dict(
                    replay=root, replay_ratio=ratio, replay_on_short="upsample",
                    replay_target=set_weights_yaml(root, Path(root + "-own.yaml")))
                jobs.append({"name": run, "eval_files": eval_files, "base_key": pre[name]["key"],
                             "set_key": None if root is None else set_keys[source][seed],
                             "meta": {"size": name, "source": source, "ratio": ratio, "seed": seed},
                             "config": dict(model=base_dirs[name], task=task, eval_fraction=0.05,
                                            replay_eval=files["eval"], eval_tokens=args.eval_tokens,
                                            steps=args.finetune_steps, eval_every=args.finetune_steps,
                                            warmup=max(1, args.finetune_steps // 10), lr=args.finetune_lr, seed=seed,
                                            output=str(work / "runs" / run), **common, **replay)})
    results = run_jobs(jobs, args.jobs)
    clock.lap("fine-tuning")

    import moat_report

    before = {name: r["per_key"] for name, r in pre.items()}
    report = moat_report.build_report(
        args=vars(args), weights=weights, ratios=ratios, sizes=[f"{h}x{l}" for h, l in sizes], main=main_name,
        before=before, results=results, mixtures=mixtures, closed=info["parts"], pool_tokens=pool_tokens,
        wrong_key=wrong_key, budget=budget, published=published, pretrain=pre,
        dsir_manifest=estimated,
        recovery=recovery, clock=clock.stages, cpu=clock.cpu, load=(load0, os.getloadavg()), units=info["units"], pool_raw=info["pool_raw"])
    moat_report.write(report, report_dir)
    clock.lap("report")
    print(moat_report.markdown(report))
    print(f"[moat] report in {report_dir} (report.md, report.json, forgetting.png); total "
          f"{time.perf_counter() - clock.t0:.0f} s", flush=True)
    return report


if __name__ == "__main__":
    try:
        main()
    except UsageError as e:
        print(f"moat_experiment: error: {e}", file=sys.stderr)
        sys.exit(2)
