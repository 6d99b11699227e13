"""Seconds per evaluation of honest candidates through the Evaluator (policy, verification, timing,
audit), with the default config: the harness's overhead, before and after a change to it.

    python3 -m experiments.overhead [--device cuda] [--repeat 2] [--label NAME]

Run it once with the harness as it is and once with another checkout of it on PYTHONPATH; the rows
are the same problems and candidates (each problem's reference, and its first rules draft).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import evo_kernels  # noqa: F401 - from PYTHONPATH: the checkout under test
from evo_kernels import config as config_mod
from evo_kernels.harness.evaluator import Evaluator
from evo_kernels.model.candidate import Evaluation
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers.base import reference_candidate
from evo_kernels.proposers.rules import RulesProposer

SUITE = Path(__file__).resolve().parent / "problems"
PROBLEMS = ["level2/01_Gemm_BiasAdd_ReLU", "level1/13_LayerNorm", "level2/15_Conv2d_ReLU_BiasAdd"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--label", default=str(Path(evo_kernels.__file__).resolve().parent.parent))
    args = ap.parse_args()
    cfg = config_mod.from_dict({"device": args.device, "timing": {"profile_top_kernels": 0}})
    rows = []
    with Evaluator(args.device, cfg) as ev:
        for name in PROBLEMS:
            path = SUITE / f"{name}.py"
            problem = load_problem(path)
            ref = reference_candidate(problem)
            draft = RulesProposer(seed=0, device=args.device).propose(
                problem, [(ref, Evaluation("ok", speedup=1.0))], [], 1)[0]
            ev.baselines(path)  # measured once per problem, outside the rows
            for cand in (ref, draft):
                secs = []
                for _ in range(args.repeat):
                    e = ev.evaluate(path, cand)
                    secs.append(e.duration_s)
                rows.append({"problem": name, "candidate": cand.technique, "status": e.status,
                             "seconds": statistics.median(secs), "median_ms": e.median_ms})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.label}")
    print("| problem | candidate | status | seconds per evaluation (median of repeats) |")
    print("|---|---|---|---:|")
    for r in rows:
        print(f"| {r['problem']} | {r['candidate']} | {r['status']} | {r['seconds']:.2f} |")
    print(f"mean seconds per evaluation: {statistics.fmean(r['seconds'] for r in rows):.2f}")


if __name__ == "__main__":
    sys.exit(main())
