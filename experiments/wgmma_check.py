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

from evo_kernels.harness.wgmma_hazards import compiled_kernels, hazards, module_sass  # noqa: E402
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
    # The 1x1 conv by TMA (a channels-last copy until 2026-12-01; since, POINTWISE_TMA): tiles around the 3x3's
    ("conv1x1-tma-8w4s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8), None),
    ("conv1x1-tma-4w4s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=4), None),
    ("conv1x1-tma-8w3s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_STAGES=3),
     None),
    ("conv1x1-tma-8w3s-k64", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_STAGES=3, CONV_BLOCK_K=64), None),
    ("conv1x1-tma-m256", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_STAGES=3, CONV_BLOCK_M=256), None),
    # The pointer kernels' products as a batched (3-D) dot of one: Triton 3.6 compiles it to mma.sync
    # (HMMA, registers read as issued), not wgmma; no wait needed (the `mma2` variant). 2026-12-02:
    # no hazard, but 2600 spilled loads and stores and 140-250 ms a call: not a way.
    ("conv1x1-mma2", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8, CONV_TMA=False),
     "mma2"),
    # The waiting pointer kernel at tiles that let more than one CTA share an SM
    ("conv1x1-m64-4w3s", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=4, CONV_BLOCK_M=64, CONV_STAGES=3, CONV_TMA=False), None),
    # POINTWISE_TMA without its wait, and more tiles
    ("conv1x1-tma-unsettled", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(CV, CONV_WARPS=8),
     "unsettled"),
    ("conv1x1-tma-n256", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_BLOCK_N=256, CONV_STAGES=3), None),
    ("conv1x1-tma-m64-4w", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=4, CONV_BLOCK_M=64, CONV_STAGES=4), None),
    # POINTWISE_TMA's best tile on level1/07 without its wait
    ("conv1x1-tma-n256-unsettled", "level1/07_Conv2d_pointwise_1x1", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_BLOCK_N=256, CONV_STAGES=3), "unsettled"),
    ("pw19", "level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", ["triton_depthwise", "triton_conv",
     "fuse_chains"], dict(CV, CONV_WARPS=4, DW_ROWS=16, CONV_TMA=False), None),
    ("pw19-8w", "level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", ["triton_depthwise", "triton_conv",
     "fuse_chains"], dict(CV, CONV_WARPS=8, DW_ROWS=16, CONV_TMA=False), None),
    ("pw19-tma", "level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", ["triton_depthwise", "triton_conv",
     "fuse_chains"], dict(CV, CONV_WARPS=4, DW_ROWS=16), None),
    ("pw19-tma-8w", "level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", ["triton_depthwise", "triton_conv",
     "fuse_chains"], dict(CV, CONV_WARPS=8, DW_ROWS=16), None),
    ("ir10", "level3/10_MobileNetV2_InvertedResidual", ["triton_depthwise", "triton_conv", "fuse_chains"],
     dict(CV, CONV_WARPS=4, CONV_TMA=False), None),
    ("ir10-tma", "level3/10_MobileNetV2_InvertedResidual", ["triton_depthwise", "triton_conv", "fuse_chains"],
     dict(CV, CONV_WARPS=4), None),
    ("ir10-tma-8w", "level3/10_MobileNetV2_InvertedResidual", ["triton_depthwise", "triton_conv", "fuse_chains"],
     dict(CV, CONV_WARPS=8), None),
    # The strided conv by TMA from the copy in phase planes (2026-12-02), against its pointer kernel
    ("conv09-tma-8w4s", "level1/09_Conv2d_strided_3x3", ["triton_conv"], dict(CV, CONV_WARPS=8), None),
    ("conv09-tma-4w4s", "level1/09_Conv2d_strided_3x3", ["triton_conv"], dict(CV, CONV_WARPS=4), None),
    ("conv09-tma-n256", "level1/09_Conv2d_strided_3x3", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_BLOCK_N=256, CONV_STAGES=3), None),
    ("conv09-tma-m64-n256-4w", "level1/09_Conv2d_strided_3x3", ["triton_conv"],
     dict(CV, CONV_WARPS=4, CONV_BLOCK_M=64, CONV_BLOCK_N=256, CONV_STAGES=3), None),
    ("conv09-ptr-n256", "level1/09_Conv2d_strided_3x3", ["triton_conv"],
     dict(CV, CONV_WARPS=8, CONV_BLOCK_N=256, CONV_STAGES=3, CONV_TMA=False), None),
    ("resnet04-tma", "level3/04_ResNetBasicBlock", ["triton_conv", "fuse_chains"], dict(CV, CONV_WARPS=8), None),
    ("resnet04-ptr", "level3/04_ResNetBasicBlock", ["triton_conv", "fuse_chains"],
     dict(CV, CONV_WARPS=8, CONV_TMA=False), None),
    # Conv3d (templates/conv3d.py, 2026-12-02): the TMA kernel's 5-D boxes, and its pointer kernel
    ("conv3d11-tma-8w", "level1/11_Conv3d", ["triton_conv3d"], dict(CV, CONV_WARPS=8), None),
    ("conv3d11-tma-4w", "level1/11_Conv3d", ["triton_conv3d"], dict(CV, CONV_WARPS=4), None),
    ("conv3d11-tma-m256-3s", "level1/11_Conv3d", ["triton_conv3d"], dict(CV, CONV_WARPS=8, CONV_STAGES=3,
     CONV_BLOCK_M=256), None),
    ("conv3d11-ptr", "level1/11_Conv3d", ["triton_conv3d"], dict(CV, CONV_WARPS=8, CONV_TMA=False), None),
    ("conv3d18-tma", "level2/18_Conv3d_Softmax_MaxPool", ["triton_conv3d", "triton_reduce", "fuse_chains"],
     dict(CV, CONV_WARPS=8), None),
    ("conv3d18-tma-4w", "level2/18_Conv3d_Softmax_MaxPool", ["triton_conv3d", "triton_reduce", "fuse_chains"],
     dict(CV, CONV_WARPS=4), None),
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
    # the pointer kernels' products as a 3-D dot of one batch (mma.sync), their SETTLE lines out
    "mma2": lambda source: _batched_products(VARIANTS["unsettled"](source)),
}


