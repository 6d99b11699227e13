"""Scaling of the evaluator pool across GPUs, measured on a real search; on one machine without GPUs,
the fallback is synthetic jobs on a simulated multi-node Ray cluster on the CPU.

    python3 -m experiments.scaling --gpus 1,2[,4] [--budget 5] [--problems P.py ...] [--seed 0]
                                   [--exclude compile] [--run-root runs/scaling]
    python3 -m experiments.scaling --cpu-nodes 1,2 [--jobs 24] [--eval-s 1.0]

--gpus: for each N, a fresh local Ray instance that sees GPUs 0..N-1 (CUDA_VISIBLE_DEVICES), one
evaluator actor per GPU, and the same search (six level-2 problems by default, --budget evaluations
each, a fixed seed; torch.compile-mode drafts excluded, as one takes tens of seconds) in a fresh run
directory RUN_ROOT/gpus-N (replaced if it exists), so no compiled-kernel cache is shared between
settings. Wall time runs from the actors being up to the end of the search. Prints per setting:
evaluations, evaluations/min, scaling efficiency (throughput per GPU over that of the first setting),
each actor's idle-while-pending and busy shares, its CUDA_VISIBLE_DEVICES and jobs, and from
nvidia-smi (sampled every second) the mean utilisation and the compute processes seen per GPU; then
each problem's best speedup per setting. Rows go to RUN_ROOT/scaling.json. Target: efficiency >= 90%
at 2 GPUs.

--cpu-nodes: the same synthetic jobs with 1, 2, ... one-CPU nodes, one evaluator each (placement by node).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
for var, value in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")):
    os.environ.setdefault(var, value)

from evo_kernels import config  # noqa: E402
from evo_kernels.model.candidate import Candidate  # noqa: E402
from evo_kernels.cluster import Job, RayPool  # noqa: E402
from experiments.dispatch_overhead import CANDIDATE, PROBLEM, make_config, run_jobs  # noqa: E402

LEVEL2 = ROOT / "experiments" / "problems" / "level2"
DEFAULT_PROBLEMS = ("01_Gemm_BiasAdd_ReLU", "02_Gemm_Scale_ResidualAdd", "05_Gemm_SiLU_Clamp",
                    "07_Gemm_MeanSubtract_GELU", "14_Conv2d_Tanh_Scale_BiasAdd_MaxPool", "15_Conv2d_ReLU_BiasAdd")


# -- CPU nodes: synthetic jobs ------------------------------------------------------------------------
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


def cpu_nodes(counts: list[int], jobs: int, eval_s: float) -> None:
    from ray.cluster_utils import Cluster
    rows = []
    for n in counts:
        cfg = make_config(argparse.Namespace(device="cpu", eval_s=eval_s, cpu_actors=1, actors_per_gpu=1))
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"hw:cpu-sim": 1},
                                                               "object_store_memory": 80 << 20})
        for _ in range(n - 1):
            cluster.add_node(num_cpus=1, resources={"hw:cpu-sim": 1}, object_store_memory=80 << 20)
        cluster.wait_for_nodes()
        try:
            with RayPool(cfg, address=cluster.address) as pool:
                rows.append(measure(pool, jobs))
        finally:
            cluster.shutdown()
        print(f"  {n} node(s): {rows[-1]['per_min']:.1f} evaluations/min", flush=True)
    base = rows[0]["per_min"] / rows[0]["n"] if rows else 1
    print("\n| evaluators | jobs | wall s | evaluations/min | efficiency | idle while pending (per evaluator) | placement |")
    print("|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        eff = r["per_min"] / (r["n"] * base)
        idle = ", ".join(f"{a['idle']:.1%}" for a in r["actors"])
        place = ", ".join(f"{a['name']} on node {str(a['node'])[:8]} ({a['jobs']} jobs)" for a in r["actors"])
        print(f"| {r['n']} | {r['jobs']} | {r['wall']:.1f} | {r['per_min']:.1f} | {eff:.0%} | {idle} | {place} |")


# -- GPUs: a real search ------------------------------------------------------------------------------
def parse_smi(util: str, apps: str, uuids: str) -> tuple[dict[int, float], dict[int, set[int]]]:
    """One nvidia-smi sample, from the CSV (noheader, nounits) of --query-gpu=index,utilization.gpu,
    --query-compute-apps=pid,gpu_uuid and --query-gpu=index,uuid: utilisation % per GPU index, and
    the compute processes' pids per GPU index (every GPU listed, with none where none run)."""
    def rows(text: str) -> list[list[str]]:
        return [[f.strip() for f in line.split(",")] for line in text.splitlines() if line.count(",") == 1]
    index = {u: int(i) for i, u in rows(uuids) if i.isdigit()}
    usage = {int(i): float(u) for i, u in rows(util) if i.isdigit() and u.replace(".", "", 1).isdigit()}
    pids: dict[int, set[int]] = {i: set() for i in usage}
    for pid, uuid in rows(apps):
        if pid.isdigit() and uuid in index:
            pids.setdefault(index[uuid], set()).add(int(pid))
    return usage, pids


