"""Build a suite problem's template candidate and call it a few times: a target for Nsight Compute
(`ncu`) or another profiler, which then sees the candidate's kernels at the problem's real sizes.

    ncu --section SpeedOfLight -k regex:_dwconv python3 -m experiments.run_candidate \\
        level1/08_Conv2d_depthwise_3x3 triton_depthwise [--set DW_BLOCK=2048 ...] [--calls 3]
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import torch

from evo_kernels.model.problem import import_file, load_problem
from evo_kernels.proposers.fusion import emit as fusion

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problem", help="a suite problem, e.g. level1/08_Conv2d_depthwise_3x3")
    ap.add_argument("rules", nargs="+", help="graph rules, e.g. triton_depthwise fuse_chains")
    ap.add_argument("--set", nargs="*", default=[], help="NAME=VALUE launch constants")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--out", default="/tmp/run_candidate.py", help="where the candidate's source is written")
    args = ap.parse_args()
    prob = load_problem(ROOT / "experiments" / "problems" / f"{args.problem}.py")
    built = fusion.build(prob, args.rules)
    if built is None:
        sys.exit(f"{args.problem}: the rules {args.rules} build no candidate")
    Path(args.out).write_text(built[0])
    module = import_file(Path(args.out), "run_candidate")
    for item in args.set:
        name, _, value = item.partition("=")
        setattr(module, name, ast.literal_eval(value))
    torch.manual_seed(0)
    model = prob.make_model(module.ModelNew, 0, "cuda")
    inputs = prob.make_inputs(1, "cuda")
    with torch.no_grad():
        for _ in range(args.calls):
            model(*inputs)
    torch.cuda.synchronize()
    print(f"{args.problem}: {args.calls} calls of the candidate in {args.out}")


if __name__ == "__main__":
    main()