def _batched_products(source: str) -> str:
    """Each `acc = tl.dot(A, B, acc, ...)` of a pointer kernel (an accumulator made by
    `tl.zeros((BLOCK_M, BLOCK_N), ...)`) as a dot of [1, M, K] by [1, K, N] into a [1, M, N]
    accumulator, reshaped to [M, N] once after the loop."""
    source = source.replace("acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
                            "acc = tl.zeros((1, BLOCK_M, BLOCK_N), dtype=tl.float32)")
    source = re.sub(r"acc = tl\.dot\((_tf32_rn\(a\)|a), (b), acc,", r"acc = tl.dot(\1[None, :, :], \2[None, :, :], acc,",
                    source)
    return source.replace("\n    v = acc\n", "\n    acc = tl.reshape(acc, (BLOCK_M, BLOCK_N))\n    v = acc\n")


def _resources(module) -> str:
    """Shared memory and registers (spilled) of each kernel the draft's module compiled."""
    return "; ".join(f"{name} {kernel.metadata.shared} B shared, {kernel.n_regs} registers ({kernel.n_spills} spilled)"
                     for name, kernel in compiled_kernels(module))


def _errors(prob, cand: torch.nn.Module, out: torch.Tensor, inputs: list) -> str:
    """The draft's and eager's (as run) largest absolute error against the float64 reference."""
    torch.manual_seed(0)
    ref = prob.make_model(prob.Model, 0, "cuda")
    ref.load_state_dict(cand.state_dict(), strict=False)
    eager = ref(*inputs)
    exact = ref.double()(*[x.double() if torch.is_tensor(x) and x.is_floating_point() else x for x in inputs])
    return f"{(out.double() - exact).abs().max().item():.2e} / {(eager.double() - exact).abs().max().item():.2e}"


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
        prob, module, cand, inputs = loaded
        with torch.no_grad():
            first = cand(*inputs).clone()
            err = _errors(prob, cand, first, inputs)
            torch.cuda.synchronize()
            kernels = [_resources(module)]
            for kname, sass in module_sass(module):
                (out_dir / f"{label}.{kname}.sass").write_text(sass)
                rs = len(re.findall(r"HGMMA\.\S+\s+R\d+,\s*R\d+", sass))
                hmma = len(re.findall(r"\bHMMA\.", sass))
                kernels.append(f"{kname}: {rs} register-A wgmma, {hmma} mma.sync, {len(hazards(sass))} hazards")
            differing = sum(bool((cand(*inputs) != first).any()) for _ in range(args.race))
            ms = float(do_bench(lambda: cand(*inputs), warmup=25, rep=200)) if args.time else float("nan")
        rows.append((label, "; ".join(kernels) or "no Triton kernel", differing, ms, err))
        print(f"{label}: {rows[-1][1]}; race {differing}/{args.race}; {ms:.4f} ms; error {err}", flush=True)
    print("\n| draft | kernels (register-A wgmma, mma.sync, hazards) | calls differing | ms | max error: draft / eager |")
    print("|---|---|---:|---:|---|")
    for label, kernels, differing, ms, err in rows:
        print(f"| {label} | {kernels} | {differing}/{args.race} | {ms:.4f} | {err} |")


if __name__ == "__main__":
    main()
