"""Sweeps of a user's own kernel: one optuna study per hardware label over the candidate's declared
space, every trial verified and timed like any evaluation (a configuration that fails verification
is a failed trial with its reason, never a win). Constraints are pruned before any device time.

It is the search with no proposers: the candidate is the one seed, tuned on each hardware.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model.candidate import Candidate
from ..cluster import Pool
from ..config import Config, from_dict
from .optimize import Optimizer, drive
from .result import drop_in_source
from ..model.tunables import TunableError, parse_tunable


class TuneError(ValueError):
    pass


def tune(problem: str, candidate: Candidate, cfg: Config, run_dir: Path, pool: Pool, labels: list[str],
         trials: int, resume: bool = False) -> list[dict[str, Any]]:
    """Run the sweeps; returns one row per (hardware, configuration) and writes best modules."""
    try:
        space, _ = parse_tunable(candidate.source)
    except TunableError as e:
        raise TuneError(f"candidate: {e}") from None
    if not space:
        raise TuneError("the candidate declares no TUNABLE parameters (TUNABLE = {...} or a space name)")
    tcfg = from_dict(cfg.to_dict())
    tcfg.search.proposers = []
    tcfg.tuning.trials_per_candidate = trials
    tcfg.tuning.screen = 1  # a sweep's table: every configuration verified and timed in full
    tcfg.budget = trials + 1  # the reference, then the trials
    optimizers = [Optimizer(problem, tcfg, run_dir / hw, pool, resume=resume, hardware=hw, seeds=[candidate])
                  for hw in labels]
    try:
        drive(optimizers, pool)
        rows = []
        for o in optimizers:
            if o.error:
                raise TuneError(o.error)
            o.finish()
            study = o.study_name(candidate)
            trial_rows = [(c, e) for _, c, e, meta in o.store.evaluation_rows(o.pid) if meta.get("study") == study]
            ok = [(c, e) for c, e in trial_rows if e.ok and e.median_ms]
            if ok:
                best_c, _ = min(ok, key=lambda ce: ce[1].median_ms)
                (o.run_dir / "best_config.py").write_text(drop_in_source(best_c))
            for c, e in trial_rows:
                rows.append({"hardware": o.hardware, "params": c.params, "status": e.status,
                             "median_ms": e.median_ms, "speedup": e.speedup, "reason": e.reason[:200],
                             "best": bool(ok) and c.id == best_c.id})
        return rows
    finally:
        for o in optimizers:
            o.close()


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| hardware | configuration | status | median ms | speedup | best |", "|---|---|---|---:|---:|---|"]
    for r in rows:
        ms = f"{r['median_ms']:.4f}" if r["median_ms"] else "-"
        sp = f"{r['speedup']:.3f}x" if r["speedup"] else (r["reason"][:60] if r["status"] != "ok" else "-")
        params = ", ".join(f"{k}={v}" for k, v in sorted(r["params"].items()))
        lines.append(f"| {r['hardware']} | {params} | {r['status']} | {ms} | {sp} | {'*' if r['best'] else ''} |")
    return "\n".join(lines)
