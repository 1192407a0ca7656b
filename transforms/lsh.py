"""LSH banding of MinHash signatures, and the S-curve that says what a (bands, rows) setting catches.

A signature of ``bands * rows`` values is cut into `bands` bands of `rows` values; two documents
become candidates when any band is identical. For a pair with Jaccard similarity s that happens
with probability ``p(s) = 1 - (1 - s^rows)^bands``: an S-shaped curve whose steep part sits near
``(1/bands)^(1/rows)``. FineWeb's 14 x 8 puts it near 0.72 (p(0.8) = 0.92, p(0.6) = 0.2).

Band keys are 64-bit hashes of the band's values (plus the band index kept beside them), so the
shuffle moves 10 bytes per (document, band) instead of ``8 * rows``; a spurious 64-bit collision
between different bands (2^-64 per pair) would only add a candidate, which verification or the
S-curve's own false-positive rate already allows for.
"""
from __future__ import annotations

import struct

import numpy as np

from replaymill.transforms.minhash import U64, fmix64

_BAND_SEED = U64(0x243F6A8885A308D3)  # digits of pi: any fixed odd constant works
_BAND_MUL = U64(0x9E3779B97F4A7C15)
_KEY = struct.Struct(">HQ")
_GRID = np.linspace(0.0, 1.0, 4001)


def catch_probability(s: np.ndarray | float, bands: int, rows: int) -> np.ndarray | float:
    """p(s) = 1 - (1 - s^rows)^bands: probability that a pair of Jaccard s shares at least one band."""
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


def threshold_of(bands: int, rows: int) -> float:
    """(1/bands)^(1/rows): the similarity where the S-curve is steepest (the effective threshold)."""
    return (1.0 / bands) ** (1.0 / rows)


def _integrate(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trapezoidal integral along the last axis (vectorized over leading axes)."""
    dx = np.diff(x)
    return np.sum((y[..., 1:] + y[..., :-1]) * 0.5 * dx, axis=-1)


def false_positive_area(threshold: float, bands: int, rows: int) -> float:
    """Integral of p(s) over [0, threshold]: how much the setting catches below the threshold."""
    x = _GRID * threshold
    return float(_integrate(catch_probability(x, bands, rows), x))


def false_negative_area(threshold: float, bands: int, rows: int) -> float:
    """Integral of 1 - p(s) over [threshold, 1]: how much the setting misses above the threshold."""
    x = threshold + _GRID * (1.0 - threshold)
    return float(_integrate(1.0 - catch_probability(x, bands, rows), x))


def optimal_params(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimizing the weighted FP + FN areas (datasketch's rule).

    Settings are scored in vectorized chunks by the trapezoid rule on a fixed 4001-point grid
    (datasketch uses `scipy.integrate.quad` per setting; tests check both pick the same setting);
    ties go to the first (fewest bands), as in datasketch's loop.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be >= 2, got {num_perm}")
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    xl = _GRID * threshold
    xh = threshold + _GRID * (1.0 - threshold)
    errors = []
    for lo in range(0, len(pairs), 256):  # chunks bound the (settings x grid) matrix to a few MB
        chunk = np.array(pairs[lo : lo + 256], dtype=np.float64)
        b, r = chunk[:, :1], chunk[:, 1:]
        fp = _integrate(catch_probability(xl[None, :], b, r), xl)
        fn = _integrate(1.0 - catch_probability(xh[None, :], b, r), xh)
        errors.append(fp * false_positive_weight + fn * false_negative_weight)
    return pairs[int(np.argmin(np.concatenate(errors)))]


def banding_for_recall(threshold: float, num_perm: int, recall: float = 0.95) -> tuple[int, int]:
    """(bands, rows), bands*rows <= num_perm, that makes a pair of Jaccard `threshold` a candidate
    with probability >= `recall`, with the fewest candidates below the threshold (FP area).

    For a search that reports "Jaccard >= threshold" (the audit's contamination check), the S-curve
    must already be high at the threshold; `optimal_params` instead centres the curve on it, so
    about half the pairs right at the threshold are never even compared. Where no setting reaches
    `recall` within `num_perm` (a very low threshold), the one catching the most at the threshold.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)
    b, r = pairs[:, :1], pairs[:, 1:]
    at = catch_probability(threshold, b[:, 0], r[:, 0])
    ok = np.flatnonzero(at >= recall)
    if ok.size == 0:
        best = int(np.argmax(at))
        return int(pairs[best, 0]), int(pairs[best, 1])
    xl = _GRID * threshold
    fp = _integrate(catch_probability(xl[None, :], b[ok], r[ok]), xl)
    best = int(ok[np.argmin(fp)])
    return int(pairs[best, 0]), int(pairs[best, 1])


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64: a 64-bit hash of each band's `rows` signature values, vectorized."""
    n_docs, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows = {bands * rows} exceeds the signature length {num_perm}")
    view = signatures[:, : bands * rows].reshape(n_docs, bands, rows)
    h = np.full((n_docs, bands), _BAND_SEED, dtype=U64)
    for j in range(rows):
        h = fmix64((h ^ view[:, :, j]) * _BAND_MUL)
    return h


def band_key(band: int, band_hash: int) -> bytes:
    """The shuffle key of one (band index, band hash): 10 bytes, a deterministic Beam key."""
    return _KEY.pack(band, band_hash)


def scurve_table(bands: int, rows: int, step: float = 0.05) -> list[tuple[float, float]]:
    """[(jaccard, probability of becoming a candidate pair)] from 0 to 1 in `step` increments."""
    n = int(round(1.0 / step))
    return [(i / n, float(catch_probability(i / n, bands, rows))) for i in range(n + 1)]


def format_scurve(bands: int, rows: int, step: float = 0.05) -> str:
    """A plain-text S-curve table with a bar per row, as `replaymill lsh-curve` prints it."""
    lines = [
        f"bands={bands} rows={rows} num_perm={bands * rows} "
        f"threshold~(1/b)^(1/r)={threshold_of(bands, rows):.3f}",
        f"{'jaccard':>7}  {'P(candidate)':>12}",
    ]
    for s, p in scurve_table(bands, rows, step):
        lines.append(f"{s:7.2f}  {p:12.4f}  {'#' * int(round(p * 40))}")
    return "\n".join(lines)
