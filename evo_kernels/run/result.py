"""What a finished search reports: its result, chosen by confirmation, and the summary.

A search keeps the best of many noisy draws, so its best measured speedup is biased upward. Before a
result is reported, the best candidates (up to `timing.confirm_top`, within 10% of the best) are
timed again in rounds interleaved with both baselines (harness `confirm`), and each gets a 95%
interval (bootstrap over rounds) for its speedup over the faster baseline. A win is reported only
when the interval's lower end is above 1; the highest such confirmed speedup is the result.
Otherwise the result is the faster baseline itself ("no significant win"), and the measured ratio is
shown as such. A candidate that runs the same kernels as a baseline (`same_as`) is never a win.
"""
from __future__ import annotations

import time
from typing import Any

from ..config import Config
from ..model.candidate import Candidate, Evaluation
from ..proposers import reference_candidate

_CLOSE = 1.1  # candidates within this factor of the best are confirmed too: the confirmation picks

COMPILED_REFERENCE = """class ModelNew(Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled = torch.compile(super().forward)

    def forward(self, *inputs):
        return self._compiled(*inputs)
"""


def drop_in_source(candidate: Candidate) -> str:
    """The candidate as a module runnable without evo_kernels: its source with its parameters set."""
    if not candidate.params:
        return candidate.source
    lines = [candidate.source.rstrip(), "", "", "# Parameters chosen by the search (override the defaults above)."]
    lines += [f"{k} = {v!r}" for k, v in sorted(candidate.params.items())]
    return "\n".join(lines) + "\n"


def _searched(records: list[tuple[int, Candidate, Evaluation, dict[str, Any]]], reference_id: str
              ) -> list[tuple[float, Candidate, Evaluation]]:
    """The search's own correct, timed candidates with their measured speedups (the reference and
    candidates that are a baseline under another name left out)."""
    return [(e.speedup, c, e) for _, c, e, _ in records
            if e.ok and e.speedup and c.id != reference_id and not e.same_as]


def _contenders(searched: list[tuple[float, Candidate, Evaluation]]) -> list[tuple[float, Candidate, Evaluation]]:
    """The searched candidates (`_searched`) that beat the faster baseline as measured, best first
    (each once, at its best measurement)."""
    best: dict[str, tuple[float, Candidate, Evaluation]] = {}
    for s, c, e in searched:
        if s > 1.0 and (c.id not in best or s > best[c.id][0]):
            best[c.id] = (s, c, e)
    return sorted(best.values(), key=lambda x: -x[0])


def to_confirm(cfg: Config, records: list[tuple[int, Candidate, Evaluation, dict[str, Any]]],
               reference_id: str) -> list[Candidate]:
    if not cfg.timing.confirm:
        return []
    ranked = _contenders(_searched(records, reference_id))
    if not ranked:
        return []
    top = ranked[0][0]
    return [c for s, c, _ in ranked if s * _CLOSE >= top][: max(1, cfg.timing.confirm_top)]


def _baseline_source(opt: Any, use_compile: bool) -> str:
    source = reference_candidate(opt.problem).source
    if use_compile:
        source = source.replace("class ModelNew(Model):\n    pass\n", COMPILED_REFERENCE)
    return source


