"""Scaling of the evaluator pool: the same jobs with 1, 2 (and 4) evaluators, one per GPU or, as
the fallback on one machine, one per node of a simulated multi-node Ray cluster on the CPU.

    python3 -m experiments.scaling --cpu-nodes 1,2 [--jobs 24] [--eval-s 1.0]
    python3 -m experiments.scaling --gpus 1,2,4 [--jobs 48] [--eval-s 1.0]   # needs that many GPUs

Prints per setting: evaluators, jobs, wall s, evaluations/min, scaling efficiency (throughput at N
over N times the throughput at 1), idle-while-pending share per evaluator, and where each evaluator
ran (node; for GPUs the device it was given). Target: efficiency >= 90% at 2.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
for var, value in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")):
    os.environ.setdefault(var, value)

from evo_kernels.candidate import Candidate  # noqa: E402
from evo_kernels.cluster import Job, RayPool  # noqa: E402
from experiments.dispatch_overhead import CANDIDATE, PROBLEM, make_config, run_jobs  # noqa: E402


def measure(pool: RayPool, jobs: int) -> dict:
    candidate = Candidate(CANDIDATE.read_text())
    run_jobs(pool, [Job(-1 - i, PROBLEM, candidate) for i in range(len(pool.workers))])  # warm each actor
    before = {a["name"]: a for a in pool.stats()["actors"]}
    t0 = time.monotonic()
    results = run_jobs(pool, [Job(i, PROBLEM, candidate) for i in range(jobs)])
    wall = time.monotonic() - t0
    actors = []
    for a in pool.stats()["actors"]:
        b = before[a["name"]]
        actors.append({"name": a["name"], "node": a.get("node", ""), "jobs": a["jobs"] - b["jobs"],
                       "idle": (a["idle_pending_s"] - b["idle_pending_s"]) / wall})
    return {"n": len(pool.workers), "jobs": len(results), "wall": wall, "per_min": len(results) / wall * 60,
            "statuses": sorted({r.evaluation.status for r in results}), "actors": actors}


def gpu_util() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
        return "; ".join(l.strip() for l in out.splitlines())
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-nodes", default="")
    ap.add_argument("--gpus", default="")
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--eval-s", type=float, default=1.0)
    args = ap.parse_args()
    rows = []
    if args.cpu_nodes:
        from ray.cluster_utils import Cluster
        for n in [int(x) for x in args.cpu_nodes.split(",")]:
            cfg = make_config(argparse.Namespace(device="cpu", eval_s=args.eval_s, cpu_actors=1, actors_per_gpu=1))
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"hw:cpu-sim": 1},
                                                                   "object_store_memory": 80 << 20})
            for _ in range(n - 1):
                cluster.add_node(num_cpus=1, resources={"hw:cpu-sim": 1}, object_store_memory=80 << 20)
            cluster.wait_for_nodes()
            try:
                with RayPool(cfg, address=cluster.address) as pool:
                    rows.append(measure(pool, args.jobs))
            finally:
                cluster.shutdown()
            print(f"  {n} node(s): {rows[-1]['per_min']:.1f} evaluations/min", flush=True)
    for n in [int(x) for x in args.gpus.split(",")] if args.gpus else []:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
        cfg = make_config(argparse.Namespace(device="cuda", eval_s=args.eval_s, cpu_actors=0, actors_per_gpu=1))
        with RayPool(cfg) as pool:
            rows.append(measure(pool, args.jobs))
            rows[-1]["util"] = gpu_util()
        print(f"  {n} GPU(s): {rows[-1]['per_min']:.1f} evaluations/min; nvidia-smi {rows[-1].get('util')}", flush=True)
    base = rows[0]["per_min"] / rows[0]["n"] if rows else 1
    print("\n| evaluators | jobs | wall s | evaluations/min | efficiency | idle while pending (per evaluator) | placement |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        eff = r["per_min"] / (r["n"] * base)
        idle = ", ".join(f"{a['idle']:.1%}" for a in r["actors"])
        place = ", ".join(f"{a['name']} on node {str(a['node'])[:8]} ({a['jobs']} jobs)" for a in r["actors"])
        print(f"| {r['n']} | {r['jobs']} | {r['wall']:.1f} | {r['per_min']:.1f} | {eff:.0%} | {idle} | {place} |")


if __name__ == "__main__":
    main()
