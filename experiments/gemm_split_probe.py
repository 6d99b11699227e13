"""Probe schedules of the split-precision (tf32x3) GEMM on a GPU: where do its products stop short of
three TF32 products' rate?

    python3 experiments/gemm_split_probe.py [--only NAME ...] [--quick]

Schedules, each timed with triton.testing.do_bench (L2 flushed, median) next to cuBLAS fp32 and its
error against float64 printed beside eager's:
- `inloop`: Triton's tf32x3 loop (`input_precision="tf32x3"`: both tiles split into TF32 halves inside
  the K loop, in registers, the halves stored back to shared memory for the tensor cores) from
  pointer tiles of the operands as they lie (B N-major; the GEMM template copies B K-major first);
- `inloop_tma`: the same products from TMA tiles;
- `split_b`: B split once (B_hi, B_lo as K-major rows: a pass over B), A split in registers; three
  `tf32` products a K step of TMA tiles;
- `split_ab`: both split once (a pass over each), every product's operands straight from TMA tiles;
- `*_persistent`: one program per multiprocessor walking the tiles.
The split passes are timed inside each schedule's call; the last column counts the kernel's wgmma
register hazards (harness/wgmma_hazards.py: a candidate with any is rejected). Shapes are the suite's
GEMM problems.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402

from evo_kernels.harness.wgmma_hazards import hazards  # noqa: E402
from evo_kernels.model.problem import import_file  # noqa: E402
from evo_kernels.proposers.templates.helpers import HELPERS  # noqa: E402

SHAPES = {  # name: (batch, M, N, K)
    "level1/01_square": (1, 4096, 4096, 4096),
    "level1/02_tall_skinny": (1, 262144, 512, 512),
    "level2/01_linear": (1, 16384, 4096, 1024),
    "level3/06_gru_h2h": (1, 4096, 6144, 2048),
    "level1/04_batched": (128, 512, 1024, 1024),
}


def _candidate_helpers():
    """The helpers every template candidate carries, imported as a module (their TF32 rounding here)."""
    path = Path(tempfile.mkdtemp(prefix="gemm_split_probe_")) / "probe_helpers.py"
    path.write_text("import torch\nimport triton\nimport triton.language as tl\n" + HELPERS)
    return import_file(path, "probe_helpers")


_rn = _candidate_helpers()._tf32_rn  # fp32 rounded to nearest at TF32's 10-bit mantissa


@triton.jit
def _split_pass(x_ptr, hi_ptr, lo_ptr, R, C, s_r, s_c, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # hi = x rounded to TF32, lo = x - hi, both contiguous (R, C).
    pid = tl.program_id(0)
    tiles_c = tl.cdiv(C, BLOCK_C)
    r = (pid // tiles_c) * BLOCK_R + tl.arange(0, BLOCK_R)
    c = (pid % tiles_c) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (r < R)[:, None] & (c < C)[None, :]
    x = tl.load(x_ptr + r.to(tl.int64)[:, None] * s_r + c.to(tl.int64)[None, :] * s_c, mask=mask, other=0.0)
    hi = _rn(x)
    lo = x - hi  # (NaN where x is infinite: every small product it meets is NaN, dropped by "mask")
    offs = r.to(tl.int64)[:, None] * C + c[None, :]
    tl.store(hi_ptr + offs, hi, mask=mask)
    tl.store(lo_ptr + offs, lo, mask=mask)


def split(x, kmajor_rows):
    """(hi, lo) of a 2-D x as contiguous (R, C) = x if kmajor_rows else x.T."""
    v = x if kmajor_rows else x.t()
    R, C = v.shape
    hi = torch.empty((R, C), device=x.device, dtype=torch.float32)
    lo = torch.empty_like(hi)
    _split_pass[(triton.cdiv(R, 64) * triton.cdiv(C, 64),)](v, hi, lo, R, C, v.stride(0), v.stride(1),
                                                            BLOCK_R=64, BLOCK_C=64, num_warps=4)
    return hi, lo


@triton.jit
def _tile(t, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * grid_n
    first = (t // width) * GROUP_M
    rows = tl.minimum(grid_m - first, GROUP_M)
    return first + (t % width) % rows, (t % width) // rows


@triton.jit
def _inloop(a_ptr, b_ptr, c_ptr, M, N, K, s_am, s_ak, s_bk, s_bn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
            BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    am = tl.where(rm < M, rm, 0)
    bn = tl.where(rn < N, rn, 0)
    a_ptrs = a_ptr + am[:, None] * s_am + rk[None, :] * s_ak
    b_ptrs = b_ptr + rk[:, None] * s_bk + bn[None, :] * s_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        acc = tl.dot(tl.load(a_ptrs), tl.load(b_ptrs), acc, input_precision="tf32x3")
        a_ptrs += BLOCK_K * s_ak
        b_ptrs += BLOCK_K * s_bk
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm < M)[:, None] & (rn < N)[None, :])


@triton.jit
def _halves(a_desc, alo_desc, bhi_desc, blo_desc, om, on, k, MODE: tl.constexpr):
    bh = bhi_desc.load([on, k]).T
    bl = blo_desc.load([on, k]).T
    if MODE == 1:
        a = a_desc.load([om, k])
        ah = _rn(a)
        al = a - ah
    else:
        ah = a_desc.load([om, k])
        al = alo_desc.load([om, k])
    return ah, al, bh, bl


@triton.jit
def _flushed_sum(a_desc, alo_desc, bhi_desc, blo_desc, om, on, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_K: tl.constexpr, MODE: tl.constexpr, FLUSH: tl.constexpr, MASK: tl.constexpr):
    # FLUSH K steps' products summed by the tensor cores, then added to the tile's sum in fp32; MASK: a
    # NaN of the small products (an infinite operand's lo is NaN) dropped before the big one is added.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K * FLUSH):
        part = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for j in tl.static_range(FLUSH):
            ah, al, bh, bl = _halves(a_desc, alo_desc, bhi_desc, blo_desc, om, on, k0 + j * BLOCK_K, MODE)
            part = tl.dot(al, bh, part, input_precision="tf32")
            part = tl.dot(ah, bl, part, input_precision="tf32")
            if MASK:
                part = tl.where(part == part, part, 0.0)
            part = tl.dot(ah, bh, part, input_precision="tf32")
        acc += part
    return acc


@triton.jit
def _tma(a_desc, alo_desc, bhi_desc, blo_desc, c_ptr, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
         BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, MODE: tl.constexpr, PERSISTENT: tl.constexpr,
         PROGRAMS: tl.constexpr, FLUSH: tl.constexpr, NAN_MASK: tl.constexpr):
    # MODE 0: a, b whole, tf32x3 in the loop; 1: B split before, A in registers; 2: both split before
    # (a_desc then holds A_hi). B's descriptors are (N, K) K-major rows.
    tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    start = tl.program_id(0)
    step = PROGRAMS if PERSISTENT else tiles
    for t in tl.range(start, tiles, step, flatten=PERSISTENT):
        pid_m, pid_n = _tile(t, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        om = pid_m * BLOCK_M
        on = pid_n * BLOCK_N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if MODE == 0:
            for k in range(0, K, BLOCK_K):
                acc = tl.dot(a_desc.load([om, k]), bhi_desc.load([on, k]).T, acc, input_precision="tf32x3")
        elif FLUSH == 0:  # every product accumulated by the tensor cores into the running sum
            for k in range(0, K, BLOCK_K):
                ah, al, bh, bl = _halves(a_desc, alo_desc, bhi_desc, blo_desc, om, on, k, MODE)
                acc = tl.dot(al, bh, acc, input_precision="tf32")
                acc = tl.dot(ah, bl, acc, input_precision="tf32")
                acc = tl.dot(ah, bh, acc, input_precision="tf32")
        elif FLUSH < 0:  # each step's products summed apart, added to the sum a step later
            prev = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k in range(0, K, BLOCK_K):
                ah, al, bh, bl = _halves(a_desc, alo_desc, bhi_desc, blo_desc, om, on, k, MODE)
                part = tl.dot(al, bh, input_precision="tf32")
                part = tl.dot(ah, bl, part, input_precision="tf32")
                part = tl.dot(ah, bh, part, input_precision="tf32")
                acc += prev
                prev = part
            acc += prev
        else:
            acc = _flushed_sum(a_desc, alo_desc, bhi_desc, blo_desc, om, on, K, BLOCK_M, BLOCK_N, BLOCK_K, MODE, FLUSH,
                               NAN_MASK == 1)
            if NAN_MASK == 2:  # "check": a tile with a NaN (an infinite operand) summed again with the drop
                if tl.max((acc != acc).to(tl.int32)) > 0:
                    acc = _flushed_sum(a_desc, alo_desc, bhi_desc, blo_desc, om, on, K, BLOCK_M, BLOCK_N, BLOCK_K,
                                       MODE, FLUSH, True)
        rm = om + tl.arange(0, BLOCK_M)
        rn = on + tl.arange(0, BLOCK_N)
        tl.store(c_ptr + rm.to(tl.int64)[:, None] * N + rn[None, :], acc, mask=(rm < M)[:, None] & (rn < N)[None, :])


def make(schedule, a, b, cfg):
    """A call computing a @ b (2-D) by `schedule` with tiles `cfg`."""
    M, K = a.shape
    N = b.shape[1]
    bm, bn, bk, warps, stages = cfg[:5]
    flush = cfg[5] if len(cfg) > 5 else 0
    nan_mask = {"mask": 1, "check": 2}.get(cfg[6], 0) if len(cfg) > 6 else 0
    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
    sms = torch.cuda.get_device_properties(a.device).multi_processor_count

    if schedule == "inloop":
        def call():
            c = torch.empty((M, N), device=a.device)
            call.kernel = _inloop[(tiles,)](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                                            BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, num_warps=warps,
                                            num_stages=stages)
            return c
        return call
    persistent = schedule.endswith("_persistent")
    mode = {"inloop_tma": 0, "split_b": 1, "split_ab": 2}[schedule.removesuffix("_persistent")]
    grid = (min(tiles, sms) if persistent else tiles,)

    def call():
        c = torch.empty((M, N), device=a.device)
        if mode == 0:
            bt = b.t().contiguous()
            descs = [TensorDescriptor.from_tensor(a, [bm, bk]), None, TensorDescriptor.from_tensor(bt, [bn, bk]), None]
        else:
            bh, bl = split(b, kmajor_rows=False)
            if mode == 1:
                ah, al = a, None
            else:
                ah, al = split(a, kmajor_rows=True)
            descs = [TensorDescriptor.from_tensor(ah, [bm, bk]),
                     TensorDescriptor.from_tensor(al, [bm, bk]) if al is not None else None,
                     TensorDescriptor.from_tensor(bh, [bn, bk]), TensorDescriptor.from_tensor(bl, [bn, bk])]
        call.kernel = _tma[grid](*descs, c, M, N, K, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, MODE=mode,
                                 PERSISTENT=persistent, PROGRAMS=grid[0], FLUSH=flush, NAN_MASK=nan_mask,
                                 num_warps=warps, num_stages=stages)
        return c
    return call


def special_values(schedule, cfg, a, b) -> str:
    """Whether a @ b with an infinite entry in each operand has NaN and inf where fp32 does."""
    a2, b2 = a.clone(), b.clone()
    a2[3, 5] = float("inf")
    b2[7, 11] = float("-inf")
    got, want = make(schedule, a2, b2, cfg)(), torch.matmul(a2, b2)
    same = torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want)) \
        and torch.equal(got[torch.isinf(want)], want[torch.isinf(want)])
    return "as fp32" if same else f"differ: {int((torch.isnan(got) & ~torch.isnan(want)).sum())} NaN more"


# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages[, FLUSH[, "mask" | "check"]]). FLUSH: K steps whose products the tensor
# cores sum apart before an fp32 add to the running sum (0: all into the running sum; -1: each step's
# added a step late); "mask": a NaN of the small products dropped before the big one (an infinite
# operand), as Triton's tf32x3 does; "check": no drop, then a tile whose sum has a NaN summed again with it.
# RESULTS.md "2026-12-03 (GEMM schedules)" ran these in five runs of earlier forms of this list.
CONFIGS = {
    "inloop": [(128, 128, 64, 8, 3)],
    "inloop_tma": [(128, 128, 64, 8, 3), (128, 128, 32, 8, 3)],
    "split_b": [(128, 128, 32, 8, 3, 0), (128, 128, 32, 8, 3, 1), (128, 128, 32, 8, 3, 1, "mask"),
                (128, 128, 32, 8, 3, 1, "check"),
                (128, 128, 32, 8, 2, 2), (128, 128, 32, 8, 3, -1), (64, 128, 32, 4, 2, 1), (128, 128, 64, 8, 2, 1),
                (128, 128, 16, 8, 4, 1), (256, 128, 32, 16, 3, 1)],
    "split_ab": [(128, 128, 32, 8, 3, 0), (128, 128, 32, 8, 3, 1), (128, 128, 32, 8, 3, 1, "mask"),
                 (128, 128, 32, 8, 3, 1, "check"),
                 (128, 128, 32, 8, 3, -1)],
    "split_b_persistent": [(128, 128, 32, 8, 3, 1), (128, 128, 32, 8, 3, 1, "mask")],
    "split_ab_persistent": [(128, 128, 32, 8, 3, 1)],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="shape names containing one of these")
    ap.add_argument("--schedules", nargs="*", default=list(CONFIGS))
    ap.add_argument("--quick", action="store_true", help="the first configuration of each schedule only")
    args = ap.parse_args()
    from triton.testing import do_bench
    torch.manual_seed(0)
    tf32_peak = 412.5  # TFLOP/s, the H200's measured dense TF32 rate (RESULTS, 2026-11-30 (evening))
    print("| shape | schedule | BM, BN, BK, warps, stages | ms | TFLOP/s | share of the tf32x3 roof | "
          "error vs float64 (eager) | wgmma hazards | infinite inputs |")
    print("|---|---|---|---:|---:|---:|---|---:|---|")
    for name, (batch, M, N, K) in SHAPES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        if batch != 1:
            continue  # (batched shapes: the template's batch axis; not in these kernels)
        a = torch.randn(M, K, device="cuda")
        b = torch.randn(K, N, device="cuda") / K ** 0.5
        want = (a.double() @ b.double())
        norm = want.norm()
        flops = 2.0 * M * N * K
        roof_ms = flops / (tf32_peak / 3 * 1e9)
        eager = torch.matmul(a, b)
        eager_err = float((eager.double() - want).norm() / norm)
        ms = do_bench(lambda: torch.matmul(a, b), warmup=25, rep=100)
        print(f"| {name} | cuBLAS fp32 | - | {ms:.4f} | {flops / ms / 1e9:.1f} | {roof_ms / ms:.0%} | "
              f"{eager_err:.2e} |", flush=True)
        del eager
        for schedule in args.schedules:
            for cfg in CONFIGS[schedule][:1 if args.quick else None]:
                try:
                    call = make(schedule, a, b, cfg)
                    got = call()
                    try:  # (Triton disassembles on the first ask for "sass"; .get would not ask)
                        n_haz = len(hazards(call.kernel.asm["sass"]))
                    except Exception:
                        n_haz = "-"
                    err = float((got.double() - want).norm() / norm)
                    del got
                    special = special_values(schedule, cfg, a, b) if len(cfg) > 6 or schedule.startswith("inloop") \
                        else "-"
                    ms = do_bench(call, warmup=25, rep=100)
                except Exception as e:  # a config that does not compile or fit: say so, go on
                    print(f"| {name} | {schedule} | {cfg} | failed: {type(e).__name__}: {str(e)[:120]} |", flush=True)
                    continue
                print(f"| {name} | {schedule} | {cfg} | {ms:.4f} | {flops / ms / 1e9:.1f} | {roof_ms / ms:.0%} | "
                      f"{err:.2e} ({eager_err:.2e}) | {n_haz} | {special} |", flush=True)
        del a, b, want
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
