"""Run `evo-kernels optimize` on suite problems and print one table (medians from each run).

    python3 -m experiments.optimize_suite [--budget 20] [--time-limit 120] [--device cuda]
        [--run-root runs/suite] [--config FILE] PROBLEM_GLOB_OR_FILE ...

Per problem: eager and torch.compile baselines, the best found (ms), speedup against the faster
baseline and against eager, the winning technique, evaluations and their statuses.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problems", nargs="+")
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--run-root", default="runs/suite")
    ap.add_argument("--config", default=None)
    args = ap.parse_args()
    files: list[Path] = []
    for pattern in args.problems:
        files += sorted(ROOT.glob(pattern)) if any(c in pattern for c in "*?[") else [Path(pattern)]
    rows = []
    for path in files:
        run_dir = Path(args.run_root) / f"{path.parent.name}_{path.stem}_{int(time.time())}"
        cmd = [sys.executable, "-m", "evo_kernels", "optimize", str(path), "--device", args.device, "--budget",
               str(args.budget), "--time-limit", str(args.time_limit), "--run-dir", str(run_dir), "--json"]
        if args.config:
            cmd += ["--config", args.config]
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        try:
            s = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"{path}: failed (exit {proc.returncode}): {proc.stderr[-800:]}", flush=True)
            continue
        rows.append((f"{path.parent.name}/{path.stem}", s, time.time() - t0))
        print(f"  {rows[-1][0]}: {s['best_speedup']:.3f}x ({s['best_technique']}) in {rows[-1][2]:.0f} s", flush=True)
    print("\n| problem | eager ms | compile ms | best ms | vs faster baseline | vs eager | technique | evals | statuses |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---|")
    for name, s, _ in rows:
        comp = f"{s['compile_ms']:.4f}" if s["compile_ms"] else "-"
        print(f"| {name} | {s['eager_ms']:.4f} | {comp} | {s['best_ms']:.4f} | {s['best_speedup']:.3f}x | "
              f"{s['best_speedup_vs_eager']:.3f}x | {s['best_technique']} | {s['evaluations']} | "
              f"{' '.join(f'{k}:{v}' for k, v in s['by_status'].items())} |")
    if rows:
        geo = math.exp(sum(math.log(s["best_speedup"]) for _, s, _ in rows) / len(rows))
        print(f"\ngeomean speedup vs faster baseline: {geo:.3f}x over {len(rows)} problems")


if __name__ == "__main__":
    main()
