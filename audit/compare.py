"""Achieved versus target mixture: per-domain shares, total variation, KL, and which domains are short.

Why both distances: total variation (half the L1 distance, in [0, 1]) reads as "the fraction of
tokens that sit in the wrong domain" and makes a natural CI gate; KL(target || achieved) grows
without bound when a domain the target needs is (nearly) missing, which TV understates.
"""
from __future__ import annotations

import math
from typing import Any

from replaymill.schemas.mixtures import normalize, resolve_target


def load_target(spec: str) -> dict[str, Any]:
    """`--target` (preset name or weights YAML) -> {"name", "by", "weights"} via schemas.mixtures."""
    weights, by, description = resolve_target(spec)
    return {"name": spec, "description": description, "by": by or "tokens", "weights": weights}


def amounts_by_key(cells: list[dict[str, Any]], keys: list[str], by: str) -> dict[str, int]:
    """Per mixture key, the achieved amount (`by` = "tokens" or "docs") from domain x language cells.

    The sampler's rule (`shards.sampler.key_for`): a document counts under `domain/lang` when that
    key is in the target, else under `domain`, and a web topic the target does not name (news,
    forum) under web; a domain the target has no place for keeps its own name (then "unexpected").
    """
    from replaymill.shards.sampler import key_for

    if by not in ("tokens", "docs"):
        raise ValueError(f"by must be 'tokens' or 'docs', not {by!r}")
    wanted = set(keys)
    out: dict[str, int] = {}
    for c in cells:
        key = key_for(c["domain"], c["lang"], wanted) or c["domain"]
        out[key] = out.get(key, 0) + int(c[by])
    return out


def counted_as(cells: list[dict[str, Any]], keys: list[str]) -> dict[str, str]:
    """Domains the target does not name that count toward another key (web topics toward web)."""
    from replaymill.shards.sampler import key_for

    wanted = set(keys)
    out = {}
    for c in cells:
        key = key_for(c["domain"], c["lang"], wanted)
        if key is not None and key.split("/", 1)[0] != c["domain"]:
            out[c["domain"]] = key.split("/", 1)[0]
    return dict(sorted(out.items()))


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """Half the L1 distance between two distributions over the union of their keys."""
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def kl_divergence(p: dict[str, float], q: dict[str, float]) -> float:
    """KL(p || q) in nats; infinite when p puts mass where q has none."""
    out = 0.0
    for k, pk in p.items():
        if pk <= 0:
            continue
        qk = q.get(k, 0.0)
        if qk <= 0:
            return math.inf
        out += pk * math.log(pk / qk)
    return out


def compare_to_target(amounts: dict[str, int], target: dict[str, float], *, by: str = "tokens",
                      tolerance: float = 0.01) -> dict[str, Any]:
    """Compare achieved per-domain `amounts` (tokens or docs) with `target` proportions.

    A domain is *short* when its achieved share is below target by more than `tolerance`
    (absolute). `max_total_at_target` is the largest corpus (in `by` units) that could be drawn
    at exactly the target proportions from what is available, i.e. min over target domains of
    available / target share: the sampler's ceiling without repetition. `deficit` is how much a
    domain lacks to reach its target share at the current total.
    """
    target = normalize(target)
    total = int(sum(amounts.values()))
    achieved = {k: (v / total if total else 0.0) for k, v in amounts.items()}
    rows = []
    for dom in sorted(set(target) | set(amounts)):
        a, t = achieved.get(dom, 0.0), target.get(dom, 0.0)
        rows.append({
            "domain": dom,
            "amount": int(amounts.get(dom, 0)),
            "achieved": a,
            "target": t,
            "diff": a - t,
            "deficit": max(0, int(math.ceil(t * total - amounts.get(dom, 0)))),
            "short": a < t - tolerance,
        })
    ceilings = [amounts.get(d, 0) / t for d, t in target.items() if t > 0]
    kl = kl_divergence(target, achieved) if total else math.inf
    kl_rev = kl_divergence(achieved, target) if total else math.inf
    return {
        "by": by,
        "tolerance": tolerance,
        "domains": rows,
        "total_variation": total_variation(achieved, target) if total else 1.0,
        "kl_target_achieved": None if math.isinf(kl) else kl,
        "kl_infinite": math.isinf(kl),
        # the direction `replaymill sample` reports (infinite when mass sits outside the target)
        "kl_achieved_target": None if math.isinf(kl_rev) else kl_rev,
        "short": [r["domain"] for r in rows if r["short"]],
        "missing": sorted(d for d, t in target.items() if t > 0 and amounts.get(d, 0) == 0),
        "unexpected": sorted(d for d in amounts if target.get(d, 0.0) == 0 and amounts[d] > 0),
        "max_total_at_target": int(min(ceilings)) if ceilings else 0,
        "limiting": limiting_domain(amounts, target, total),
    }


def limiting_domain(amounts: dict[str, int], target: dict[str, float], total: int) -> dict[str, Any] | None:
    """The target domain that caps the corpus drawable at exactly the target proportions (the
    smallest available / share), with that cap and how much more of it would let the whole corpus
    be used at those proportions (`needed_for_all`)."""
    ceilings = {d: amounts.get(d, 0) / t for d, t in target.items() if t > 0}
    if not ceilings:
        return None
    dom = min(ceilings, key=lambda d: (ceilings[d], d))
    return {"domain": dom, "available": int(amounts.get(dom, 0)), "target": target[dom],
            "max_total": int(ceilings[dom]), "corpus_total": int(total),
            "needed_for_all": max(0, int(math.ceil(target[dom] * total)) - int(amounts.get(dom, 0)))}


def limiting_sentence(report_target: dict[str, Any], human=str) -> str | None:
    """What limits a corpus at the target's proportions and what to do about it, in one sentence."""
    lim = report_target.get("limiting")
    if not lim or lim["needed_for_all"] <= 0:
        return None
    by, dom, share = report_target["by"], lim["domain"], lim["target"]
    if lim["available"] == 0:
        return (f"{dom} limits the corpus: the target gives it {share:.1%} but there are no {dom} {by}, so no corpus "
                f"at exactly these proportions exists. Add about {human(lim['needed_for_all'])} {by} of {dom} to use "
                f"all {human(lim['corpus_total'])} {by}, or sample with --on-short renormalize to share its weight "
                f"among the other domains.")
    return (f"{dom} limits the corpus: its {human(lim['available'])} {by} are {share:.1%} of at most "
            f"{human(lim['max_total'])} {by} at exactly these proportions (the corpus has "
            f"{human(lim['corpus_total'])}). Add about {human(lim['needed_for_all'])} {by} of {dom} to use it all, "
            f"or sample with --on-short upsample (repeat {dom}) or --on-short renormalize (share its gap).")
