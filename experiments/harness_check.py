"""Harness check on a GPU: the project's timing against triton.testing.do_bench, baseline repeat noise,
and crash recovery after a CUDA illegal memory access.

    python3 -m experiments.harness_check [--problems N] [--device cuda]

Prints one table: per problem, eager median by the project's protocol (fresh inputs per repetition,
L2 flush, events + device-wide sync), the same again, and do_bench's median (L2 flushed, same inputs
each repetition); agreement = project / do_bench, noise = |run1 - run2| / min.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evo_kernels.harness import integrity, precision  # noqa: E402
from evo_kernels.harness.backends import get_backend  # noqa: E402
from evo_kernels.model.candidate import Candidate  # noqa: E402
from evo_kernels.config import Config, TimingConfig  # noqa: E402
from evo_kernels.harness.evaluator import Evaluator  # noqa: E402
from evo_kernels.model.problem import load_problem  # noqa: E402
from evo_kernels.harness.timing import benchmark, measure_ceilings  # noqa: E402


def project_median(problem, model, backend, cfg: TimingConfig, seed: int) -> float:
    buffers = problem.make_inputs(seed, backend.device)

    def refresh(i: int) -> None:
        for b, f in zip(buffers, problem.make_inputs(seed + 1 + i, backend.device)):
            if isinstance(b, torch.Tensor):
                b.copy_(f)

    def run():
        with torch.no_grad():
            return model(*buffers)

    return benchmark(run, refresh, backend, cfg).median_ms


def do_bench_median(problem, model, device, seed: int) -> float:
    import triton.testing
    inputs = problem.make_inputs(seed, device)

    def run():
        with torch.no_grad():
            model(*inputs)

    return float(triton.testing.do_bench(run, warmup=100, rep=1000, return_mode="median"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=12)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--skip-crash", action="store_true")
    args = ap.parse_args()
    precision.set_strict_precision()
    backend = get_backend(args.device)
    info = measure_ceilings(backend, backend.describe())
    print(f"device: {info.name}  SMs {info.sm_count}  L2 {info.l2_bytes >> 20} MiB  "
          f"copy bandwidth {info.bandwidth_gbs:.0f} GB/s  fp32 matmul {info.peak_tflops_fp32:.1f} TFLOP/s  "
          f"TF32 {info.peak_tflops_tf32:.1f} TFLOP/s")
    files = sorted((ROOT / "experiments" / "problems").glob("level*/*.py"))
    # Spread the sample over the levels: every k-th file.
    step = max(1, len(files) // args.problems)
    chosen = files[::step][: args.problems]
    cfg = TimingConfig()
    rows = []
    for path in chosen:
        problem = load_problem(path)
        model = problem.make_model(problem.Model, 0, backend.device)
        seed = random.getrandbits(30)
        t0 = time.time()
        a = project_median(problem, model, backend, cfg, seed)
        b = project_median(problem, model, backend, cfg, seed + 10_000)
        c = do_bench_median(problem, model, backend.device, seed)
        rows.append((f"{problem.level}/{problem.name}", a, b, c, a / c, abs(a - b) / min(a, b), time.time() - t0))
        del model
        torch.cuda.empty_cache()
        print(f"  {rows[-1][0]} done in {rows[-1][-1]:.1f} s", flush=True)

    if not args.skip_crash:
        cfg_all = Config(device=args.device, baselines=["eager"])
        cfg_all.timing.min_reps = 20
        wild = (ROOT / "experiments" / "candidates" / "illegal_memory_access.py").read_text()
        problem_path = chosen[0]
        with Evaluator(args.device, cfg_all) as ev:
            pid0 = ev.worker.proc.pid
            bad = ev.evaluate(problem_path, Candidate(source=wild), timed=False)
            pid1 = ev.worker.proc.pid
            ref_src = load_problem(problem_path).source.replace("class Model(", "class ModelNew(")
            after = ev.evaluate(problem_path, Candidate(source=ref_src), timed=True)
        print(f"\ncrash check: illegal memory access -> status {bad.status!r} ({bad.reason[:160]})")
        print(f"worker replaced: pid {pid0} -> {pid1}; next candidate (the reference as ModelNew) -> "
              f"status {after.status!r}, speedup {after.speedup}")

    print("\n| problem | project ms (run 1) | project ms (run 2) | do_bench ms | project/do_bench | repeat noise |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, a, b, c, ratio, noise, _ in rows:
        print(f"| {name} | {a:.4f} | {b:.4f} | {c:.4f} | {ratio:.3f} | {100 * noise:.2f}% |")
    ratios = [r[4] for r in rows]
    noises = [r[5] for r in rows]
    print(f"\nagreement: median ratio {statistics.median(ratios):.3f}, worst {max(ratios, key=lambda r: abs(r - 1)):.3f};"
          f" repeat noise: median {100 * statistics.median(noises):.2f}%, worst {100 * max(noises):.2f}%")


if __name__ == "__main__":
    main()
