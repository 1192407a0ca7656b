"""Keep rates of real prose per language under the same quality rules, English-only vs per-language.

    python bench/quality_languages.py [--books en=FILE ...] [--sentences DIR] [--web FILE ...] [--words 300]

Documents (every path a flag; defaults from ../shared/data):
- book passages: consecutive lines of public-domain books (en Shakespeare's plays, de Grimm and
  Verne, fr Verne) joined until they reach `--words` words, as a page would be; the English book is
  verse drama (short lines, speaker names repeated), so English prose is best read from the
  sentence groups;
- sentence groups: 8 consecutive lines of the lingua test sentences (Leipzig news sentences) for
  en, de, fr, es, so the four languages are compared on text made the same way (Spanish has no
  book here; this is its prose);
- web pages: the Dolma CC pages whose language (by the cascade) is one of en, de, fr, es.
Every document's language comes from the language-ID cascade, as in a build. The rules are the
FineWeb-style word and line rules (gopher_quality, gopher_repetition, fineweb; c4 is English-only
and reported separately), first as published for English (`per_language: false`), then with
per-language stop words and FineWeb-2 thresholds (`per_language: true`). Prints the keep rate,
the first failing rule's most common reason, and the mean `quality` score per language and source.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
from collections import Counter
from pathlib import Path

from replaymill.schemas.filters import QualityConfig
from replaymill.schemas.langid import LangIdConfig
from replaymill.transforms.langid_cascade import LanguageCascade
from replaymill.transforms.quality import check_rules, compute_signals, quality_score

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BOOKS = ["en=prose/en-tinyshakespeare.txt", "de=prose/de-grimm.txt", "de=prose/de-verne-20000.txt",
         "fr=prose/fr-Verne-2ans.txt"]
LANGS = ("en", "de", "fr", "es")
WEB = ["dolma-cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"]
RULES = {"gopher_quality": True, "gopher_repetition": True, "fineweb": True}


def passages(text: str, words: int, limit: int) -> list[str]:
    """Consecutive lines (paragraphs, or verse lines) joined until each passage has at least `words`
    words, line breaks kept; evenly spread over the book when it has more than `limit`."""
    out, current, n = [], [], 0
    for line in text.splitlines():
        current.append(line)
        n += len(line.split())
        if n >= words:
            out.append("\n".join(current).strip())
            current, n = [], 0
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def documents(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(source, expected language, text)."""
    docs = []
    for spec in args.books:
        lang, path = spec.split("=", 1)
        p = Path(path) if Path(path).is_absolute() else SHARED / path
        docs += [("book passages", lang, t) for t in passages(p.read_text(encoding="utf-8-sig"), args.words, args.limit)]
    for lang in LANGS:
        f = Path(args.sentences) / f"{lang}.txt"
        lines = [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        docs += [("sentence groups", lang, " ".join(lines[i:i + 8])) for i in range(0, len(lines) - 7, 8)][: args.limit]
    for pattern in args.web:
        for path in sorted(SHARED.glob(pattern)) if not Path(pattern).is_absolute() else [Path(pattern)]:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                docs += [("web pages", "?", json.loads(line)["text"]) for line in fh]
    return docs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--books", nargs="+", default=BOOKS, help="LANG=FILE plain-text books")
    ap.add_argument("--sentences", default=str(SHARED / "lingua-sentences"), help="dir with <lang>.txt sentence files")
    ap.add_argument("--web", nargs="+", default=WEB, help="Dolma-style JSONL.gz pages")
    ap.add_argument("--words", type=int, default=300, help="words per book passage")
    ap.add_argument("--limit", type=int, default=300, help="documents per book / per language of sentences")
    args = ap.parse_args()

    docs = documents(args)
    cascade = LanguageCascade(LangIdConfig(cascade=True)).load()
    langs = [r.lang for r in cascade.predict_batch([t for _, _, t in docs])]
    configs = {
        "English rules": QualityConfig.model_validate({**RULES, "per_language": False}),
        "per-language": QualityConfig.model_validate({**RULES, "per_language": True}),
        "per-language + c4": QualityConfig.model_validate({**RULES, "c4": True, "per_language": True}),
    }
    rows: dict[tuple[str, str], dict] = {}
    for (source, expected, text), lang in zip(docs, langs):
        if lang not in LANGS or (expected != "?" and lang != expected):
            continue  # a misidentified passage is langid's error, not the quality rules'
        row = rows.setdefault((source, lang), {"n": 0, **{k: [0, Counter(), 0.0] for k in configs}})
        row["n"] += 1
        for name, config in configs.items():
            per_language = config.per_language
            signals = compute_signals(text, lang if per_language else None)
            failed = check_rules(signals, config, lang if per_language else None)
            cell = row[name]
            cell[0] += failed is None
            if failed:
                cell[1][failed] += 1
            cell[2] += quality_score(signals, lang if per_language else None)
    print(f"load average {os.getloadavg()[0]:.1f}; rules: {', '.join(RULES)} (published thresholds)\n")
    print("| source | lang | docs | " + " | ".join(f"kept, {k}" for k in configs) + " | mean quality, English rules "
          "| mean quality, per-language | most common drop, English rules | most common drop, per-language |")
    print("|---|---|---:|" + "---:|" * (len(configs) + 2) + "---|---|")
    for (source, lang), row in sorted(rows.items()):
        n = row["n"]
        kept = " | ".join(f"{row[k][0] / n:.1%}" for k in configs)
        top = [row[k][1].most_common(1) for k in ("English rules", "per-language")]
        reasons = [f"{t[0][0]} ({t[0][1] / n:.0%})" if t else "-" for t in top]
        print(f"| {source} | {lang} | {n} | {kept} | {row['English rules'][2] / n:.3f} | "
              f"{row['per-language'][2] / n:.3f} | {reasons[0]} | {reasons[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
