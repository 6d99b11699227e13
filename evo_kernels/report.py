"""Reports of a run (one problem or a suite): `show` in the terminal, a self-contained HTML file with
plots (matplotlib, embedded as PNG data), and a Markdown summary. Everything is read from the store,
so a report can be made while the run is still going."""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store import existing_store


@dataclass
class ProblemRecord:
    problem_id: str
    name: str
    level: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per evaluation, in order
    summary: dict[str, Any] | None = None

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [r for r in self.rows if r["status"] == "ok" and r["speedup"] and r["technique"] != "reference"]
        return max(ok, key=lambda r: r["speedup"]) if ok else None

    @property
    def result(self) -> str:
        """What the finished search returns (best.py): the winner, or the faster baseline itself
        when no candidate beat it. "-" while the problem is still running."""
        s = self.summary or {}
        if not s.get("best_speedup"):
            return "-"
        return f"{s['best_speedup']:.3f}x {s.get('best_technique', '')}".rstrip()

    def by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return dict(sorted(out.items()))

    def lineage(self, candidate_id: str) -> list[dict[str, Any]]:
        """The winner and its ancestors, oldest first: which technique each step added."""
        by_id = {r["candidate_id"]: r for r in self.rows}
        chain, seen = [], set()
        cid: str | None = candidate_id
        while cid and cid in by_id and cid not in seen:
            seen.add(cid)
            chain.append(by_id[cid])
            parents = by_id[cid]["parents"]
            cid = parents[0] if parents else None
        return list(reversed(chain))


def collect(run_dir: Path) -> list[ProblemRecord]:
    """Every problem of a run, with its evaluations and (once finished) its result, from the store."""
    with existing_store(run_dir) as store:
        records = []
        for prow in store.problems():
            rec = ProblemRecord(prow.id, prow.name, prow.level or "-")
            for r in store.records(prow.id):
                c, e = r.candidate, r.evaluation
                rec.rows.append({"created": r.created, "status": e.status, "reason": e.reason, "speedup": e.speedup,
                                 "median_ms": e.median_ms, "candidate_id": c.id, "technique": c.technique,
                                 "proposer": c.proposer, "parents": list(c.parents), "params": c.params})
            rec.summary = store.summary(prow.id)
            records.append(rec)
        return records