def summarize(opt: Any) -> dict[str, Any]:
    """The summary of a finished search (an Optimizer), with its result's source under `_source`."""
    b = opt.baselines
    eager_ms, compile_ms, baseline_ms = b["eager_ms"], b.get("compile_ms"), b["best_ms"]
    to_eager = eager_ms / baseline_ms  # a speedup over the faster baseline, times this: over eager
    records = opt.store.evaluation_rows(opt.pid)
    ref_id = opt.reference.id if opt.reference else ""
    searched = _searched(records, ref_id)
    ranked = _contenders(searched)
    confirmations = []
    for cand in opt.to_confirm():
        ev = opt.confirmed.get(cand.id)
        if ev is None:
            continue
        c = ev.confirmation or {}
        confirmations.append({"candidate": cand.id, "technique": cand.technique, "status": ev.status,
                              "reason": ev.reason, "speedup": c.get("speedup"), "interval": c.get("interval"),
                              "significant": bool(c.get("significant")), "rounds": c.get("rounds")})
    chosen = None
    if opt.cfg.timing.confirm:
        significant = [r for r in confirmations if r["status"] == "ok" and r["significant"]]
        if significant:
            chosen = max(significant, key=lambda r: r["speedup"])
    elif ranked:
        s, c, e = ranked[0]
        chosen = {"candidate": c.id, "technique": c.technique, "speedup": s, "interval": None}
    measured = max((r for r in confirmations if r["status"] == "ok" and r["speedup"]), key=lambda r: r["speedup"],
                   default=None)
    by_id = {c.id: c for _, c, _, _ in records}
    if chosen is not None:
        cand = by_id[chosen["candidate"]]
        source, technique, speedup, params = drop_in_source(cand), cand.technique, chosen["speedup"], cand.params
        best_id, interval, significant = cand.id, chosen["interval"], chosen["interval"] is not None
        best_ms = baseline_ms / speedup
    else:
        use_compile = compile_ms is not None and compile_ms < eager_ms
        source = _baseline_source(opt, use_compile)
        technique = "baseline:" + ("compile" if use_compile else "eager")
        speedup, best_ms, params, best_id, significant = 1.0, baseline_ms, {}, None, False
        interval = measured["interval"] if measured else None
    # What fast_p counts: the result's speedup when it is a win; otherwise the search's best correct
    # candidate, at most 1.0 (a correct candidate found, none significantly faster).
    found = speedup if chosen is not None else (min(max(s for s, _, _ in searched), 1.0) if searched else None)
    by_proposer: dict[str, int] = {}
    for _, cand, _, _ in records:
        by_proposer[cand.proposer] = by_proposer.get(cand.proposer, 0) + 1
    stopped, why = opt.stop_reason()
    winner_ev = next((e for _, c, e, _ in records if c.id == best_id and e.ok), None)
    ref_ev = opt.results.get(ref_id)
    summary: dict[str, Any] = {
        "problem": opt.problem_path, "problem_id": opt.pid, "level": opt.problem.level, "device": opt.cfg.device,
        "hardware": opt.hardware, "precision": opt.cfg.precision,
        "best_speedup": speedup, "best_speedup_ci": interval, "significant": significant,
        "result": ("win" if chosen is not None else "no significant win" if measured or ranked else "baseline"),
        "measured_speedup": measured["speedup"] if measured else (ranked[0][0] if ranked else None),
        "best_speedup_vs_eager": speedup * to_eager,
        "found_speedup": found,  # fast_p counts this: confirmed when significant, else at most 1.0
        "found_speedup_vs_eager": found * to_eager if found else None,
        "best_ms": best_ms, "best_candidate": best_id, "best_technique": technique, "best_params": params,
        "eager_ms": eager_ms, "compile_ms": compile_ms,
        "noise_floor": b.get("noise"),  # eager timed twice on this device, relative difference
        # The roofline (bytes in and out at the measured bandwidth, or the products at the fastest
        # unit the run's precision admits: audit.flop_time_ms) and the share of it the faster
        # baseline and the result reach.
        "bound_ms": b.get("bound_ms") or None, "bound_units": b.get("bound_units") or {},
        "bound_share_baseline": (b["bound_ms"] / baseline_ms) if b.get("bound_ms") else None,
        "bound_share_result": (b["bound_ms"] / best_ms) if b.get("bound_ms") and best_ms else None,
        "confirmation": confirmations,
        "stopped": stopped, "stopped_because": why,
        "evaluations": opt.progress.done, "budget": opt.cfg.budget, "generations": opt.progress.generation,
        "by_status": dict(sorted(opt.progress.by_status.items())), "by_proposer": dict(sorted(by_proposer.items())),
        "reduced_precision_allowed": opt.cfg.verify.allow_reduced_precision,
        "oracle_error": (winner_ev or ref_ev).oracle_error if (winner_ev or ref_ev) else {},
        "seeds": opt.seed_report(), "hints": opt.hints(),
        "elapsed_s": round(time.monotonic() - opt.started, 2), "spent_s": round(opt.spent_s(), 2),
        # Where the result's time goes: the winner's top kernels, or the reference's.
        "top_kernels": ((winner_ev or ref_ev).profile or []) if (winner_ev or ref_ev) else [],
        "_source": source,
    }
    return summary
