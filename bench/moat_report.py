"""Aggregation, goal verdicts, markdown, JSON and plot of the data-moat experiment (bench/moat_experiment.py).

Definitions (stated in the report too):
- forgetting F = held-out closed-corpus loss after fine-tuning minus the base model's (nats/token);
- reduction of a source at ratio r = mean F at 0% - mean F with that source at r;
- share of oracle = reduction(source, r) / reduction(oracle, r): the figure of merit; its std is a
  bootstrap over seeds (each cell resampled with replacement);
- removed = 1 - F(source, r) / F(0%): the share of forgetting removed (Ibrahim et al.'s 71% at 5%);
- "beats by more than 2 std": (mean F_other - mean F_source) / sqrt((s_other^2 + s_source^2) / 2) > 2,
  with s the per-seed standard deviations (not standard errors);
- shortfall of key k: w_k (F_k(source) - F_k(oracle)), its part of the gap to the oracle.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

LABELS = {"none": "no replay", "oracle": "oracle (closed data)", "preset": "preset (published weights)",
          "dsir": "probe + sample --reference (mixture)", "dsir-stratified": "probe + DSIR within keys",
          "dsir-global": "probe + DSIR global top-k",
          "uniform": "uniform pool sample", "wrong": "wrong domain"}
SOURCES = ("oracle", "preset", "dsir", "dsir-stratified", "dsir-global", "uniform", "wrong")  # table order
APPROX = ("preset", "dsir")
CONTROLS = ("uniform", "wrong")


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0) if xs else (math.nan, math.nan)


def _bootstrap_share(none: list[float], src: list[float], oracle: list[float], draws: int = 2000) -> float:
    rng = np.random.default_rng(0)
    n, s, o = (np.asarray(x, dtype=float) for x in (none, src, oracle))
    pick = lambda a: a[rng.integers(0, len(a), size=(draws, len(a)))].mean(axis=1)  # noqa: E731
    bn, bs, bo = pick(n), pick(s), pick(o)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = (bn - bs) / (bn - bo)
    shares = shares[np.isfinite(shares)]
    return float(np.std(shares)) if len(shares) > 1 else math.nan


def build_report(*, args: dict, weights: dict[str, float], ratios: list[float], sizes: list[str], main: str,
                 before: dict, results: list[dict], mixtures: dict, closed: dict, pool_tokens: dict, wrong_key: str,
                 budget: int, published: dict, pretrain: dict, dsir_manifest: dict, recovery: dict, clock: dict,
                 cpu: dict, load: tuple,
                 units: dict, pool_raw: dict) -> dict[str, Any]:
    cells: dict[tuple, list[dict]] = {}
    for r in results:
        m = r["meta"]
        src = m["source"] if m["ratio"] > 0 else "none"
        cells.setdefault((m["size"], src, m["ratio"]), []).append(r)

    def forgetting(size: str, src: str, ratio: float, key: str = "all") -> list[float]:
        return [r["per_key"][key] - before[size][key] for r in cells.get((size, src, ratio), [])]

    def task(size: str, src: str, ratio: float) -> list[float]:
        return [r["eval"]["task"] for r in cells.get((size, src, ratio), [])]

    rows = []
    none_f = forgetting(main, "none", 0.0)
    none_task = task(main, "none", 0.0)
    base = {"source": "none", "ratio": 0.0, "forgetting": _mean_std(none_f), "task": _mean_std(none_task),
            "per_key": {k: _mean_std(forgetting(main, "none", 0.0, k)) for k in weights},
            "removed": 0.0, "share_of_oracle": None, "n": len(none_f)}
    rows.append(base)
    sources = [s for s in SOURCES if any(m["meta"]["source"] == s for m in results)]
    for src in sources:
        for ratio in ratios:
            f = forgetting(main, src, ratio)
            o = forgetting(main, "oracle", ratio)
            red, red_o = statistics.fmean(none_f) - statistics.fmean(f), statistics.fmean(none_f) - statistics.fmean(o)
            rows.append({"source": src, "ratio": ratio, "forgetting": _mean_std(f), "task": _mean_std(task(main, src, ratio)),
                         "per_key": {k: _mean_std(forgetting(main, src, ratio, k)) for k in weights},
                         "removed": red / statistics.fmean(none_f), "reduction": red,
                         "share_of_oracle": red / red_o if red_o else math.nan,
                         "share_std": _bootstrap_share(none_f, f, o) if src != "oracle" else 0.0, "n": len(f)})
    row = {(r["source"], r["ratio"]): r for r in rows}

    goals = {}
    share_ok = all(row[(s, r)]["share_of_oracle"] >= 0.8 for s in APPROX for r in ratios)
    goals["approx >= 80% of oracle's reduction"] = {
        "met": share_ok, "detail": {f"{s}@{r:g}": round(row[(s, r)]["share_of_oracle"], 3) for s in APPROX for r in ratios}}
    margins = {}
    for s in APPROX:
        for c in CONTROLS:
            for r in ratios:
                (ms, ss), (mc, sc) = row[(s, r)]["forgetting"], row[(c, r)]["forgetting"]
                pooled = math.sqrt((ss ** 2 + sc ** 2) / 2)
                margins[f"{s} vs {c} @{r:g}"] = round((mc - ms) / pooled, 2) if pooled > 0 else (math.inf if mc > ms else -math.inf)
    goals["approx beat uniform and wrong-domain by > 2 std"] = {"met": all(v > 2 for v in margins.values()),
                                                              "detail": margins}
    tvs = {s: _mean_std([tv(m, weights) for m in per_seed]) for s, per_seed in mixtures.items()}
    mean_mix = {s: {k: statistics.fmean(m[k] for m in per_seed) for k in per_seed[0]} for s, per_seed in mixtures.items()}
    goals["DSIR recovers the hidden mixture within TV <= 0.10"] = {
        "met": tvs["dsir"][0] <= 0.10, "detail": {s: f"{m:.3f} ± {sd:.3f}" for s, (m, sd) in tvs.items()}}
    low = min(ratios)
    task_rel = {s: (row[(s, low)]["task"][0] - base["task"][0]) / base["task"][0] for s in sources}
    goals[f"task loss at {low:.0%} replay within 3% of no replay"] = {
        "met": all(v <= 0.03 for v in task_rel.values()), "detail": {s: round(v, 4) for s, v in task_rel.items()}}

    shortfall = {}
    for s in sources[1:]:
        for r in ratios:
            gaps = {k: weights[k] * (row[(s, r)]["per_key"][k][0] - row[("oracle", r)]["per_key"][k][0]) for k in weights}
            total = sum(gaps.values())
            worst = max(gaps, key=gaps.get)
            shortfall[f"{s}@{r:g}"] = {"gap_by_key": gaps, "total": total, "costliest": worst}

    scale = []
    for size in sizes:
        nf = forgetting(size, "none", 0.0)
        entry = {"size": size, "parameters": pretrain[size]["parameters"], "base_loss": before[size]["all"],
                 "pretrain_steps": pretrain[size]["meta"].get("steps"),
                 "forgetting_0": _mean_std(nf)}
        for r in ratios:
            of = forgetting(size, "oracle", r)
            entry[f"removed@{r:g}"] = 1 - statistics.fmean(of) / statistics.fmean(nf) if of and nf else math.nan
            entry[f"forgetting@{r:g}"] = _mean_std(of)
        if size in recovery:
            entry["dsir_shares"] = recovery[size]["shares"]
            entry["dsir_tv"] = tv(recovery[size]["shares"], weights)
        scale.append(entry)

    return {"args": args, "sources": sources, "weights": weights, "published": published, "ratios": ratios, "main_size": main,
            "budget_tokens": budget, "rows": rows, "goals": goals, "mixtures": mean_mix, "mixtures_per_seed": mixtures,
            "tv": tvs,
            "wrong_key": wrong_key, "shortfall": shortfall, "scale": scale, "closed": closed, "units": units,
            "pool_tokens": dict(sorted(pool_tokens.items(), key=lambda kv: -kv[1])), "pool_raw_chars": pool_raw,
            "dsir": dsir_manifest, "before": before, "seconds": clock, "total_seconds": sum(clock.values()),
            "cpu_seconds": cpu, "total_cpu_seconds": sum(cpu.values()),
            "load_average": {"start": load[0], "end": load[1]},
            "pretrain_seconds": {k: v["seconds"] for k, v in pretrain.items()},
            "finetune_seconds": statistics.fmean(r["seconds"] for r in results) if results else 0.0}


def tv(shares: dict[str, float], weights: dict[str, float]) -> float:
    keys = set(shares) | set(weights)
    return 0.5 * sum(abs(shares.get(k, 0.0) - weights.get(k, 0.0)) for k in keys)


def _pm(ms: tuple[float, float], digits: int = 3) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def markdown(rep: dict) -> str:
    w = rep["weights"]
    a = rep["args"]
    lines = [f"## Data-moat experiment: main model {rep['main_size']} "
             f"({rep['scale'][[s['size'] for s in rep['scale']].index(rep['main_size'])]['parameters']:,} parameters)", ""]
    lines.append(f"Hidden mixture (by base-model tokens): {', '.join(f'{k} {v:.2f}' for k, v in w.items())}. "
                 f"Replay budget per source: {rep['budget_tokens']:,} tokens. Fine-tuning: {a['finetune_steps']} steps "
                 f"x {a['batch_size']}x{a['seq_len']} tokens on German, {a['seeds']} seeds per cell. "
                 f"Wrong-domain key: `{rep['wrong_key']}`. Losses in nats/token; forgetting = held-out closed loss "
                 "rise; share of oracle = this source's forgetting reduction / the oracle's at the same ratio.")
    lines += ["", "| source | replay | forgetting | removed | share of oracle | task loss |", "|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        share = "-" if r["share_of_oracle"] is None else (
            "1 (ref.)" if r["source"] == "oracle" else f"{r['share_of_oracle']:.2f} ± {r['share_std']:.2f}")
        lines.append(f"| {LABELS[r['source']]} | {r['ratio']:.0%} | {_pm(r['forgetting'])} | {r['removed']:.0%} | "
                     f"{share} | {_pm(r['task'])} |")
    lines += ["", "Goals:", ""]
    for name, g in rep["goals"].items():
        lines.append(f"- {'MET' if g['met'] else 'NOT MET'}: {name} ({', '.join(f'{k} {v}' for k, v in g['detail'].items())})")
    keys = [*w, "other"]
    lines += ["", "Mixture of each replay set by what its documents are (token shares; `other` = distractors, "
              "other languages, other sites' non-web pages) and total variation from the hidden weights:", "",
              "| set | " + " | ".join(keys) + " | TV |", "|---|" + "---|" * (len(keys) + 1)]
    lines.append("| hidden weights | " + " | ".join(f"{w.get(k, 0):.3f}" for k in keys) + " | 0 |")
    for s, shares in rep["mixtures"].items():
        lines.append(f"| {LABELS[s]} | " + " | ".join(f"{shares.get(k, 0):.3f}" for k in keys)
                     + f" | {_pm(rep['tv'][s])} |")
    est = rep["dsir"].get("dsir") or []
    if est and est[0].get("estimated_mixture"):
        keys_est: dict[str, list[float]] = {}
        for e in est:
            for k, v in e["estimated_mixture"].items():
                keys_est.setdefault(k, []).append(v["doc_share"])
        top = sorted(keys_est.items(), key=lambda kv: -statistics.fmean(kv[1]))[:8]
        lines += ["", "`sample --reference`'s estimate of the probe's mixture (share of its documents per "
                  "pool key): " + ", ".join(f"{k} {statistics.fmean(v):.3f}" for k, v in top)]
    lines += ["", "Forgetting per hidden key (mean over seeds) and where each approximate source falls short of "
              "the oracle (w_k x (F_k - F_k oracle)):", "",
              "| source | replay | " + " | ".join(w) + " | gap to oracle | costliest key |",
              "|---|---|" + "---|" * (len(w) + 2)]
    for r in rep["rows"]:
        sf = rep["shortfall"].get(f"{r['source']}@{r['ratio']:g}")
        gap = f"{sf['total']:+.3f}" if sf else "-"
        worst = f"{sf['costliest']} ({sf['gap_by_key'][sf['costliest']]:+.3f})" if sf else "-"
        lines.append(f"| {LABELS[r['source']]} | {r['ratio']:.0%} | "
                     + " | ".join(f"{r['per_key'][k][0]:.3f}" for k in w) + f" | {gap} | {worst} |")
    lines += ["", "Scale trend (oracle replay; removed = 1 - F(r) / F(0%); Ibrahim et al. report 71% at 5%, "
              "88% at 25% for 405M-10B models):", "",
              "| model | parameters | pre-training steps | base closed loss | forgetting at 0% | " + " | ".join(
                  f"removed at {r:.0%}" for r in rep["ratios"]) + " | DSIR mixture from its probe | TV |",
              "|---|---|---|---|---|" + "---|" * len(rep["ratios"]) + "---|---|"]
    for s in rep["scale"]:
        mix = ", ".join(f"{k} {v:.2f}" for k, v in s.get("dsir_shares", {}).items())
        lines.append(f"| {s['size']} | {s['parameters']:,} | {s['pretrain_steps']} | {s['base_loss']:.3f} | "
                     f"{_pm(s['forgetting_0'])} | "
                     + " | ".join(f"{s[f'removed@{r:g}']:.0%}" for r in rep["ratios"])
                     + f" | {mix or '-'} | {s.get('dsir_tv', float('nan')):.3f} |")
    secs = rep["seconds"]
    cpu = rep.get("cpu_seconds", {})
    lines += ["", f"Runtime {rep['total_seconds']:.0f} s wall ({', '.join(f'{k} {v:.0f} s' for k, v in secs.items())}); "
              f"{rep.get('total_cpu_seconds', 0):.0f} CPU s ({', '.join(f'{k} {v:.0f}' for k, v in cpu.items())}); "
              f"load average {rep['load_average']['start'][0]:.2f} at start, {rep['load_average']['end'][0]:.2f} at end; "
              f"one fine-tune {rep['finetune_seconds']:.1f} s wall on average."]
    return "\n".join(lines) + "\n"


def plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = {(r["source"], r["ratio"]): r for r in rep["rows"]}
    xs = [0.0, *rep["ratios"]]
    for src in rep["sources"]:
        pts = [rows[("none", 0.0)] if x == 0 else rows[(src, x)] for x in xs]
        ax.errorbar([100 * x for x in xs], [p["forgetting"][0] for p in pts], yerr=[p["forgetting"][1] for p in pts],
                    marker="o", capsize=3, label=LABELS[src])
    ax.set_xlabel("replay share of every batch's tokens (%)")
    ax.set_ylabel("forgetting: held-out closed loss rise (nats/token)")
    ax.set_title(f"Forgetting vs replay ratio ({rep['main_size']}, mean ± std over {rep['args']['seeds']} seeds)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for s in rep["scale"]:
        ax2.plot([100 * x for x in xs], [0.0] + [100 * s[f"removed@{r:g}"] for r in rep["ratios"]], marker="o",
                 label=f"{s['size']} ({s['parameters'] / 1e6:.2f}M)")
    ax2.axhline(71, color="grey", ls=":", lw=1)
    ax2.text(1, 72, "Ibrahim et al.: 71% at 5%", fontsize=7, color="grey")
    ax2.set_xlabel("oracle replay share (%)")
    ax2.set_ylabel("forgetting removed (%)")
    ax2.set_title("Scale trend: oracle replay", fontsize=9)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(rep: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(rep, indent=1, default=str), encoding="utf-8")
    (directory / "report.md").write_text(markdown(rep), encoding="utf-8")
    plot(rep, directory / "forgetting.png")