def print_summary(records: list[ProblemRecord]) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title="evo_kernels run")
    for col in ("level", "problem", "evaluations", "best candidate", "technique", "result", "statuses"):
        t.add_column(col)
    for rec in records:
        best = rec.best
        t.add_row(rec.level, rec.name, str(len(rec.rows)), f"{best['speedup']:.3f}x" if best else "-",
                  best["technique"] if best else "-", rec.result,
                  " ".join(f"{k}:{v}" for k, v in rec.by_status().items()))
    Console().print(t)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def plots(records: list[ProblemRecord]) -> dict[str, str]:
    """The report's figures as PNG data URIs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = {}
    names = [r.name for r in records]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(records) + 2), 4))
    best = [(r.best or {}).get("speedup") or 0.0 for r in records]
    ax.bar(range(len(records)), best, color=["tab:green" if b > 1 else "tab:gray" for b in best])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(records)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("best speedup vs faster baseline")
    ax.set_title("Speedup per problem")
    out["speedup"] = _png(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for rec in records:
        xs, ys, ts, so_far = [], [], [], 0.0
        t0 = rec.rows[0]["created"] if rec.rows else 0.0
        for i, r in enumerate(rec.rows, 1):
            if r["status"] == "ok" and r["speedup"] and r["technique"] != "reference":
                so_far = max(so_far, r["speedup"])
            xs.append(i)
            ys.append(so_far)
            ts.append(r["created"] - t0)
        ax1.step(xs, ys, where="post", label=rec.name)
        ax2.step(ts, ys, where="post", label=rec.name)
    ax1.set_xlabel("evaluations")
    ax2.set_xlabel("seconds")
    for a in (ax1, ax2):
        a.set_ylabel("best speedup so far")
    if len(records) <= 12:
        ax1.legend(fontsize=7)
    fig.suptitle("Best so far")
    out["progress"] = _png(fig)

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
    out["statuses"] = _png(fig)
    return out


def _table_rows(records: list[ProblemRecord]) -> list[list[str]]:
    rows = []
    for rec in records:
        best = rec.best
        s = rec.summary or {}
        rows.append([rec.level, rec.name, str(len(rec.rows)),
                     f"{s['eager_ms']:.4f}" if s.get("eager_ms") else "-",
                     f"{s['compile_ms']:.4f}" if s.get("compile_ms") else "-",
                     f"{best['median_ms']:.4f}" if best and best["median_ms"] else "-",
                     f"{best['speedup']:.3f}x" if best else "-", best["technique"] if best else "-",
                     rec.result, " ".join(f"{k}:{v}" for k, v in rec.by_status().items())])
    return rows


# "best ...": the fastest correct candidate searched; "result": what best.py is (the faster baseline
# itself when no candidate beat it).
HEADER = ["level", "problem", "evaluations", "eager ms", "compile ms", "best ms", "best candidate", "technique",
          "result", "statuses"]


def write_markdown(records: list[ProblemRecord], out: Path) -> None:
    lines = ["# evo_kernels report", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in _table_rows(records)]
    for rec in records:
        if rec.best:
            lines += ["", f"## {rec.name}: lineage of the winner", "", "| step | technique | proposer | speedup |",
                      "|---|---|---|---|"]
            for i, r in enumerate(rec.lineage(rec.best["candidate_id"])):
                lines.append(f"| {i} | {r['technique']} | {r['proposer']} | "
                             f"{(r['speedup'] or 0):.3f}x |")
    out.write_text("\n".join(lines) + "\n")


def write_html(records: list[ProblemRecord], out: Path) -> None:
    figs = plots(records)
    esc = html.escape
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _table_rows(records))
    table += "</table>"
    lineages = []
    for rec in records:
        if not rec.best:
            continue
        steps = "".join(f"<li><code>{esc(r['candidate_id'])}</code> {esc(r['technique'])} "
                        f"({esc(r['proposer'])}): {(r['speedup'] or 0):.3f}x</li>"
                        for r in rec.lineage(rec.best["candidate_id"]))
        lineages.append(f"<h3>{esc(rec.name)}</h3><ol>{steps}</ol>")
    imgs = "".join(f'<figure><img alt="{k}" src="{v}"></figure>' for k, v in figs.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>evo_kernels report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 8px;font-size:13px}}img{{max-width:100%}}</style></head><body>
<h1>evo_kernels report</h1><p>{len(records)} problems, {sum(len(r.rows) for r in records)} evaluations.</p>
<h2>Results</h2>{table}<h2>Plots</h2>{imgs}<h2>Lineage of each winner</h2>{''.join(lineages) or '<p>none</p>'}
</body></html>"""
    out.write_text(page)


def export(run_dir: Path, out: Path) -> list[Path]:
    """Each problem's best module (its best.py: runs without evo_kernels) in KernelBench's layout:
    OUT/<level>/<problem file name>, defining `ModelNew`, next to the problem it solves."""
    written = []
    with existing_store(run_dir) as store:
        problems = store.problems()
        for prow in problems:
            if store.summary(prow.id) is None:  # not finished: no best.py of its own yet
                continue
            # A suite writes problems/<name>/best.py; a one-problem run, best.py beside its store.
            best = run_dir / "problems" / prow.name / "best.py"
            if not best.exists() and len(problems) == 1:
                best = run_dir / "best.py"
            if best.exists():
                target = out / (prow.level or "problems") / Path(prow.path).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(best.read_text())
                written.append(target)
    return written
