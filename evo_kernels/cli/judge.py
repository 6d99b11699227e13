"""`verify` and `bench`: one problem, and candidates judged in turn by one evaluator."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..model.problem import ProblemError, load_problem
from .common import EXIT_OK, EXIT_REJECTED, UsageError, _load_config, _progress, _read_candidate


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    table = Table(title=f"{result['problem']} on {result['device']} ({result.get('hardware', '')})")
    table.add_column("what")
    table.add_column("median ms", justify="right")
    table.add_column("IQR ms", justify="right")
    table.add_column("speedup vs faster baseline", justify="right")
    timings = result.get("timings", {})
    for name in ("eager", "compile", "candidate"):
        t = timings.get(name)
        if t is None:
            continue
        sp = result["speedup"] if name == "candidate" else (result["best_baseline_ms"] / t["median_ms"]
                                                              if result.get("best_baseline_ms") else None)
        table.add_row(name, f"{t['median_ms']:.4f}", f"{t['iqr_ms']:.4f}", "" if sp is None else f"{sp:.3f}x")
    if timings:
        console.print(table)
    if "status" in result and result.get("candidate_file"):
        style = "green" if result["status"] == "ok" else "red"
        console.print(f"candidate [bold]{result['candidate_file']}[/]: [{style}]{result['status']}[/] "
                      f"{result.get('reason') or ''}")
        if result.get("max_abs_error") is not None:
            console.print(f"max abs error {result['max_abs_error']:.3g}, relative error norm "
                          f"{result['max_rel_error']:.3g}")
    if result.get("eager_noise") is not None:
        console.print(f"baseline noise (eager timed twice): {100 * result['eager_noise']:.2f}%")
    for note in result.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")


def cmd_verify_or_bench(args: argparse.Namespace) -> int:
    """One problem; no candidate (bench: the baselines), one, or several judged in turn by one
    evaluator (a JSON object per candidate, in order; the exit code is 0 when all are accepted)."""
    from ..harness.evaluator import BaselineError, Evaluator
    cfg = _load_config(args)
    try:
        load_problem(args.problem)  # fail fast, in this process, with the file's own error
    except ProblemError as e:
        raise UsageError(str(e)) from None
    files = list(args.candidate or [])
    candidates = [_read_candidate(f) for f in files]
    timed = args.command == "bench"
    common: dict[str, Any] = {"problem": str(args.problem), "device": cfg.device, "status": None, "reason": "",
                              "speedup": None, "eager": None, "compile": None, "candidate": None, "timings": {},
                              "notes": [], "precision": cfg.precision, "oracle_error": {}, "mode": None}
    results: list[dict[str, Any]] = []
    try:
        with Evaluator(cfg.device, cfg) as ev:
            if timed:
                with _progress("timing baselines (eager, torch.compile)", args.json):
                    base = ev.baselines(args.problem)
                common.update(hardware=base.hardware, eager=base.eager_ms, compile=base.compile_ms,
                              best_baseline=base.best_name, best_baseline_ms=base.best_ms,
                              eager_noise=base.noise, floor_ms=base.floor_ms, bound_ms=base.bound_ms,
                              mode=base.mode, baseline_flags=base.flags)
                if cfg.precision == "strict":  # a strict-only win is never read as a deployable one
                    common.update(default_eager=base.default_eager_ms, default_compile=base.default_compile_ms)
                common["timings"] = dict(eager=base.eager, **({"compile": base.compile} if base.compile else {}))
                if "compile_error" in base.device_info:
                    common["notes"] = [f"torch.compile baseline failed: {base.device_info['compile_error']}"]
            for path, candidate in zip(files, candidates):
                result = {**common, "candidate_file": path, "timings": dict(common["timings"]),
                          "notes": list(common["notes"])}
                with _progress("verifying" + (" and timing" if timed else "") + f" {path}", args.json):
                    evaluation = ev.evaluate(args.problem, candidate, timed=timed)
                result.update(status=evaluation.status, reason=evaluation.reason, speedup=evaluation.speedup,
                              candidate=evaluation.median_ms, max_abs_error=evaluation.max_abs_error,
                              max_rel_error=evaluation.max_rel_error, oracle_error=evaluation.oracle_error,
                              trials=evaluation.trials, peak_memory=evaluation.peak_memory,
                              same_as=evaluation.same_as or None,
                              mode=evaluation.mode or common.get("mode"))
                result["notes"].extend(evaluation.notes)
                if evaluation.timing:
                    result["timings"]["candidate"] = evaluation.timing
                results.append(result)
            if not files:
                results.append({**common, "candidate_file": None, "status": "ok"})
    except BaselineError as e:
        raise UsageError(str(e)) from None
    except RuntimeError as e:  # a worker could not start
        print(f"error: {e}", file=sys.stderr)
        results = [{**common, "candidate_file": f, "status": "crash", "reason": str(e)} for f in (files or [None])]
    for result in results:
        if args.json:
            print(json.dumps(result))
        else:
            _print_table(result)
    return EXIT_OK if all(r["status"] == "ok" for r in results) else EXIT_REJECTED
