"""Probe the Triton templates on a GPU: build fusion candidates for suite problems, check them against
the reference and time a few template configurations next to eager (and torch.compile).

    python3 experiments/template_probe.py [--time-budget 270] [--compile] [--only NAME ...] [--out DIR]

Timing here is triton.testing.do_bench (L2 flushed, median): a quick screen for choosing search
spaces and defaults; the project's own protocol (`evo-kernels bench`) is what RESULTS quotes as speedups.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from evo_kernels.harness import precision  # noqa: E402
from evo_kernels.model.problem import import_file, load_problem  # noqa: E402
from evo_kernels.proposers.fusion import emit as fusion  # noqa: E402

P = ROOT / "experiments" / "problems"
G = dict(gemm=True)
ALL = dict(gemm=True, conv=True, chains=True, sdpa=True)
GEMM_CONFIGS = [  # around the defaults (128, 128, 64, GROUP_M 8, 8 warps, 3 stages, tf32x3; K steps of 32 by TMA)
    {}, {"GEMM_TMA": False}, {"GROUP_M": 16}, {"BLOCK_N": 64}, {"BLOCK_M": 64}, {"GEMM_WARPS": 4},
    {"BLOCK_K": 32, "GEMM_STAGES": 4},
    {"GEMM_STAGES": 2}, {"BLOCK_N": 256, "BLOCK_K": 32}, {"BLOCK_M": 256, "BLOCK_K": 32},
]
# Operands read as they lie (no K-major copy), and tile shapes, where a copy or the tile count may cost
GEMM_OPERANDS = [{}, {"GEMM_TMA": False}, {"GEMM_KMAJOR": False}, {"GEMM_WARPS": 4}, {"BLOCK_K": 32, "GEMM_STAGES": 4},
                 {"BLOCK_M": 64}, {"GEMM_KMAJOR": False, "GEMM_WARPS": 4}]
DW_CONFIGS = [{}, {"DW_ROWS": 16}, {"DW_PER_THREAD": 2}, {"DW_PER_THREAD": 8}, {"DW_ROWS": 4}, {"DW_ROWS": 32}]
DW = dict(depthwise=True)
# The 1x1 conv's GEMM per image at TF32 (cuDNN's precision as run): a sweep of its pointer kernel's
# tiles, and of its TMA kernel's (POINTWISE_TMA, 2026-12-02: best so far BLOCK_N 256, 3 stages, 8 warps)
TF32RN = {"CONV_PRECISION": "tf32rn"}
PW_SWEEP = [dict(TF32RN, CONV_BLOCK_K=bk, CONV_STAGES=st, CONV_WARPS=wp, CONV_TMA=False)
            for bk, st in ((16, 4), (32, 3), (32, 4), (32, 5), (64, 2)) for wp in (4, 8)]
PW_TMA_SWEEP = [dict(TF32RN, CONV_BLOCK_M=bm, CONV_BLOCK_N=bn, CONV_BLOCK_K=bk, CONV_STAGES=st, CONV_WARPS=wp)
                for bm, bn, wp in ((128, 256, 8), (128, 128, 8), (64, 128, 4), (64, 256, 4), (256, 128, 8))
                for bk, st in ((32, 3), (32, 4), (64, 2))]
# The sweep's best on level1/07, level2/19 and level3/10 (2026-12-01)
PW_BEST = [dict(TF32RN, CONV_BLOCK_K=32, CONV_STAGES=4, CONV_WARPS=8), dict(TF32RN, CONV_BLOCK_K=32, CONV_STAGES=4, CONV_WARPS=4)]
CONV_CONFIGS = [
    {}, {"CONV_BLOCK_K": 64, "CONV_STAGES": 2}, {"CONV_BLOCK_K": 64, "CONV_STAGES": 3},
    {"CONV_BLOCK_N": 64, "CONV_BLOCK_K": 64}, {"CONV_BLOCK_M": 64, "CONV_BLOCK_K": 64, "CONV_WARPS": 4},
]
# TF32 products of inputs rounded to nearest: where cuDNN's convolutions run TF32 (PyTorch's default)
CONV_TF32 = [{"CONV_PRECISION": "tf32rn"}, {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 64, "CONV_STAGES": 3},
             {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 32, "CONV_STAGES": 4},
             {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_N": 64, "CONV_BLOCK_K": 64, "CONV_WARPS": 4},
             {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_M": 256, "CONV_BLOCK_K": 32}]
ROW_CONFIGS = [{}, {"ROW_PER_THREAD": 8}, {"ROW_TILE": 16384, "ROW_PER_THREAD": 32}]
RED_CONFIGS = [{}, {"RED_TILE": 8192}, {"RED_TILE": 2048, "RED_WARPS": 4}, {"RED_WAVES": 8}, {"RED_WARPS": 4},
               {"RED_WARPS": 16}, {"RED_WARPS": 16, "RED_TILE": 8192}, {"RED_BLOCK_B": 32, "RED_WARPS": 4},
               {"RED_COOP_CHUNK": 0}, {"RED_COOP_CHUNK": 8192}, {"RED_COOP_CHUNK": 2048}]
R = dict(reduce=True)
CE_CONFIGS = [{}, {"CE_TILE": 8192}, {"CE_TILE": 2048, "CE_WARPS": 4}, {"CE_WARPS": 16}, {"CE_WAVES": 8}]
EW_CONFIGS = [{}, {"EW_BLOCK": 512}, {"EW_BLOCK": 2048, "EW_WARPS": 8}]
POOL_CONFIGS = [{}, {"POOL_BLOCK": 512}, {"POOL_BLOCK": 2048}, {"POOL_WARPS": 8}, {"POOL_WARPS": 2},
                {"POOL_BLOCK": 512, "POOL_WARPS": 8}]
# The sliding-window pool (2-D, row stride 1): rows a program, columns a lane
WINDOW_CONFIGS = [{}, {"POOL_ROWS": 8}, {"POOL_ROWS": 32}, {"POOL_PER_THREAD": 2}, {"POOL_PER_THREAD": 8},
                  {"POOL_ROWS": 32, "POOL_PER_THREAD": 8}, {"POOL_ROWS": 4}]
ATTN_CONFIGS = [{}, {"ATTN_BLOCK_N": 32}, {"ATTN_BLOCK_M": 64}, {"ATTN_WARPS": 4}, {"ATTN_STAGES": 2},
                {"ATTN_STAGES": 1}, {"ATTN_BLOCK_M": 64, "ATTN_WARPS": 4}, {"ATTN_BLOCK_M": 64, "ATTN_BLOCK_N": 128},
                {"ATTN_PRECISION": "ieee"}]
ATTN = dict(attention=True)
# The TMA conv kernel (stride 1, Hopper) at TF32 rounded: tiles of BLOCK_M pixels in rows of CONV_BLOCK_W
CONV_TMA_CONFIGS = [dict(TF32RN, CONV_BLOCK_K=32, CONV_STAGES=st, CONV_WARPS=wp, CONV_BLOCK_W=bw, CONV_BLOCK_M=bm)
                    for bm, bw, st, wp in ((128, 16, 4, 8), (128, 16, 3, 8), (128, 16, 4, 4), (128, 32, 3, 8),
                                           (256, 16, 3, 8), (64, 16, 4, 4))] + [dict(TF32RN, CONV_TMA=False)]
# The transposed conv (a GEMM per output phase): TF32 rounded, tiles around the defaults (128 x 64 x 32, 4 warps,
# 3 stages, rows of 16), the pointer kernel, and tf32x3
_RN = {"CONVT_PRECISION": "tf32rn", "CONVT_TMA": True}
CONVT_CONFIGS = [_RN, dict(_RN, CONVT_WARPS=8), dict(_RN, CONVT_STAGES=4), dict(_RN, CONVT_BLOCK_W=32),
                 dict(_RN, CONVT_BLOCK_M=256, CONVT_BLOCK_W=32), dict(_RN, CONVT_BLOCK_M=64),
                 dict(_RN, CONVT_BLOCK_K=64, CONVT_STAGES=2), dict(_RN, CONVT_TMA=False), {}]
CONVT = dict(conv_transpose=True)
SCAN_CONFIGS = [{}, {"SCAN_PAIRED": 1}, {"SCAN_TILE": 1024}, {"SCAN_TILE": 2048}, {"SCAN_TILE": 256},
                {"SCAN_WARPS": 2}, {"SCAN_TILE": 2048, "SCAN_WARPS": 4}, {"SCAN_TILE": 4096, "SCAN_WARPS": 4}]
_ALL_PROBLEMS = [
    "level1/02_Tall_skinny_matmul", "level1/05_Matrix_vector_ish", "level1/07_Conv2d_pointwise_1x1",
    "level1/09_Conv2d_strided_3x3", "level1/10_Conv1d", "level1/12_BatchNorm2d", "level1/15_RMSNorm",
    "level1/17_LogSoftmax", "level1/19_Mean_reduction_dim", "level1/22_MaxPool2d", "level1/27_Swish",
    "level1/29_L2Norm",
    "level2/01_Gemm_BiasAdd_ReLU", "level2/02_Gemm_Scale_ResidualAdd", "level2/03_Gemm_LayerNorm_GELU",
    "level2/04_Matmul_Softmax", "level2/06_Gemm_BatchNorm_ReLU", "level2/07_Gemm_MeanSubtract_GELU",
    "level2/08_Gemm_Sigmoid_Sum", "level2/09_Gemm_GELU_Gemm", "level2/10_Gemm_ResidualAdd_LayerNorm",
    "level2/11_Conv2d_BatchNorm_ReLU", "level2/12_Conv2d_GroupNorm_Mean", "level2/13_Conv2d_AvgPool_Sigmoid",
    "level2/15_Conv2d_ReLU_BiasAdd", "level2/16_Conv2d_Subtract_HardSwish_MaxPool",
    "level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", "level2/20_Embedding_Mean_Linear",
    "level2/21_Gemm_GroupNorm_Swish",
    "level3/01_MLP", "level3/02_MultiHeadSelfAttention", "level3/03_TransformerEncoderBlock",
    "level3/04_ResNetBasicBlock", "level3/05_SmallCNN", "level3/06_GRUCell_step", "level3/07_LSTMCell_step",
    "level3/08_TinyVGG", "level3/09_CausalSelfAttention", "level3/10_MobileNetV2_InvertedResidual",
    "level3/11_ConvNeXtBlock",
]
# Seeds under cuDNN's TF32 (rounded TF32 products, K blocks of 32): the template's (4 stages, 8 warps,
# 128 x 128) and the 1x1 sweep's best tiles, on 1x1 and 3x3 convolutions alike
_SEED = dict(TF32RN, CONV_BLOCK_K=32)
CONV_SEEDS = [dict(_SEED, CONV_STAGES=4), dict(_SEED, CONV_BLOCK_N=256, CONV_STAGES=3),
              dict(_SEED, CONV_BLOCK_M=64, CONV_WARPS=4, CONV_STAGES=4), dict(_SEED, CONV_WARPS=4, CONV_STAGES=4),
              dict(_SEED, CONV_BLOCK_M=64, CONV_BLOCK_N=256, CONV_WARPS=4, CONV_STAGES=3)]


def sweep(template: str, n: int, seed: int = 0) -> list[dict]:
    """A template's configurations to probe across its problems, as changes from its defaults: its
    whole space where that holds at most n, else the defaults, every one-value neighbour (what a
    draft's screen tries anyway) and a seeded sample of the rest, n in all. Constraints kept."""
    import itertools
    import random

    from evo_kernels.model.tunables import neighbours, satisfies
    from evo_kernels.proposers.templates import TEMPLATES
    t = next(t for t in TEMPLATES if t.name == template)
    defaults = {k: v[0] for k, v in t.params.items()}
    grid = [dict(zip(t.params, vals)) for vals in itertools.product(*t.params.values())]
    grid = [c for c in grid if satisfies(c, t.constraints)]
    if len(grid) > n:
        near = [defaults] + neighbours(defaults, t.params, t.constraints, len(grid))
        rest = [c for c in grid if c not in near]
        grid = near + random.Random(seed).sample(rest, max(0, n - len(near)))
    return [{k: v for k, v in c.items() if v != defaults[k]} for c in grid[:max(n, 1)]]


# Where each of these templates is a problem's main kernel: its configurations on all of them, for
# the alternatives a draft's screen tries first (experiments/pick_alternatives.py reads probe.json).
SWEEPS = {
    "reduce": (["level1/14_GroupNorm", "level1/18_Sum_reduction_dim", "level1/21_Argmax_dim",
                "level1/30_LayerNorm_over_CHW", "level1/31_Softmax_over_channels", "level1/32_InstanceNorm2d",
                "level2/12_Conv2d_GroupNorm_Mean", "level2/18_Conv3d_Softmax_MaxPool", "level2/20_Embedding_Mean_Linear",
                "level2/21_Gemm_GroupNorm_Swish"], dict(reduce=True, chains=True), 24),
    "rowwise": (["level1/13_LayerNorm", "level1/15_RMSNorm", "level1/16_Softmax", "level1/17_LogSoftmax",
                 "level1/19_Mean_reduction_dim", "level1/29_L2Norm"], dict(chains=True), 16),
    "pool": (["level1/22_MaxPool2d", "level1/34_MaxPool3d", "level1/35_AvgPool1d"], dict(chains=True), 16),
    "elementwise": (["level1/12_BatchNorm2d", "level1/27_Swish"], dict(chains=True), 16),
}
SWEEP_PLAN = [(name, opts, sweep(t, n), False) for t, (names, opts, n) in SWEEPS.items() for name in names]

PLAN = [  # (problem, options, configs, time torch.compile too)
    ("level1/07_Conv2d_pointwise_1x1", dict(conv=True), CONV_SEEDS, True),
    ("level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", dict(depthwise=True, conv=True, chains=True),
     CONV_SEEDS, True),
    ("level3/10_MobileNetV2_InvertedResidual", dict(ALL, depthwise=True), CONV_SEEDS, True),
    ("level1/06_Conv2d_3x3", dict(conv=True), CONV_SEEDS, True),
    ("level2/11_Conv2d_BatchNorm_ReLU", dict(conv=True, chains=True), CONV_SEEDS, True),
    ("level2/15_Conv2d_ReLU_BiasAdd", dict(conv=True, chains=True), CONV_SEEDS, True),
    ("level1/09_Conv2d_strided_3x3", dict(conv=True), CONV_SEEDS, True),
    ("level3/04_ResNetBasicBlock", dict(conv=True, chains=True), CONV_SEEDS, True),
    ("level1/36_ConvTranspose2d_upsample", CONVT, CONVT_CONFIGS, True),
    ("level2/17_ConvTranspose2d_GELU_GroupNorm", dict(conv_transpose=True, reduce=True), CONVT_CONFIGS, True),
    ("level2/17_ConvTranspose2d_GELU_GroupNorm", dict(chains=True, reduce=True), [{}], True),
    ("level1/06_Conv2d_3x3", dict(conv=True), CONV_TMA_CONFIGS, True),
    ("level2/11_Conv2d_BatchNorm_ReLU", dict(conv=True, chains=True), CONV_TMA_CONFIGS[:3], True),
    ("level2/15_Conv2d_ReLU_BiasAdd", dict(conv=True, chains=True), CONV_TMA_CONFIGS[:3], True),
    ("level3/12_LongSequenceAttention", ATTN, ATTN_CONFIGS, True),
    ("level3/09_CausalSelfAttention", dict(gemm=True, chains=True, sdpa=True, attention=True), ATTN_CONFIGS[:4], True),
    ("level3/02_MultiHeadSelfAttention", dict(gemm=True, chains=True, sdpa=True, attention=True), ATTN_CONFIGS[:4],
     True),
    ("level1/34_MaxPool3d", dict(chains=True), POOL_CONFIGS, True),
    ("level1/35_AvgPool1d", dict(chains=True), POOL_CONFIGS, True),
    ("level1/33_CrossEntropy_large_vocab", dict(cross_entropy=True), CE_CONFIGS, True),
    ("level1/30_LayerNorm_over_CHW", R, RED_CONFIGS, True),
    ("level1/31_Softmax_over_channels", R, RED_CONFIGS, True),
    ("level1/32_InstanceNorm2d", R, RED_CONFIGS, True),
    ("level1/14_GroupNorm", R, RED_CONFIGS, True),
    ("level1/18_Sum_reduction_dim", R, RED_CONFIGS, True),
    ("level1/19_Mean_reduction_dim", R, RED_CONFIGS[:3], True),
    ("level1/21_Argmax_dim", R, RED_CONFIGS[:3], True),
    ("level2/12_Conv2d_GroupNorm_Mean", dict(reduce=True, chains=True), [{}], True),
    ("level2/18_Conv3d_Softmax_MaxPool", dict(reduce=True, chains=True), [{}], True),
    ("level1/01_Square_matmul", G, GEMM_CONFIGS[:2] + [{"GEMM_KMAJOR": False}], True),
    ("level2/05_Gemm_SiLU_Clamp", G, GEMM_CONFIGS, True),
    ("level1/06_Conv2d_3x3", dict(conv=True), CONV_CONFIGS + CONV_TF32, True),
    ("level2/14_Conv2d_Tanh_Scale_BiasAdd_MaxPool", ALL, CONV_CONFIGS[:3] + CONV_TF32, True),
    ("level1/07_Conv2d_pointwise_1x1", dict(conv=True), [{}] + PW_SWEEP + PW_TMA_SWEEP, True),
    ("level2/15_Conv2d_ReLU_BiasAdd", dict(conv=True), CONV_TF32, True),
    ("level2/11_Conv2d_BatchNorm_ReLU", dict(conv=True), CONV_TF32, True),
    ("level1/08_Conv2d_depthwise_3x3", DW, DW_CONFIGS, True),
    ("level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", dict(depthwise=True, chains=True), DW_CONFIGS[:2], True),
    ("level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", dict(depthwise=True, conv=True, chains=True),
     [dict(c, DW_ROWS=16) for c in PW_BEST], True),
    ("level3/10_MobileNetV2_InvertedResidual", dict(ALL, depthwise=True), [{}] + PW_BEST, True),
    ("level3/11_ConvNeXtBlock", dict(ALL, depthwise=True), DW_CONFIGS[:3], True),
    ("level1/03_Matmul_transposed_A_long_K", G, GEMM_OPERANDS, True),
    ("level1/04_Batched_matmul", G, GEMM_OPERANDS, True),
    ("level1/16_Softmax", dict(chains=True), ROW_CONFIGS, True),
    ("level1/17_LogSoftmax", dict(chains=True), ROW_CONFIGS, True),
    ("level1/13_LayerNorm", dict(chains=True), ROW_CONFIGS, True),
    ("level1/23_AvgPool2d", dict(chains=True), WINDOW_CONFIGS, True),
    ("level1/22_MaxPool2d", dict(chains=True), POOL_CONFIGS, True),
    ("level1/28_Cumsum", dict(scan=True), SCAN_CONFIGS, True),
    ("level1/12_BatchNorm2d", dict(chains=True), [{}], True),
] + [(name, ALL, [{}], True) for name in _ALL_PROBLEMS] + [
    ("level2/11_Conv2d_BatchNorm_ReLU", dict(chains=True), [{}], False),
    ("level3/09_CausalSelfAttention", dict(gemm=True, chains=True), [{}], False),
    ("level2/08_Gemm_Sigmoid_Sum", dict(chains=True), [{}], False),
]


DEVICE = "cuda"
# The plan's short names for the graph rules.
RULE_OF = {"gemm": "triton_gemm", "conv": "triton_conv", "chains": "fuse_chains", "addmm": "addmm", "sdpa": "sdpa",
           "avgpool_conv": "avgpool_conv", "reduce": "triton_reduce", "cross_entropy": "triton_cross_entropy",
           "attention": "triton_attention", "scan": "triton_scan", "depthwise": "triton_depthwise",
           "conv_transpose": "triton_conv_transpose"}


def _bytes(*trees) -> int:
    """Bytes of every tensor in the trees: what one call must read and write at least."""
    total = 0
    for t in trees:
        for x in (t if isinstance(t, (list, tuple)) else [t]):
            if isinstance(x, torch.Tensor):
                total += x.numel() * x.element_size()
    return total


def _rel_err(got, want64) -> float:
    """Relative error norm against the float64 oracle (the project's contract metric)."""
    got = got if isinstance(got, tuple) else (got,)
    want64 = want64 if isinstance(want64, tuple) else (want64,)
    worst = 0.0
    for g, w in zip(got, want64):
        if not g.is_floating_point():
            worst = max(worst, float((g != w).float().mean()))
            continue
        worst = max(worst, float((g.double() - w).norm() / w.norm().clamp_min(1e-30)))
    return worst


def contract_violation(got: tuple, want: tuple, oracle) -> str | None:
    """The first output that breaks the accuracy contract (the judge's: against the float64 oracle, at
    most accuracy_factor x eager's error, above the dtype's floor), in words; None if none does."""
    from evo_kernels.config import VerifyConfig
    from evo_kernels.harness import contract
    v = VerifyConfig()
    oracle = oracle if isinstance(oracle, tuple) else (oracle,)
    for i, (g, w, o) in enumerate(zip(got, want, oracle)):
        why = contract.verdict(contract.compare(g, w, o, seed=0), contract.floor_for(w.dtype, v.floors),
                               v.accuracy_factor)
        if why:
            return f"output {i}: {why}"
    return None


def new_kernel_resources(module, seen: set) -> str:
    """Registers and spills a thread of each Triton kernel of `module` compiled since the last call
    (spilled registers go to local memory: an epilogue that spills pays for it on every tile)."""
    from evo_kernels.harness.wgmma_hazards import compiled_kernels
    fresh = [(name, kernel) for name, kernel in compiled_kernels(module) if id(kernel) not in seen]
    seen.update(id(kernel) for _, kernel in fresh)
    return "; ".join(f"{name} {kernel.n_regs} regs, {kernel.n_spills} spills" for name, kernel in fresh)


def bench(fn) -> float:
    if DEVICE == "cpu":  # a dry run of the script itself (Triton's interpreter): one call
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3
    from triton.testing import do_bench
    return float(do_bench(fn, warmup=25, rep=100))


def top_kernels(fn, n: int = 6) -> str:
    """Device time per call of the kernels one call of `fn` launches (torch.profiler), the largest first."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    rows = [(e.key, e.device_time_total / 1e3) for e in prof.key_averages() if e.device_time_total > 0]
    rows.sort(key=lambda r: -r[1])
    return "; ".join(f"{k[:48]} {ms:.3f}" for k, ms in rows[:n])


def main() -> None:
    global DEVICE
    ap = argparse.ArgumentParser()
    ap.add_argument("--time-budget", type=float, default=270)
    ap.add_argument("--compile", action="store_true", help="time torch.compile where the plan says so")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--out", default="probe_out")
    ap.add_argument("--device", default=DEVICE)
    ap.add_argument("--precision", default="as_run", choices=["as_run", "strict"])
    ap.add_argument("--problems", default=str(P), help="problem root (a dry run uses shrunken copies)")
    ap.add_argument("--once", action="store_true", help="each problem's first entry of the plan only")
    ap.add_argument("--sweep", action="store_true", help="the templates' sweeps across problems (SWEEP_PLAN) "
                                                         "in place of PLAN")
    ap.add_argument("--regs", action="store_true", help="registers and spills of each configuration's kernels")
    ap.add_argument("--kernels", action="store_true", help="per problem, the kernels of compile and of the "
                                                          "fastest configuration (torch.profiler)")
    args = ap.parse_args()
    DEVICE = args.device
    out_dir = Path(args.out)
    (out_dir / "cands").mkdir(parents=True, exist_ok=True)
    # The precision policy the baselines run under: as_run (PyTorch's defaults: cuDNN TF32 on, matmul
    # TF32 off), or strict (no TF32 anywhere).
    from evo_kernels.config import Config
    precision.apply(precision.run_flags(args.precision, Config().baseline_flags))
    print(f"precision policy: {args.precision}", flush=True)
    t_start = time.time()
    rows: list[dict] = []
    base: dict[str, dict] = {}
    bandwidth = 0.0
    if DEVICE == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
        src = torch.empty(1 << 28, device="cuda")
        dst = torch.empty_like(src)
        bandwidth = 2 * src.numel() * 4 / (bench(lambda: dst.copy_(src)) * 1e-3)  # bytes/s, read + write
        print(f"measured copy bandwidth {bandwidth / 1e12:.2f} TB/s", flush=True)
        del src, dst
    probed: set[str] = set()
    for name, opts, configs, with_compile in (SWEEP_PLAN if args.sweep else PLAN):
        if args.only and not any(o in name for o in args.only) or args.once and name in probed:
            continue
        probed.add(name)
        if time.time() - t_start > args.time_budget:
            print(f"time budget reached before {name}", flush=True)
            break
        prob = load_problem(Path(args.problems) / f"{name}.py")
        torch.manual_seed(0)
        ref = prob.make_model(prob.Model, 0, DEVICE)
        inputs = prob.make_inputs(1, DEVICE)
        with torch.no_grad():
            if name not in base:
                base[name] = {"eager": bench(lambda: ref(*inputs))}
                if with_compile and args.compile:
                    comp = torch.compile(ref)
                    comp(*inputs)
                    base[name]["compile"] = bench(lambda: comp(*inputs))
                    if args.kernels and DEVICE == "cuda":
                        print(f"  kernels of compile: {top_kernels(lambda: comp(*inputs))}", flush=True)
                print(f"{name}: " + ", ".join(f"{k} {v:.4f} ms" for k, v in base[name].items()), flush=True)
            expect = ref(*inputs)
            key = "+".join(k for k, v in opts.items() if v)
            oracle = None
            try:  # the float64 oracle of these inputs: eager's error and each configuration's
                ref64 = copy.deepcopy(ref).double()
                oracle = ref64(*[x.double() if x.is_floating_point() else x for x in inputs])
                base[name]["eager_err"] = _rel_err(expect, oracle)
                del ref64
            except Exception as e:  # noqa: BLE001 - no float64 oracle for this one
                print(f"  no float64 oracle: {type(e).__name__}", flush=True)
            if "bound" not in base[name]:
                if bandwidth:
                    bound = _bytes(inputs, expect, list(ref.parameters())) / bandwidth * 1e3
                    base[name]["bound"] = bound
                    print(f"  bound {bound:.4f} ms (bytes in + out / copy bandwidth); eager at "
                          f"{100 * bound / base[name]['eager']:.0f}%"
                          + (f", compile at {100 * bound / base[name]['compile']:.0f}%" if "compile" in base[name] else "")
                          + (f"; eager error vs float64 {base[name]['eager_err']:.2e}" if "eager_err" in base[name] else ""),
                          flush=True)
            try:
                built = fusion.build(prob, [RULE_OF[k] for k, v in opts.items() if v])
            except Exception as e:  # noqa: BLE001 - a probe reports and goes on
                print(f"  {key}: build failed: {type(e).__name__}: {e}", flush=True)
                continue
            if built is None:
                print(f"  {key}: no candidate", flush=True)
                continue
            path = out_dir / "cands" / f"{name.replace('/', '_')}_{key.replace('+', '-')}.py"
            path.write_text(built[0])
            module = import_file(path, "probe")
            cand = prob.make_model(module.ModelNew, 0, DEVICE)
            cand.load_state_dict(ref.state_dict(), strict=False)
            defaults = {k: getattr(module, k) for c in configs for k in c}
            seen: set = set()
            for cfg in configs:
                if time.time() - t_start > args.time_budget:
                    break
                for k, v in {**defaults, **cfg}.items():
                    setattr(module, k, v)
                row = {"problem": name, "options": key, "config": cfg, **base[name]}
                try:
                    got = cand(*inputs)
                    exp_t = expect if isinstance(expect, tuple) else (expect,)
                    got_t = got if isinstance(got, tuple) else (got,)
                    err = max(float((a - b).abs().max()) for a, b in zip(exp_t, got_t))
                    # The accuracy contract where there is a float64 oracle (no less accurate than eager
                    # as run); without one, a fixed tolerance to eager's output.
                    why = contract_violation(got_t, exp_t, oracle) if oracle is not None else None
                    ok = why is None if oracle is not None else \
                        all(torch.allclose(b, a, atol=1e-4, rtol=1e-4) for a, b in zip(exp_t, got_t))
                    ms = bench(lambda: cand(*inputs))
                    row.update(ms=ms, max_err=err, ok=ok, vs_eager=base[name]["eager"] / ms)
                    if oracle is not None:
                        row["oracle_err"] = _rel_err(got, oracle)
                    if "bound" in base[name]:
                        row["sol_share"] = base[name]["bound"] / ms
                    if "compile" in base[name]:
                        row["vs_best"] = min(base[name]["eager"], base[name]["compile"]) / ms
                    print(f"  {key} {cfg}: {ms:.4f} ms, x{row['vs_eager']:.3f} eager"
                          + (f", x{row['vs_best']:.3f} best" if "vs_best" in row else "")
                          + (f", {100 * row['sol_share']:.0f}% of bound" if "sol_share" in row else "")
                          + (f", error vs float64 {row['oracle_err']:.2e}" if "oracle_err" in row else "")
                          + f", max diff to eager {err:.2e} {'ok' if ok else 'WRONG'}"
                          + (f" ({why})" if why else ""), flush=True)
                    if args.regs and DEVICE == "cuda":
                        print(f"    {new_kernel_resources(module, seen)}", flush=True)
                except Exception as e:  # noqa: BLE001
                    row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                    print(f"  {key} {cfg}: error {row['error']}", flush=True)
                rows.append(row)
            if args.kernels and DEVICE == "cuda":
                mine = [r for r in rows if r["problem"] == name and r["options"] == key and "ms" in r]
                if mine:
                    best = min(mine, key=lambda r: r["ms"])
                    for k, v in {**defaults, **best["config"]}.items():
                        setattr(module, k, v)
                    print(f"  kernels of {key} {best['config']}: {top_kernels(lambda: cand(*inputs))}", flush=True)
        del ref, inputs, expect, oracle
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    (out_dir / "probe.json").write_text(json.dumps(rows, indent=1))
    print(f"done in {time.time() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
