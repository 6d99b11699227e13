"""Dispatch overhead of RayPool: the share of wall time in which an evaluator actor sits idle while
work it could run is pending. Target: under 5 %.

    python3 -m experiments.dispatch_overhead [--device cpu|cuda] [--jobs N] [--eval-s S]
                                             [--cpu-actors N] [--actors-per-gpu N] [--address ADDR]

A local Ray instance (or the cluster at --address) with one evaluator actor per GPU (`--device
cuda`) or `--cpu-actors` actors on the CPU. Every evaluation is real (policy, sandbox, verify, time)
of the tiny Linear+ReLU problem, with the timing loop stretched to about --eval-s seconds. Each
actor is warmed up with one job (its sandbox worker times the baselines), then all jobs are queued
at once and the driver polls until they are done.

Idle-while-pending is the pool's own accounting (RayPool.stats): time an actor was free while a job
it could run was queued, plus the part of each job's round trip not spent inside the actor's
evaluate() (scheduling, transfer, the driver noticing the result). The tail, when the queue is
empty and actors finish their last jobs, is not idle-while-pending: no work is waiting.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Ray workers of a local instance inherit the environment: let them import the package too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from evo_kernels import config  # noqa: E402
from evo_kernels.model.candidate import Candidate  # noqa: E402
from evo_kernels.cluster import Job, RayPool  # noqa: E402

PROBLEM = str(ROOT / "tests" / "problems" / "tiny_linear_relu.py")
CANDIDATE = ROOT / "tests" / "candidates" / "linear_relu_addmm.py"


def make_config(args: argparse.Namespace) -> config.Config:
    ms = args.eval_s * 1000
    return config.from_dict({
        "device": args.device,
        "baselines": ["eager"],
        # The timing loop is what takes the time: it stops at min_time_ms of device time or at
        # max_time_s of wall time (a tiny GPU kernel would need far more reps for 1 s of device time).
        "timing": {"warmup_calls": 1, "warmup_ms": 0, "min_reps": 10, "min_time_ms": ms,
                   "max_time_s": args.eval_s, "flush_cache": args.device != "cpu",
                   "cpu_threads": 1 if args.device == "cpu" else 0},
        "cluster": {"cpu_actors": args.cpu_actors, "actors_per_gpu": args.actors_per_gpu},
    })


def run_jobs(pool: RayPool, jobs: list[Job]) -> list:
    for job in jobs:
        pool.submit(job)
    results = []
    while pool.pending():
        results += pool.poll(timeout=None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--eval-s", type=float, default=1.0, help="target seconds per evaluation")
    parser.add_argument("--cpu-actors", type=int, default=2)
    parser.add_argument("--actors-per-gpu", type=int, default=1)
    parser.add_argument("--address", default=None, help="join this Ray cluster instead of starting one")
    args = parser.parse_args()

    cfg = make_config(args)
    candidate = Candidate(CANDIDATE.read_text())
    started = time.monotonic()
    with RayPool(cfg, address=args.address) as pool:
        print(f"pool of {len(pool.workers)} actors ({', '.join(pool.hardware())}) up in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        warm = run_jobs(pool, [Job(-1 - i, PROBLEM, candidate) for i in range(len(pool.workers))])
        bad = [r.evaluation.reason for r in warm if not r.evaluation.ok]
        if bad:
            sys.exit(f"warm-up evaluation failed: {bad[0]}")

        before = {a["name"]: a for a in pool.stats()["actors"]}
        t0 = time.monotonic()
        results = run_jobs(pool, [Job(i, PROBLEM, candidate) for i in range(args.jobs)])
        wall = time.monotonic() - t0
        after = pool.stats()["actors"]

    statuses = sorted({r.evaluation.status for r in results})
    mean_eval = statistics.mean(r.evaluation.duration_s for r in results)
    rows = [(a["name"], a["hardware"], a["jobs"] - before[a["name"]]["jobs"],
             a["busy_s"] - before[a["name"]]["busy_s"],
             a["idle_pending_s"] - before[a["name"]]["idle_pending_s"]) for a in after]
    idle_total = sum(r[4] for r in rows)
    print(f"\ndevice {args.device}; statuses {statuses}")
    print(f"{'actors':>6} {'jobs':>5} {'wall s':>8} {'evals/min':>10} {'mean eval s':>12} "
          f"{'idle-while-pending':>19}")
    print(f"{len(rows):>6} {len(results):>5} {wall:>8.2f} {len(results) / wall * 60:>10.1f} {mean_eval:>12.3f} "
          f"{idle_total / (wall * len(rows)):>18.2%}")
    print(f"\n{'actor':<32} {'hardware':<20} {'jobs':>5} {'busy s':>8} {'idle-pending s':>15} "
          f"{'busy share':>11} {'idle share':>11}")
    for name, hw, n, busy, idle in rows:
        print(f"{name:<32} {hw:<20} {n:>5} {busy:>8.2f} {idle:>15.3f} {busy / wall:>11.2%} {idle / wall:>11.2%}")


if __name__ == "__main__":
    main()
