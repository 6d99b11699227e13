"""The report's figures (matplotlib, Agg), each returned as a PNG data URI to embed in the page."""
from __future__ import annotations

import base64
import io
import math
from typing import Any

from . import STATUS_MARKS, ProblemRecord


def _pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def overview(records: list[ProblemRecord]) -> dict[str, str]:
    """The run's figures: each problem's result with its interval, and the statuses."""
    plt = _pyplot()
    out = {}
    names = [r.name for r in records]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(records) + 2), 4))
    results = [(r.summary or {}).get("best_speedup") or 0.0 for r in records]
    lows, highs = [], []
    for r, v in zip(records, results):
        ci = (r.summary or {}).get("best_speedup_ci") if (r.summary or {}).get("result") == "win" else None
        lows.append(v - ci[0] if ci else 0.0)
        highs.append(ci[1] - v if ci else 0.0)
    ax.bar(range(len(records)), results, yerr=[lows, highs], capsize=3,
           color=["tab:green" if (r.summary or {}).get("result") == "win" else "tab:gray" for r in records])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(records)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("result vs faster baseline (95% interval)")
    ax.set_title("Result per problem")
    out["results"] = png(fig)

    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(records) + 2), 4))
    statuses = sorted({r["status"] for rec in records for r in rec.rows})
    bottom = [0] * len(records)
    for st in statuses:
        counts = [rec.by_status().get(st, 0) for rec in records]
        ax.bar(range(len(records)), counts, bottom=bottom, label=st)
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xticks(range(len(records)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("evaluations")
    ax.legend(fontsize=7)
    ax.set_title("Statuses")
    out["statuses"] = png(fig)
    return out


def evaluations(rec: ProblemRecord) -> str:
    """Every evaluation of a problem: seconds since the first (x) by speedup (y), coloured by
    technique, marked by status (failures on the axis), with the best so far as a step line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    if not rec.rows:
        return png(fig)
    t0 = rec.rows[0]["created"]
    techniques = sorted({r["technique"] for r in rec.rows})
    cmap = plt.get_cmap("tab20")
    colour = {t: cmap(i % 20) for i, t in enumerate(techniques)}
    for status, marker in STATUS_MARKS.items():
        for tech in techniques:
            pts = [(r["created"] - t0, r["speedup"] if status == "ok" and r["speedup"] else 0.0)
                   for r in rec.rows if r["status"] == status and r["technique"] == tech]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=colour[tech], s=28,
                           label=f"{tech[:40]}" if status == "ok" else None, alpha=0.85)
    xs = [r["created"] - t0 for r in rec.rows]
    so_far = rec.best_so_far()
    ax.step(xs, so_far, where="post", color="black", linewidth=1.0, label="best so far")
    ax.axhline(1.0, color="gray", linewidth=0.6, linestyle="--")
    top = max([v for v in so_far if not math.isnan(v)] + [1.2])
    ax.set_ylim(-0.05, top * 1.15)
    ax.set_xlabel("seconds since the first evaluation (failures on the axis; marker = status)")
    ax.set_ylabel("speedup vs faster baseline")
    if len(techniques) <= 12:
        ax.legend(fontsize=6, loc="upper left", ncol=2)
    return png(fig)
