"""Porting a finished run to new hardware: re-verify each problem's best candidate there, re-tune its
parameters with optuna, and (with budget) continue the search from it.

Per problem the verdict is one of: carried over as is (its values are still the best measured
there), carried over after re-tuning (other values won there), or failed there (with why); the
report puts the speedups on each hardware side by side.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.candidate import Candidate
from ..store import open_store


@dataclass
class Ported:
    problem_path: str
    problem_id: str
    candidate: Candidate  # the source run's best, as found
    source_hardware: str
    source_speedup: float
    problem_source: str = ""  # the problem file as the source run read it

    def problem_file(self, run_dir: Path) -> str:
        """The problem's file: where the source run read it or, when the run was moved to another
        machine and that path is gone, the stored copy written under run_dir/sources."""
        if Path(self.problem_path).exists() or not self.problem_source:
            return self.problem_path
        old = Path(self.problem_path)
        path = run_dir / "sources" / old.parent.name / old.name  # the folder names the level
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.problem_source)
        return str(path)


def best_of_run(run_dir: Path) -> list[Ported]:
    """Each problem's best correct candidate (the reference excluded) in a finished run."""
    with open_store(run_dir) as store:
        out = []
        for prow in store.problems():
            best = None
            for _, cand, ev, meta in store.evaluation_rows(prow.id):
                if ev.ok and ev.speedup and cand.technique != "reference" and \
                        (best is None or ev.speedup > best[1].speedup):
                    best = (cand, ev, meta)
            if best is not None:
                cand, ev, _ = best
                out.append(Ported(prow.path, prow.id, cand, ev.hardware, ev.speedup, prow.source))
        return out


def verdicts(ported: Ported, optimizer: Any) -> dict[str, Any]:
    """What happened to one ported candidate on the new hardware."""
    seed = ported.candidate
    as_is = optimizer.results.get(seed.id)
    tried = optimizer.trials_of(seed)
    ok = [(c, e) for c, e in tried if e.ok and e.speedup]
    tuned = max(ok, key=lambda ce: ce[1].speedup) if ok else None
    if tuned is None:
        reasons = "; ".join(sorted({e.reason.split(":")[0] + ": " + e.reason[:200] for _, e in tried})) or "not evaluated"
        verdict = f"failed there: {reasons}"
    elif tuned[0].params == seed.params:
        verdict = "carried over as is"
    else:
        verdict = f"carried over after re-tuning: {tuned[0].params}"
    best_c, best_e = optimizer.best_member() or (None, None)
    return {
        "problem": Path(ported.problem_path).stem, "verdict": verdict,
        "source_hardware": ported.source_hardware, "source_speedup": ported.source_speedup,
        "target_hardware": optimizer.hardware,
        "as_is_status": as_is.status if as_is else None, "as_is_speedup": as_is.speedup if as_is else None,
        "retuned_speedup": tuned[1].speedup if tuned else None, "retuned_params": tuned[0].params if tuned else None,
        "final_speedup": best_e.speedup if best_e else None, "final_technique": best_c.technique if best_c else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    def x(v: float | None) -> str:
        return f"{v:.3f}x" if v else "-"
    lines = ["| problem | source hw | speedup there | target hw | as is | after re-tuning | after search | verdict |",
             "|---|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        as_is = x(r["as_is_speedup"]) if r["as_is_status"] == "ok" else (r["as_is_status"] or "-")
        lines.append(f"| {r['problem']} | {r['source_hardware']} | {x(r['source_speedup'])} | {r['target_hardware']} | "
                     f"{as_is} | {x(r['retuned_speedup'])} | {x(r['final_speedup'])} | {r['verdict']} |")
    return "\n".join(lines)


def write(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    (run_dir / "port.json").write_text(json.dumps(rows, indent=2) + "\n")
    (run_dir / "port.md").write_text(markdown(rows) + "\n")
