"""CI gates over an audit report: `--fail-if max_tv=0.1,min_docs=1000,max_dup_rate=0.2`.

Each gate reads one number the JSON report already holds, so a gate that fails in CI can be
checked by hand in the JSON; a gate whose number is unavailable (e.g. `max_tv` without `--target`)
is an error, not a silent pass.
"""
from __future__ import annotations

import math
from typing import Any, Callable


class GateError(ValueError):
    """A malformed `--fail-if` spec or a gate that cannot be evaluated on this report."""


def _need(report: dict[str, Any], key: str, flag: str) -> dict[str, Any]:
    if not report.get(key):
        raise GateError(f"this gate needs {flag}")
    return report[key]


def _kl(r: dict[str, Any]) -> float:
    t = _need(r, "target", "--target")
    return math.inf if t["kl_infinite"] else t["kl_target_achieved"]


def _dup_rate(r: dict[str, Any]) -> float:
    total = r["duplicates"]["total"]
    rates = [total["exact_rate"], total["near_rate"]]
    if r.get("distinct"):
        rates.append(r["distinct"]["estimated_text_dup_rate"])
    return max(rates)


# name -> (direction, value getter, what the value is)
GATES: dict[str, tuple[str, Callable[[dict[str, Any]], float], str]] = {
    "max_tv": ("max", lambda r: _need(r, "target", "--target")["total_variation"], "total variation vs target"),
    "max_kl": ("max", _kl, "KL(target||achieved) in nats"),
    "max_short": ("max", lambda r: len(_need(r, "target", "--target")["short"]), "number of short domains"),
    "min_docs": ("min", lambda r: r["totals"]["docs"], "documents"),
    "min_tokens": ("min", lambda r: r["totals"]["tokens"], "tokens"),
    "max_dup_rate": ("max", _dup_rate, "largest of exact, near and HLL-estimated duplicate rates"),
    "max_contaminated": ("max", lambda r: _need(r, "contamination", "--contamination")["eval_docs_matched"],
                         "evaluation documents found in the corpus"),
    "max_contamination_rate": ("max", lambda r: _need(r, "contamination", "--contamination")["eval_rate"],
                               "fraction of evaluation documents with a near duplicate"),
}


def parse_gates(spec: str) -> dict[str, float]:
    """`"max_tv=0.1,min_docs=1000"` -> {"max_tv": 0.1, "min_docs": 1000.0}; errors name the bad part."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in GATES:
            raise GateError(f"bad gate {part!r}; write NAME=NUMBER with NAME one of {', '.join(GATES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise GateError(f"gate {name}: {value.strip()!r} is not a number") from None
    if not out:
        raise GateError("--fail-if needs at least one NAME=NUMBER")
    return out


def apply_gates(report: dict[str, Any], gates: dict[str, float]) -> dict[str, Any]:
    """Evaluate gates into `report["gates"]` = {"passed", "checks": [{name, threshold, value, passed, detail}]}."""
    checks = []
    for name, threshold in gates.items():
        direction, getter, what = GATES[name]
        try:
            value = float(getter(report))
        except GateError as e:
            raise GateError(f"gate {name}: {e}") from None
        passed = value <= threshold if direction == "max" else value >= threshold
        shown = "inf" if math.isinf(value) else f"{value:.6g}"
        op = "<=" if direction == "max" else ">="
        checks.append({"name": name, "threshold": threshold, "value": None if math.isinf(value) else value,
                       "passed": passed, "detail": f"{what} = {shown}, required {op} {threshold:g}"})
    report["gates"] = {"passed": all(c["passed"] for c in checks), "checks": checks}
    return report["gates"]
