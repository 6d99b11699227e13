"""What one evaluation costs beyond the kernel's own time: `evo-kernels bench` with and without a
candidate, run from one or more checkouts of the project (to compare designs), on a small problem
with timing shortened to the same few repetitions everywhere, so the difference is the harness.

    python3 experiments/evaluation_overhead.py [--roots DIR ...] [--device cpu] [--repeat 3]

Prints a table: per checkout, the median wall time of `bench PROBLEM` (start-up, baselines) and of
`bench PROBLEM CANDIDATE` (the same plus one verification and timing); the difference is the cost of
one evaluation. Each checkout runs with its own default verification protocol.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "tests/problems/tiny_linear_relu.py"
CANDIDATE = "tests/candidates/linear_relu_addmm.py"
# The same short timing in every checkout (keys every version knows): the harness's cost shows.
CONFIG = """baselines: [eager]
timing:
  warmup_calls: 3
  warmup_ms: 0
  min_reps: 20
  min_time_ms: 0
  flush_cache: false
"""


def _wall(root: Path, args: list[str], config: str, device: str) -> float:
    # The checkout first; what else the path holds (packages installed beside it) after.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evo_kernels", "bench", *args, "--device", device, "--config", config,
                           "--json"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t
    if proc.returncode not in (0, 1) or '"status"' not in proc.stdout:
        raise SystemExit(f"{root}: bench {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", nargs="*", default=[str(ROOT)], help="checkouts of the project to compare")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = str(Path(tmp) / "short_timing.yaml")
        Path(config).write_text(CONFIG)
        rows = []
        for r in args.roots:
            root = Path(r).resolve()
            base = [_wall(root, [PROBLEM], config, args.device) for _ in range(args.repeat)]
            full = [_wall(root, [PROBLEM, CANDIDATE], config, args.device) for _ in range(args.repeat)]
            commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                                    text=True).stdout.strip()[:60] or root.name  # (a copy without .git)
            rows.append((commit, statistics.median(base), statistics.median(full)))
    print(f"device {args.device}, {PROBLEM} with {CANDIDATE}, medians of {args.repeat}\n")
    print("| checkout | bench (baselines) s | bench + one candidate s | one evaluation s |")
    print("|---|---:|---:|---:|")
    for commit, base, full in rows:
        print(f"| {commit} | {base:.2f} | {full:.2f} | {full - base:.2f} |")


if __name__ == "__main__":
    main()
