"""Template drafts' compiled kernels checked for wgmma register hazards (harness/wgmma_hazards.py),
then, where asked, raced (N calls on one set of inputs, each compared bit for bit with the first)
and timed (do_bench, L2 flushed).

    python3 experiments/wgmma_check.py [--only LABEL ...] [--race 2000] [--time] [--out DIR]

Per draft: each Triton kernel it compiled, how many of its wgmma take A from registers, how many
register hazards its loops have; the race count; the time. A `sync` variant adds `acc = acc + 0.0`
after each `tl.dot` of the draft's text: an unconditional use of the accumulator in the loop, which
makes Triton wait for each step's products before the next step (templates/conv.py's SETTLE, where
the templates add it); an `unsettled` variant takes the templates' SETTLE lines out (the kernels as
they were before it).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evo_kernels.harness.wgmma_hazards import hazards, module_sass  # noqa: E402
from experiments.drafts import load_draft, start  # noqa: E402

CT = {"CONVT_TMA": True, "CONVT_PRECISION": "tf32rn", "CONVT_STAGES": 3}
CV = {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 32, "CONV_STAGES": 4}
PLAN = [  # (label, problem, rules, configuration, variant)
    ("convT-tma-3s", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"], CT, None),
    ("convT-tma-3s-unsettled", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"], CT, "unsettled"),
    ("convT-tma-4s", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"],
     dict(CT, CONVT_STAGES=4), None),
    ("convT-tma-bh1", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"],
     dict(CT, CONVT_BLOCK_M=64, CONVT_BLOCK_W=64), None),
    ("convT-ptr", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"],
     dict(CT, CONVT_TMA=False), None),
    ("convT-ptr-unsettled", "level2/17_ConvTranspose2d_GELU_GroupNorm", ["triton_conv_transpose"],
     dict(CT, CONVT_TMA=False), "unsettled"),
    ("convT36-tma", "level1/36_ConvTranspose2d_upsample", ["triton_conv_transpose"], CT, None),
    ("convT36-tma-unsettled", "level1/36_ConvTranspose2d_upsample", ["triton_conv_transpose"], CT, "unsettled"),
    ("conv-tma-4w4s", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=4), None),
    ("conv-tma-8w4s", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8), None),
    ("conv-tma-8w3s", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_STAGES=3), None),
    ("conv-tma-8w4s-sync", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8), "sync"),
    ("conv-ptr", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_TMA=False), None),
    ("conv-ptr-unsettled", "level1/06_Conv2d_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_TMA=False),
     "unsettled"),
    ("conv1x1", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_TMA=False), None),
    ("conv1x1-unsettled", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_TMA=False),
     "unsettled"),
    # The 1x1 conv by the TMA kernel (channels-last copy, A from shared memory): tiles around the 3x3's
    ("conv1x1-tma-8w4s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8), None),
    ("conv1x1-tma-4w4s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=4), None),
    ("conv1x1-tma-8w3s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_STAGES=3),
     None),
    ("conv1x1-tma-8w3s-k64", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_STAGES=3, CONV_BLOCK_K=64), None),
    ("conv1x1-tma-m256", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_STAGES=3, CONV_BLOCK_M=256), None),
    ("conv1x1-tma-w32", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_BLOCK_W=32),
     None),
    ("gemm", "level1/01_Square_matmul", ["triton_gemm"], {}, None),
    ("mlp", "level3/01_MLP", ["triton_gemm", "fuse_chains"], {}, None),
    ("attention", "level3/12_LongSequenceAttention", ["triton_attention"], {}, None),
]


VARIANTS = {  # a draft's text edited
    # each `acc = tl.dot(...)` line followed by `acc = acc + 0.0` (same indent): the wait where the
    # template does not put it
    "sync": lambda source: re.sub(r"^(\s*)(acc = tl\.dot\(.*\))\s*$", r"\1\2\n\1acc = acc + 0.0", source, flags=re.M),
    # the templates' SETTLE lines taken out: the kernels as they were before it
    "unsettled": lambda source: re.sub(r"^\s*acc = acc \+ 0\.0  # .*\(SETTLE\)\n", "", source, flags=re.M),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--race", type=int, default=0)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--out", default="wgmma_check_out")
    args = ap.parse_args()
    out_dir = start(args.out)
    from triton.testing import do_bench
    rows = []
    for label, name, rules, config, variant in PLAN:
        if args.only and label not in args.only:
            continue
        loaded = load_draft(name, rules, config, out_dir / f"{label}.py", f"wgmma_{label.replace('-', '_')}",
                            VARIANTS.get(variant))
        if loaded is None:
            continue
        _, module, cand, inputs = loaded
        with torch.no_grad():
            first = cand(*inputs).clone()
            torch.cuda.synchronize()
            kernels = []
            for kname, sass in module_sass(module):
                (out_dir / f"{label}.{kname}.sass").write_text(sass)
                rs = len(re.findall(r"HGMMA\.\S+\s+R\d+,\s*R\d+", sass))
                kernels.append(f"{kname}: {rs} register-A wgmma, {len(hazards(sass))} hazards")
            differing = sum(bool((cand(*inputs) != first).any()) for _ in range(args.race))
            ms = float(do_bench(lambda: cand(*inputs), warmup=25, rep=200)) if args.time else float("nan")
        rows.append((label, "; ".join(kernels) or "no Triton kernel", differing, ms))
        print(f"{label}: {rows[-1][1]}; race {differing}/{args.race}; {ms:.4f} ms", flush=True)
    print("\n| draft | kernels (register-A wgmma, hazards) | calls differing | ms |")
    print("|---|---|---:|---:|")
    for label, kernels, differing, ms in rows:
        print(f"| {label} | {kernels} | {differing}/{args.race} | {ms:.4f} |")


if __name__ == "__main__":
    main()