def _smi(query: str) -> str:
    try:
        return subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"], capture_output=True,
                              text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


class GpuSampler:
    """Samples nvidia-smi every `every_s` seconds in a thread while in use; without nvidia-smi, nothing."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.available = shutil.which("nvidia-smi") is not None
        self.util: dict[int, list[float]] = collections.defaultdict(list)
        self.pids: dict[int, set[int]] = collections.defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "GpuSampler":
        if self.available:
            self._uuids = _smi("--query-gpu=index,uuid")
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            usage, pids = parse_smi(_smi("--query-gpu=index,utilization.gpu"),
                                    _smi("--query-compute-apps=pid,gpu_uuid"), self._uuids)
            for i, u in usage.items():
                self.util[i].append(u)
            for i, p in pids.items():
                self.pids[i] |= p
            self._stop.wait(self.every_s)

    def summary(self) -> dict[str, Any]:
        """Per GPU index: mean utilisation % and distinct compute processes; None without nvidia-smi."""
        if not self.available or not self.util:
            return {"util": None, "processes": None}
        return {"util": {i: statistics.fmean(u) for i, u in sorted(self.util.items())},
                "processes": {i: len(self.pids[i]) for i in sorted(self.util)}}


def default_problems() -> list[Path]:
    found = {stem: sorted(LEVEL2.glob(f"{stem}*.py")) for stem in DEFAULT_PROBLEMS}
    if missing := [stem for stem, paths in found.items() if not paths]:
        raise SystemExit(f"not in {LEVEL2}: {missing}")
    return [paths[0] for paths in found.values()]


def search_config(args: argparse.Namespace) -> config.Config:
    exclude = [t.strip() for t in args.exclude.split(",") if t.strip()]
    return config.load(args.config, {"device": "cuda", "budget": args.budget,
                                     "search": {"seed": args.seed, "exclude": exclude},
                                     "cluster": {"backend": "ray", "address": "", "actors_per_gpu": 1}})


def run_setting(n: int, problems: list[Path], cfg: config.Config, run_dir: Path) -> dict[str, Any]:
    """The search over `problems` on a fresh local Ray instance with GPUs 0..n-1, in a fresh `run_dir`."""
    import ray

    from evo_kernels.run.optimize import Optimizer, drive
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    optimizers: list[Optimizer] = []
    pool = None
    try:
        pool = RayPool(cfg, run_dir / "cache")
        t0 = time.monotonic()
        if len(pool.workers) != n:
            raise SystemExit(f"{n} GPU(s) asked for, but the pool has {len(pool.workers)} evaluator actor(s)")
        with GpuSampler() as smi:
            for path in problems:
                optimizers.append(Optimizer(path, config.from_dict(cfg.to_dict()), run_dir, pool,
                                            out_dir=run_dir / "problems" / path.stem, seeds=[]))
            drive(optimizers, pool)
            wall = time.monotonic() - t0
        stats = pool.stats()
        best = {}
        for path, o in zip(problems, optimizers):
            s = {"error": o.error} if o.error else o.finish()
            best[path.stem] = {k: s.get(k) for k in ("best_speedup", "best_technique", "evaluations", "error")}
        # The run directory is fresh: its store holds exactly this setting's evaluations (a proposal
        # error never reached an evaluator).
        statuses: dict[str, int] = {}
        for rec in optimizers[0].store.records():
            if rec.evaluation.status != "proposal_error":
                statuses[rec.evaluation.status] = statuses.get(rec.evaluation.status, 0) + 1
        statuses = dict(sorted(statuses.items()))
    finally:
        for o in optimizers:
            o.close()
        if pool is not None:
            pool.close()
        if ray.is_initialized():
            ray.shutdown()
    evaluations = sum(statuses.values())
    actors = [{"name": a["name"], "gpu": a["gpu"], "jobs": a["jobs"], "idle": a["idle_pending_s"] / wall,
               "busy": a["busy_s"] / wall} for a in stats["actors"]]
    gpus = [a["gpu"] for a in actors]
    return {"n": n, "problems": len(problems), "evaluations": evaluations, "wall": wall,
            "per_min": evaluations / wall * 60, "statuses": statuses, "actors": actors,
            "own_gpu": all(gpus) and len(set(gpus)) == len(gpus), **smi.summary(), "best": best}


def _per_gpu(values: dict[int, float] | None, fmt: str) -> str:
    return "n/a" if values is None else ", ".join(f"{i}: {fmt.format(v)}" for i, v in values.items())


def gpu_tables(rows: list[dict[str, Any]]) -> str:
    """The scaling table and the per-problem best speedups, in Markdown."""
    out = ["| GPUs | problems | evaluations | wall s | evaluations/min | efficiency | idle while pending (per actor) "
           "| busy (per actor) | actor → CUDA_VISIBLE_DEVICES (jobs) | nvidia-smi mean util per GPU "
           "| compute processes per GPU |", "|---:|---:|---:|---:|---:|---:|---|---|---|---|---|"]
    for r in rows:
        idle = ", ".join(f"{a['idle']:.1%}" for a in r["actors"])
        busy = ", ".join(f"{a['busy']:.1%}" for a in r["actors"])
        place = ", ".join(f"{a['name']} → {a['gpu'] or '?'} ({a['jobs']})" for a in r["actors"])
        out.append(f"| {r['n']} | {r['problems']} | {r['evaluations']} | {r['wall']:.1f} | {r['per_min']:.1f} "
                   f"| {r['efficiency']:.0%} | {idle} | {busy} | {place} | {_per_gpu(r['util'], '{:.0f}%')} "
                   f"| {_per_gpu(r['processes'], '{}')} |")
    out += ["", "| problem | " + " | ".join(f"{r['n']} GPU(s): best speedup (technique)" for r in rows) + " |",
            "|---|" + "---|" * len(rows)]
    for stem in rows[0]["best"]:
        cells = []
        for r in rows:
            b = r["best"].get(stem, {})
            cells.append(f"failed: {b['error']}" if b.get("error") else
                         f"{b['best_speedup']:.2f}x ({b['best_technique']})" if b else "")
        out.append(f"| {stem} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def gpus(args: argparse.Namespace) -> None:
    problems = [Path(p) for p in args.problems] if args.problems else default_problems()
    if missing := [str(p) for p in problems if not p.is_file()]:
        raise SystemExit(f"problem files not found: {missing}")
    cfg = search_config(args)
    run_root = Path(args.run_root)
    rows = []
    for n in [int(x) for x in args.gpus.split(",")]:
        rows.append(run_setting(n, problems, cfg, run_root / f"gpus-{n}"))
        r = rows[-1]
        print(f"  {n} GPU(s): {r['evaluations']} evaluations in {r['wall']:.1f} s, {r['per_min']:.1f}/min; "
              f"statuses {r['statuses']}; each actor on its own GPU: {r['own_gpu']}", flush=True)
    for r in rows:
        r["efficiency"] = r["per_min"] / r["n"] / (rows[0]["per_min"] / rows[0]["n"])
    print("\n" + gpu_tables(rows))
    (run_root / "scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {run_root / 'scaling.json'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-nodes", default="", help="comma list of node counts (synthetic jobs on the CPU)")
    ap.add_argument("--jobs", type=int, default=24, help="--cpu-nodes: jobs per setting")
    ap.add_argument("--eval-s", type=float, default=1.0, help="--cpu-nodes: seconds per evaluation")
    ap.add_argument("--gpus", default="", help="comma list of GPU counts (a real search)")
    ap.add_argument("--problems", nargs="+", default=None, help="--gpus: problem files (default: six level-2 ones)")
    ap.add_argument("--budget", type=int, default=5, help="--gpus: evaluations per problem")
    ap.add_argument("--seed", type=int, default=0, help="--gpus: search seed")
    ap.add_argument("--exclude", default="compile", help="--gpus: comma list of techniques (or families) to drop")
    ap.add_argument("--config", default=None, help="--gpus: base YAML run config")
    ap.add_argument("--run-root", default="runs/scaling", help="--gpus: run directories gpus-N and scaling.json")
    args = ap.parse_args()
    if args.cpu_nodes:
        cpu_nodes([int(x) for x in args.cpu_nodes.split(",")], args.jobs, args.eval_s)
    if args.gpus:
        gpus(args)


if __name__ == "__main__":
    main()
