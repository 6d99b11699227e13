"""Where a fusion candidate's time goes on the host: the time one call takes to issue (no
synchronisation; when it exceeds the GPU's time the candidate is host-bound and its kernels wait on
Python), the GPU's time (the sum of its kernels, torch.profiler), the wall time (do_bench, median),
and the host functions that take the issue time (cProfile); with --protocol, also the project's timing
protocol run in this process (timing.benchmark: a synchronize, the input refresh, the cache flush and
the lead-in before every call), its host issue time, device time and idle-device wall time, once as
it runs and once with the cyclic garbage collector kept off during the call, so a gap between the
bare issue time and the sandbox's can be told apart from the protocol's own conditions.

    python3 experiments/host_overhead.py [--only NAME ...] [--calls 50] [--protocol] [--out DIR]

The project's timing protocol counts a host-bound candidate's wall time (experiments/RESULTS.md,
"dispatch overhead"): this script says which of its launch lines cost it.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from experiments.drafts import load_draft, start  # noqa: E402
TF32_PW = {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 32, "CONV_STAGES": 4}
PLAN = [  # (problem, rules, configuration)
    ("level3/10_MobileNetV2_InvertedResidual", ["triton_gemm", "triton_conv", "fuse_chains", "triton_depthwise"],
     dict(TF32_PW, CONV_WARPS=8)),
    ("level2/19_DepthwiseConv_BatchNorm_ReLU6_PointwiseConv", ["triton_depthwise", "triton_conv", "fuse_chains"],
     dict(TF32_PW, CONV_WARPS=4, DW_ROWS=16)),
    ("level1/07_Conv2d_pointwise_1x1", ["triton_conv"], dict(TF32_PW, CONV_WARPS=8)),
    ("level2/11_Conv2d_BatchNorm_ReLU", ["triton_conv", "fuse_chains"], {"CONV_PRECISION": "tf32rn"}),
    ("level1/12_BatchNorm2d", ["fuse_chains"], {}),
    # The TMA conv kernels (Hopper): input and filters by tensor descriptors, against the pointer kernel
    ("level1/06_Conv2d_3x3", ["triton_conv"], dict(TF32_PW, CONV_WARPS=8)),
    ("level1/06_Conv2d_3x3", ["triton_conv"], dict(TF32_PW, CONV_WARPS=8, CONV_TMA=False)),
    ("level1/11_Conv3d", ["triton_conv3d"], dict(TF32_PW, CONV_WARPS=8)),
    ("level1/36_ConvTranspose2d_upsample", ["triton_conv_transpose"], {"CONVT_PRECISION": "tf32rn", "CONVT_TMA": True}),
    ("level1/36_ConvTranspose2d_upsample", ["triton_conv_transpose"], {"CONVT_PRECISION": "tf32rn", "CONVT_TMA": False}),
]


def issue_ms(fn, calls: int) -> float:
    """Host milliseconds per call to issue `calls` calls back to back (the GPU's queue absorbs them)."""
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    host = (time.perf_counter() - t) * 1e3 / calls
    torch.cuda.synchronize()
    return host


def gpu_ms(fn, calls: int) -> float:
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return sum(e.device_time_total for e in prof.key_averages() if e.device_time_total > 0) / 1e3 / calls


def protocol_ms(fn, problem, inputs, gc_in_call: bool) -> tuple[float, float, float]:
    """(host issue, device, wall) medians of the project's timing protocol run in this process."""
    from evo_kernels.config import TimingConfig
    from evo_kernels.harness import timing
    from evo_kernels.harness.backends import get_backend

    def refresh(i: int) -> None:
        for b, f in zip(inputs, problem.make_inputs(1000 + i, "cuda")):
            if isinstance(b, torch.Tensor):
                b.copy_(f)

    saved = timing._gc_enable
    if not gc_in_call:
        timing._gc_enable = lambda: None  # the collector stays off in the call as around it
    try:
        t = timing.benchmark(fn, refresh, get_backend("cuda"), TimingConfig(min_reps=100, min_time_ms=300.0))
    finally:
        timing._gc_enable = saved
    return t.host_median_ms, t.median_ms, t.wall_median_ms


def host_profile(fn, calls: int, top: int) -> str:
    prof = cProfile.Profile()
    torch.cuda.synchronize()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--protocol", action="store_true",
                    help="also the project's timing protocol in this process, with and without the collector in the call")
    ap.add_argument("--out", default="host_overhead_out")
    args = ap.parse_args()
    out_dir = start(args.out)
    from triton.testing import do_bench
    rows = []
    for name, rules, config in PLAN:
        if args.only and not any(o in name for o in args.only):
            continue
        tag = name.replace('/', '_') + "".join(f"_{k.lower()}_{v}" for k, v in config.items() if k.endswith("_TMA"))
        loaded = load_draft(name, rules, config, out_dir / f"{tag}.py", "host_overhead")
        if loaded is None:
            continue
        prob, _, cand, inputs = loaded
        with torch.no_grad():
            def call():
                return cand(*inputs)
            for _ in range(3):
                call()
            issue = issue_ms(call, args.calls)
            gpu = gpu_ms(call, 5)
            wall = float(do_bench(call, warmup=25, rep=100))
            (out_dir / f"{tag}.prof.txt").write_text(host_profile(call, args.calls, args.top))
            proto = [protocol_ms(call, prob, inputs, gc_in_call) for gc_in_call in (True, False)] if args.protocol else []
        rows.append((name, issue, gpu, wall, proto))
        print(f"{name}: issue {issue:.3f} ms, gpu {gpu:.3f} ms, wall {wall:.3f} ms"
              + "".join(f"; protocol (gc {'on' if on else 'off'}): host {h:.3f}, device {d:.3f}, wall {w:.3f} ms"
                        for on, (h, d, w) in zip((True, False), proto)), flush=True)
    # Host over GPU near 1 or above: the kernels wait on Python (the wall time then exceeds both).
    extra = (" protocol host / device / wall ms, gc on in the call | the same, gc off |" if args.protocol else "")
    print("\n| problem | host issue ms/call | GPU kernels ms/call | wall ms (do_bench) | host / GPU |" + extra)
    print("|---|---:|---:|---:|---:|" + ("---|---|" if args.protocol else ""))
    for name, issue, gpu, wall, proto in rows:
        print(f"| {name} | {issue:.3f} | {gpu:.3f} | {wall:.3f} | {issue / gpu:.2f} |"
              + "".join(f" {h:.3f} / {d:.3f} / {w:.3f} |" for h, d, w in proto))


if __name__ == "__main__":
    main()
