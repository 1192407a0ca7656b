"""Calibrate and check `transforms.tokens.estimate_tokens` against a real BPE (cl100k_base).

Fits the estimate's weights by non-negative least squares on half of each text kind (multilingual
Common Crawl pages, sentences in 75 languages, Python source) and reports, on the other half, the
median relative error per document and the ratio of summed tokens, beside the usual baseline
"UTF-8 bytes / 4", plus the speed of the estimate relative to the tokenizer in the same run.

    python -m bench.token_estimate           # prints the table and the fitted WEIGHTS dict
Needs the `bpe-openai` package (dev extra), which embeds cl100k_base: no download.
"""
from __future__ import annotations

import gzip
import json
import sysconfig
import time
from pathlib import Path

import numpy as np

from replaymill.transforms import tokens

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def corpora() -> dict[str, list[str]]:
    web = [json.loads(line)["text"] for f in sorted((DATA / "dolma-cc").glob("*.json*.gz"))
           for line in gzip.open(f, "rt", encoding="utf-8")]
    sentences = []
    for f in sorted((DATA / "lingua-sentences").glob("*.txt")):
        lines = f.read_text(encoding="utf-8").splitlines()[:100]
        sentences += [" ".join(lines[i:i + 10]) for i in range(0, len(lines), 10)]  # 10-sentence paragraphs
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))[:300]]
    return {"web (dolma-cc)": web, "75 languages (lingua)": sentences, "python source": code}


def main() -> None:
    import bpe_openai

    enc = bpe_openai.get_encoding("cl100k_base")
    kinds = corpora()
    names = list(tokens.WEIGHTS)
    fit_x, fit_y, held = [], [], {}
    for kind, texts in kinds.items():
        x = np.array([[tokens.token_features(t)[n] for n in names] for t in texts], dtype=float)
        y = np.array([len(enc.encode(t)) for t in texts], dtype=float)
        texts, x, y = [t for t, n in zip(texts, y) if n > 0], x[y > 0], y[y > 0]
        fit_x.append(x[0::2])
        fit_y.append(y[0::2])
        held[kind] = (texts[1::2], y[1::2])
    x, y = np.concatenate(fit_x), np.concatenate(fit_y)
    # Non-negative least squares by projected coordinate descent on relative error (rows scaled by 1/y).
    xs, ys = x / y[:, None], np.ones_like(y)
    w = np.clip(np.linalg.lstsq(xs, ys, rcond=None)[0], 0, None)
    for _ in range(500):
        for j in range(len(w)):
            r = ys - xs @ w + xs[:, j] * w[j]
            denom = xs[:, j] @ xs[:, j]
            w[j] = max(0.0, (xs[:, j] @ r) / denom) if denom else 0.0
    fitted = {n: round(float(v), 4) for n, v in zip(names, w)}
    tokens.WEIGHTS.update(fitted)
    print("WEIGHTS =", json.dumps(fitted))
    print()
    print("| held-out texts | docs | median rel. error: estimate | median rel. error: bytes/4 | sum ratio: estimate | sum ratio: bytes/4 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, (texts, y) in held.items():
        est = np.array([tokens.estimate_tokens(t) for t in texts], dtype=float)
        b4 = np.array([len(t.encode("utf-8")) / 4 for t in texts])
        print(f"| {kind} | {len(texts)} | {np.median(np.abs(est / y - 1)):.3f} | {np.median(np.abs(b4 / y - 1)):.3f} "
              f"| {est.sum() / y.sum():.3f} | {b4.sum() / y.sum():.3f} |")
    all_texts = [t for texts in kinds.values() for t in texts]
    t0 = time.perf_counter()
    for t in all_texts:
        enc.encode(t)
    t_bpe = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in all_texts:
        tokens.estimate_tokens(t)
    t_est = time.perf_counter() - t0
    mb = sum(len(t.encode("utf-8")) for t in all_texts) / 1e6
    print(f"\nspeed: estimate {mb / t_est:.1f} MB/s, cl100k_base BPE {mb / t_bpe:.1f} MB/s, ratio {t_bpe / t_est:.1f}x")


if __name__ == "__main__":
    main()
