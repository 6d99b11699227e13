"""The suite benchmark: `evo-kernels optimize` on every suite problem with a fixed budget, one table.

    python3 -m experiments.suite_bench [--levels level1 level2 level3] [--only NAME ...]
        [--budget 60] [--time-limit 600] [--device cuda] [--config FILE] [--run-root runs/bench]
    python3 -m experiments.suite_bench --suite [--budget N] [--time-limit S] [--stop-after S] [--run-root DIR]
    python3 -m experiments.suite_bench --tabulate runs/bench     # the table again, from the summaries

With --suite, one `evo-kernels suite` run searches every problem on one shared pool (no start-up per
problem) and is resumed where an earlier invocation stopped; --stop-after ends an invocation after
that many seconds (a later one resumes it), for machines lent in short slices, and says how far the
run is and the evaluator time the rest would take.

Per problem: eager, torch.compile and best found (ms, each the median measured in the run), the
speedup over the faster baseline, the winning technique. Per level: fast_1 (share of problems where
the search found something faster than the faster baseline), fast_1.2 (at least 1.2x) and the
geometric mean of the speedups (a problem with nothing faster counts 1.0: the baseline is the result).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from evo_kernels.model.devices import units_words  # noqa: E402
from evo_kernels.run.suite import fast_p, geomean  # noqa: E402  (the suite table's own arithmetic)
SUITE = ROOT / "experiments" / "problems"


def run_one(path: Path, args: argparse.Namespace) -> dict | None:
    run_dir = Path(args.run_root) / f"{path.parent.name}_{path.stem}"
    if (run_dir / "summary.json").exists():  # done in an earlier invocation: keep it
        return json.loads((run_dir / "summary.json").read_text())
    cmd = [sys.executable, "-m", "evo_kernels", "optimize", str(path), "--device", args.device, "--budget",
           str(args.budget), "--time-limit", str(args.time_limit), "--run-dir", str(run_dir), "--json"]
    if run_dir.exists():
        cmd.append("--resume")
    if args.config:
        cmd += ["--config", args.config]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"{path}: failed (exit {proc.returncode}): {proc.stderr[-800:]}", flush=True)
        return None


def run_suite(files: list[Path], args: argparse.Namespace) -> list[dict]:
    """One `evo-kernels suite` run over `files` (resumed if begun); the problems' summaries, or
    nothing while it is unfinished."""
    run_dir = Path(args.run_root) / "suite"
    run_dir.mkdir(parents=True, exist_ok=True)
    listing = run_dir.parent / "suite_problems.yaml"
    listing.write_text("problems:\n" + "".join(f"  - {p.resolve()}\n" for p in files))
    cmd = [sys.executable, "-m", "evo_kernels", "suite", str(listing), "--device", args.device, "--budget-per-problem",
           str(args.budget), "--time-limit", str(args.time_limit), "--run-dir", str(run_dir), "--json"]
    if (run_dir / "store.sqlite").exists():
        cmd.append("--resume")
    if args.config:
        cmd += ["--config", args.config]
    # Its own process group, so that stopping it also stops its evaluator worker (a killed run
    # loses at most the evaluations in flight; the resumed run repeats nothing recorded).
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=args.stop_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        done = len(list(run_dir.glob("problems/*/summary.json")))
        print(f"stopped after {args.stop_after:g} s; run again to resume {run_dir} ({done} problems finished)")
        print(progress_line(run_dir / "store.sqlite", len(files), args.budget))
        return []
    (run_dir.parent / "suite.log").write_text(err)
    summaries = summaries_under(run_dir)
    if proc.returncode != 0 or not summaries:
        print(f"suite exited {proc.returncode}: {err[-3000:]}", flush=True)
    return summaries


def progress_line(store_path: Path, n_problems: int, budget: int) -> str:
    """How far a suite run in slices is, and the evaluator time the rest would take at the median
    duration of its drafts' evaluations so far (a reference, measured first, is cheaper: no screen),
    an upper bound: a problem may run out of ideas before its budget. Before the first draft, the
    references' median gives a lower bound instead."""
    import statistics

    from evo_kernels.store import SQLiteStore
    with SQLiteStore(store_path) as store:
        rows = [(ev.duration_s, bool(meta.get("reference"))) for problem in store.problems()
                for _, _, ev, meta in store.evaluation_rows(problem.id)]
    total = n_problems * budget
    if not rows:
        return f"0 of {total} evaluations"
    drafts = [d for d, reference in rows if not reference]
    # Before any draft, the references' median prices the rest: a lower figure, and said to be one.
    median = statistics.median(drafts or [d for d, _ in rows])
    left = max(0, total - len(rows)) * median / 3600
    which = "a draft's" if drafts else "no draft yet; a reference's"
    bound = "at most" if drafts else "at least"
    return (f"{len(rows)} of {total} evaluations ({100 * len(rows) / total:.0f}%), {which} {median:.1f} s "
            f"(median): {bound} {left:.1f} h of evaluator time left at that rate")


