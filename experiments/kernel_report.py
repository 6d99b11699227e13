"""What Triton made of a fusion draft's kernels: for each kernel one call launches, its registers,
spills, shared memory, warps and stages, and what its loop became (async copies into shared memory,
wgmma, layout conversions through shared memory), next to the draft's time and its kernels' times.
A kernel far from its bound usually says why here: spills, a load not pipelined, a conversion per
iteration.

    python3 experiments/kernel_report.py level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv \
        --rules triton_depthwise triton_conv fuse_chains --set CONV_PRECISION=tf32rn CONV_WARPS=8 \
        [--no-prologues] [--out DIR]

Timing is triton.testing.do_bench (L2 flushed, median), a screen like template_probe's.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evo_kernels.config import Config  # noqa: E402
from evo_kernels.harness import precision  # noqa: E402
from evo_kernels.model.problem import import_file, load_problem  # noqa: E402
from evo_kernels.proposers.fusion import emit as fusion  # noqa: E402
from experiments.template_probe import top_kernels  # noqa: E402

P = ROOT / "experiments" / "problems"
# TTGIR operations that say how a loop was compiled (counted per kernel)
MARKERS = {"async copies": "ttg.async_copy_global_to_local", "TMA loads": "async_tma_copy_global_to_local",
           "wgmma": "ttng.warp_group_dot ", "mma (pre-Hopper)": "ttg.mma", "layout conversions": "ttg.convert_layout",
           "shared allocations": "ttg.local_alloc"}


def compiled_kernels(module) -> list[tuple[str, object]]:
    """(name, CompiledKernel) of every Triton kernel of `module` launched so far."""
    from triton.runtime.jit import JITFunction
    out = []
    for name, fn in vars(module).items():
        if not isinstance(fn, JITFunction):
            fn = getattr(fn, "fn", None)  # an autotuned or heuristics wrapper holds the JITFunction
        if not isinstance(fn, JITFunction):
            continue
        for caches in fn.device_caches.values():
            cache = caches[0] if isinstance(caches, tuple) else caches
            for kernel in cache.values():
                out.append((name, kernel))
    return out


def describe(name: str, kernel, out_dir: Path) -> dict:
    row = {"kernel": name, "regs": getattr(kernel, "n_regs", None), "spills": getattr(kernel, "n_spills", None),
           "shared": kernel.metadata.shared, "warps": kernel.metadata.num_warps,
           "stages": kernel.metadata.num_stages}
    ttgir = kernel.asm.get("ttgir", "")
    for label, op in MARKERS.items():
        row[label] = ttgir.count(op)
    ptx = kernel.asm.get("ptx", "")
    row["local memory ops"] = len(re.findall(r"\b(?:ld|st)\.local", ptx))
    (out_dir / f"{name}.ttgir").write_text(ttgir)
    (out_dir / f"{name}.ptx").write_text(ptx)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problem", help="a problem under experiments/problems, e.g. level1/07_Conv2d_pointwise_1x1")
    ap.add_argument("--rules", nargs="+", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="module constants, NAME=VALUE (a Python literal)")
    ap.add_argument("--no-prologues", action="store_true", help="build without fusing producers' tails into "
                                                                "their consumers' loads (the comparison)")
    ap.add_argument("--candidate", default=None, help="a candidate file to report instead of the built draft "
                                                      "(a hand-edited variant of it)")
    ap.add_argument("--out", default="kernel_report_out")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    precision.apply(precision.run_flags("as_run", Config().baseline_flags))
    prob = load_problem(P / f"{args.problem}.py")
    path = out_dir / "candidate.py"
    if args.candidate:
        path.write_text(Path(args.candidate).read_text())
    else:
        built = fusion.build(prob, args.rules, prologues=not args.no_prologues)
        if built is None:
            sys.exit(f"{args.problem}: the rules {args.rules} change nothing")
        path.write_text(built[0])
    module = import_file(path, "report")
    for item in args.set:
        key, _, value = item.partition("=")
        if not hasattr(module, key):
            sys.exit(f"--set {item}: the draft has no constant {key}")
        try:
            setattr(module, key, ast.literal_eval(value))
        except (ValueError, SyntaxError):  # a bare word: a string
            setattr(module, key, value)
    torch.manual_seed(0)
    ref = prob.make_model(prob.Model, 0, "cuda")
    cand = prob.make_model(module.ModelNew, 0, "cuda")
    cand.load_state_dict(ref.state_dict(), strict=False)
    inputs = prob.make_inputs(1, "cuda")
    from triton.testing import do_bench
    with torch.no_grad():
        want, got = ref(*inputs), cand(*inputs)
        diff = float((want - got).abs().max())
        ms = float(do_bench(lambda: cand(*inputs), warmup=25, rep=100))
        tops = top_kernels(lambda: cand(*inputs), n=8)
    print(f"{args.candidate or args.problem} {args.rules} {' '.join(args.set)}{' no prologues' if args.no_prologues else ''}: "
          f"{ms:.4f} ms, max diff to eager {diff:.2e}")
    print(f"  kernels: {tops}")
    rows = [describe(name, k, out_dir) for name, k in compiled_kernels(module)]
    if rows:
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in rows:
            print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
