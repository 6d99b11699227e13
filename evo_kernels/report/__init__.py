"""What people read of a run (one problem or a suite): `show` in the terminal, a self-contained HTML
report (plots embedded as PNG, a sortable table, one section per problem), a Markdown summary, and
`export`. Everything is read from the store, so a report can be made while the run is still going.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import existing_store

STATUS_MARKS = {"ok": "o", "incorrect": "x", "rejected": "s", "compile_error": "^", "runtime_error": "v",
                "timeout": "D", "crash": "X", "proposal_error": "."}


@dataclass
class ProblemRecord:
    problem_id: str
    name: str
    level: str
    source: str = ""  # the problem file as the run read it
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per evaluation, in order
    summary: dict[str, Any] | None = None
    sources: dict[str, str] = field(default_factory=dict)  # candidate id -> its source

    @property
    def best(self) -> dict[str, Any] | None:
        """The fastest correct candidate searched (not the reference, not a baseline in disguise)."""
        ok = [r for r in self.rows if r["status"] == "ok" and r["speedup"] and r["technique"] != "reference"
              and not r.get("same_as")]
        return max(ok, key=lambda r: r["speedup"]) if ok else None

    @property
    def reference(self) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["technique"] == "reference"), None)

    @property
    def result(self) -> str:
        """What the finished search returns (best.py): a confirmed win with its interval, or the
        faster baseline itself. "-" while the problem is still running."""
        s = self.summary or {}
        if not s.get("best_speedup"):
            return "-"
        ci = s.get("best_speedup_ci")
        interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        if s.get("result") == "no significant win":
            return f"1.000x {s.get('best_technique', '')} (no significant win: measured {s.get('measured_speedup') or 0:.3f}x{interval})"
        return f"{s['best_speedup']:.3f}x{interval if s.get('result') == 'win' else ''} {s.get('best_technique', '')}".rstrip()

    def baseline_ms(self, name: str) -> float | None:
        """A baseline's time (`eager_ms`, `compile_ms`): the summary's once the problem has finished,
        else the one its latest timed evaluation was measured against (a run still going)."""
        s = self.summary or {}
        if s.get(name):
            return s[name]
        return next((r[name] for r in reversed(self.rows) if r.get(name)), None)

    def by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return dict(sorted(out.items()))

    def best_so_far(self) -> list[float]:
        """After each evaluation, the best speedup so far, starting from the reference's own (the
        baseline as a candidate), never from zero."""
        out, so_far = [], None
        for r in self.rows:
            if r["status"] == "ok" and r["speedup"]:
                so_far = r["speedup"] if so_far is None else max(so_far, r["speedup"])
            out.append(so_far if so_far is not None else float("nan"))
        return out

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

    def children(self) -> dict[str, list[dict[str, Any]]]:
        """Each candidate's evaluated children (first parent), in order: the lineage tree."""
        out: dict[str, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        for r in self.rows:
            if r["candidate_id"] in seen:
                continue
            seen.add(r["candidate_id"])
            parent = r["parents"][0] if r["parents"] else ""
            out.setdefault(parent, []).append(r)
        return out


def collect(run_dir: Path) -> list[ProblemRecord]:
    """Every problem of a run, with its evaluations and (once finished) its result, from the store."""
    with existing_store(run_dir) as store:
        records = []
        for prow in store.problems():
            rec = ProblemRecord(prow.id, prow.name, prow.level or "-", prow.source)
            for r in store.records(prow.id):
                c, e = r.candidate, r.evaluation
                rec.sources.setdefault(c.id, c.source)
                rec.rows.append({"created": r.created, "status": e.status, "reason": e.reason, "speedup": e.speedup,
                                 "median_ms": e.median_ms, "candidate_id": c.id, "technique": c.technique,
                                 "proposer": c.proposer, "parents": list(c.parents), "params": c.params,
                                 "oracle_error": e.oracle_error, "profile": e.profile, "same_as": e.same_as,
                                 "floor_ms": (e.baseline or {}).get("floor_ms"), "meta": r.meta,
                                 "eager_ms": (e.baseline or {}).get("eager_ms"),
                                 "compile_ms": (e.baseline or {}).get("compile_ms")})
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


def table_rows(records: list[ProblemRecord]) -> list[list[str]]:
    """The results table, a row per problem (HTML and Markdown alike)."""
    rows = []
    for rec in records:
        best = rec.best
        s = rec.summary or {}
        err = (s.get("oracle_error") or {})
        cand_err, base_err = (err.get("candidate") or {}).get("norm"), (err.get("baseline") or {}).get("norm")
        share = s.get("bound_share_result")
        eager, compiled = rec.baseline_ms("eager_ms"), rec.baseline_ms("compile_ms")
        rows.append([rec.level, rec.name, str(len(rec.rows)),
                     f"{eager:.4f}" if eager else "-", f"{compiled:.4f}" if compiled else "-",
                     f"{best['speedup']:.3f}x" if best else "-", best["technique"] if best else "-", rec.result,
                     f"{cand_err:.2e} / {base_err:.2e}" if cand_err is not None and base_err is not None else "-",
                     f"{100 * share:.0f}%" if share else "-",
                     " ".join(f"{k}:{v}" for k, v in rec.by_status().items())])
    return rows


# "best candidate": the fastest correct candidate searched; "result": what best.py is (a confirmed
# win, or the faster baseline itself); "error vs fp64": the result's and eager's relative error
# norms against the float64 oracle; "of roofline": the roofline's time (bytes in and out at the measured
# bandwidth, or the products at the fastest unit the run's precision admits) over the result's.
HEADER = ["level", "problem", "evaluations", "eager ms", "compile ms", "best candidate", "technique", "result",
          "error vs fp64 (result / eager)", "of roofline", "statuses"]


def write_markdown(records: list[ProblemRecord], out: Path) -> None:
    lines = ["# evo_kernels report", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(records)]
    for rec in records:
        if rec.best:
            lines += ["", f"## {rec.name}: lineage of the best candidate", "", "| step | technique | proposer | speedup |",
                      "|---|---|---|---|"]
            for i, r in enumerate(rec.lineage(rec.best["candidate_id"])):
                lines.append(f"| {i} | {r['technique']} | {r['proposer']} | {(r['speedup'] or 0):.3f}x |")
    out.write_text("\n".join(lines) + "\n")


def write_html(records: list[ProblemRecord], out: Path) -> None:
    from .html import page
    out.write_text(page(records))


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