def summaries_under(root: Path) -> list[dict]:
    """The problems' summaries of optimize runs (root/*/) or of a suite run (root/problems/*/)."""
    paths = sorted(root.glob("*/summary.json")) + sorted(root.glob("problems/*/summary.json"))
    return sorted((json.loads(p.read_text()) for p in paths), key=lambda s: (level_of(s), Path(s["problem"]).stem))


def quick_one(path: Path, args: argparse.Namespace) -> dict | None:
    """No search: the candidate of every graph rule that applies (template defaults), judged by
    `evo-kernels bench` (the project's verification and timing); a summary like optimize's."""
    from evo_kernels.model.problem import load_problem
    from evo_kernels.proposers.rules import RULES, build_source, facts_for
    problem = load_problem(path)
    facts = facts_for(problem, args.device)
    rules = [r for r in RULES if r.graph and r.applies(facts) and r.name not in ("addmm", "avgpool_conv")]
    source = build_source(problem, rules, facts) if rules else None
    base = {"problem": str(path), "evaluations": 1}
    cand = Path(args.run_root) / "quick" / f"{path.parent.name}_{path.stem}.py"
    cand.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "evo_kernels", "bench", str(path), "--device", args.device, "--json"]
    if source is not None:
        cand.write_text(source)
        cmd.insert(5, str(cand))  # bench PROBLEM CANDIDATE
    if args.config:
        cmd += ["--config", args.config]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    try:
        r = json.loads([line for line in proc.stdout.splitlines() if line.strip()][-1])
    except (IndexError, json.JSONDecodeError):
        print(f"{path}: bench failed (exit {proc.returncode}): {proc.stderr[-800:]}", flush=True)
        return None
    eager, comp = r.get("eager"), r.get("compile")
    best_base = min(t for t in (eager, comp) if t is not None)
    speed = r.get("speedup") if r.get("status") == "ok" else None
    technique = "+".join(x.name for x in rules)
    if source is not None and r.get("status") != "ok":
        print(f"  {path.stem}: {technique}: {r.get('status')}: {str(r.get('reason'))[:300]}", flush=True)
    found = speed is not None and speed > 1.0
    return {**base, "eager_ms": eager, "compile_ms": comp, "best_ms": r["candidate"] if found else best_base,
            "best_speedup": speed if found else 1.0, "found_speedup": speed,
            "best_technique": technique if found else "baseline:" + ("compile" if comp and comp < eager else "eager")}


def level_of(summary: dict) -> str:
    return Path(summary["problem"]).parent.name


def tabulate(summaries: list[dict]) -> str:
    # roofline: bytes in and out at the measured bandwidth, or the products at the fastest unit the
    # run's precision admits (the unit column); the shares are its time over the faster baseline's
    # and over the result's.
    out = ["| problem | eager ms | compile ms | best ms | speedup vs faster baseline | technique | evals | "
           "roofline ms | products bounded by | baseline / result of roofline |",
           "|---|---:|---:|---:|---:|---|---:|---:|---|---:|"]
    for s in summaries:
        comp = f"{s['compile_ms']:.4f}" if s.get("compile_ms") else "-"
        found = s.get("found_speedup")
        raw = f" (found {found:.3f}x)" if found is not None and found <= 1.0 else ""
        bound = f"{s['bound_ms']:.4f}" if s.get("bound_ms") else "-"
        shares = (f"{100 * s['bound_share_baseline']:.0f}% / {100 * s['bound_share_result']:.0f}%"
                  if s.get("bound_share_baseline") and s.get("bound_share_result") else "-")
        out.append(f"| {level_of(s)}/{Path(s['problem']).stem} | {s['eager_ms']:.4f} | {comp} | {s['best_ms']:.4f} | "
                   f"{s['best_speedup']:.3f}x{raw} | {s['best_technique']} | {s['evaluations']} | {bound} | "
                   f"{units_words(s.get('bound_units') or {})} | {shares} |")
    out += ["", "| level | problems | fast_1 | fast_1.2 | geomean | slowest |", "|---|---:|---:|---:|---:|---:|"]
    for level in sorted({level_of(s) for s in summaries}):
        rows = [s for s in summaries if level_of(s) == level]
        found = [s.get("found_speedup") for s in rows]
        out.append(f"| {level} | {len(rows)} | {fast_p(found, 1.0):.0%} | {fast_p(found, 1.2):.0%} | "
                   f"{geomean([s['best_speedup'] for s in rows]):.3f}x | {min(s['best_speedup'] for s in rows):.3f}x |")
    slow = [s for s in summaries if not fast_p([s.get("found_speedup")], 1.0) and s.get("top_kernels")]
    if slow:  # where a problem's time goes when the search found nothing faster
        out += ["", "Not faster than the faster baseline; the reference's top kernels (torch.profiler, ms per call):",
                "", "| problem | top kernels |", "|---|---|"]
        for s in slow:
            kernels = "; ".join(f"{k['name'][:60]} {k['ms_per_call']:.3f}" for k in s["top_kernels"][:3])
            out.append(f"| {level_of(s)}/{Path(s['problem']).stem} | {kernels} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", nargs="*", default=["level1", "level2", "level3"])
    ap.add_argument("--only", nargs="*", default=None, help="substrings of problem names to run")
    ap.add_argument("--budget", type=int, default=60, help="evaluations per problem (at most 60)")
    ap.add_argument("--time-limit", type=float, default=600, help="seconds per problem (at most 600)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--config", default=None)
    ap.add_argument("--run-root", default="runs/bench")
    ap.add_argument("--tabulate", default=None, help="only print the table of the runs under this directory")
    ap.add_argument("--suite", action="store_true", help="one shared-pool `evo-kernels suite` run, resumable")
    ap.add_argument("--stop-after", type=float, default=None, help="with --suite: stop this invocation after S s")
    ap.add_argument("--quick", action="store_true", help="no search: bench each problem's graph-rule candidate "
                                                          "(template defaults) with `evo-kernels bench`")
    args = ap.parse_args()
    if args.tabulate:
        print(tabulate(summaries_under(Path(args.tabulate))))
        return
    args.budget, args.time_limit = min(args.budget, 60), min(args.time_limit, 600)
    files = [p for level in args.levels for p in sorted((SUITE / level).glob("*.py"))]
    if args.only:
        files = [p for p in files if any(o in p.stem for o in args.only)]
    summaries = []
    if args.suite:
        summaries = run_suite(files, args)
        if summaries:
            print(tabulate(summaries))
        return
    for path in files:
        t0 = time.time()
        s = quick_one(path, args) if args.quick else run_one(path, args)
        if s is None:
            continue
        summaries.append(s)
        print(f"  {path.parent.name}/{path.stem}: {s['best_speedup']:.3f}x ({s['best_technique']}) "
              f"in {time.time() - t0:.0f} s", flush=True)
    print()
    print(tabulate(summaries))
    Path(args.run_root).mkdir(parents=True, exist_ok=True)
    (Path(args.run_root) / ("quick.json" if args.quick else "bench.json")).write_text(json.dumps(summaries, indent=1) + "\n")


if __name__ == "__main__":
    main()
