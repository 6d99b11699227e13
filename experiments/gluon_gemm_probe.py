"""Probe a split-precision (tf32x3) fp32 GEMM written in Gluon on a GPU: can explicit wgmma, TMA and
mbarriers keep the tensor cores busy while each K step's products wait for their fp32 add?

    python3 experiments/gluon_gemm_probe.py [--only NAME ...] [--quick] [--schedules S ...]
                                            [--cfg SCHEDULE:BM,BN,BK,STAGES,A,UNROLL ...]

The question (RESULTS.md "2026-12-03 (GEMM schedules)"): tf32x3 must add each K step's three TF32
products (lo*B_hi, hi*B_lo, hi*B_hi, smallest first, into a fresh wgmma accumulator) to the running
sum with an fp32 add: one running wgmma sum loses accuracy in proportion to K (the tensor cores'
accumulation truncates). Waiting for a step's products before that add cost 83% -> 72% of the roof
(137.5 TFLOP/s: three TF32 products at 412.5 TFLOP/s) in Triton. Hypothesis: in Gluon the add can
wait while the tensor cores run the next step's products, bringing the accurate form near 83%.

B is split once (B_hi, B_lo: B^T rounded to TF32 and the rest, K-major rows of N, by `split` of
gemm_split_probe.py, timed inside each call). A configuration's "A" says where A's halves come from:
"b" = A tiles by TMA, split in registers each K step (hi rounded to nearest, lo = a - hi), wgmma's A
from registers (3.6 Gluon takes a tf32 A from registers: a DotOperandLayout of k_width 1); "ab" = A
split once by the same pass, both halves by TMA, every operand from shared memory. UNROLL: K steps an
iteration of the K loop. Schedules (TMA ring of STAGES stages, ready mbarriers; tiles BM x BN x BK):
- `wait_add` (UNROLL 1): the control, Triton's 72% form: a step's three wgmmas, wait, acc += step.
- `late_add`: no warp specialisation (a warpgroup a 64 rows); step j's wgmmas go (async) into step
  accumulator S[j%2] before the wait for step j-1's (warpgroup_mma_wait leaving the newest three in
  flight), then acc += S[(j-1)%2]; the freed stage is refilled by TMA right after the wait. The
  iteration's last step is waited for in full and added: 1/UNROLL of the adds stay exposed, because
  ptxas (3.6.0's, sm_90a) injects a full wait where a wgmma accumulator is read in the iteration
  after the one that wrote it (C7517), and an asm pin keeps LLVM from sinking the adds past the next
  issue (both seen compiling these kernels for sm_90a without a GPU).
- `ws`: warp-specialised (gl.warp_specialize): one producer warp issues the TMA loads into the ring
  (ready and empty mbarriers); two consumer warpgroups, the default partition and a 4-warp worker
  (240 registers a thread each), own the two 64-row slabs of a 128-row tile and share its B tiles
  (cooperative, not ping-pong: a slab is one partition's rows, simpler in 3.6's API than two tiles).
  Per step: the A slab, three wgmmas into the step accumulator, wait, arrive on the stage's empty
  barrier, acc += step; with UNROLL > 1 each consumer adds late as `late_add` does.
Register budgets: a running sum and step accumulator of 64 x BN fp32 take BN/2 + BN/2 registers a
thread (256 at BN=256: over the limit, so no BN=256); the late add holds two step accumulators and,
with "b", two steps' A halves: it spills at BN=128 (kept in the lists to show it), fits at BN=64.
Beside them: cuBLAS fp32 (TF32 off), Triton's tf32x3 (gemm_split_probe `inloop_tma`, the template's
65%) and gemm_split_probe's `split_b` adding each step in fp32 (72%). Columns: do_bench median (L2
flushed), share of the roof (2*M*N*K flops), error vs float64 (relative Frobenius norm) with eager
cuBLAS's beside it, the kernel's registers / spills (a ws kernel's launch count, 168); a schedule
whose error is more than twice Triton tf32x3's is marked INACCURATE; a configuration that fails to
compile or launch prints its error in its row. M, N, K must be multiples of BM, BN, BK * UNROLL.
Written for triton 3.6.0's Gluon API (triton.experimental.gluon).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from triton.experimental import gluon  # noqa: E402
from triton.experimental.gluon import language as gl  # noqa: E402
from triton.experimental.gluon.language.nvidia.hopper import (  # noqa: E402
    fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_wait)
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor  # noqa: E402

from experiments.gemm_split_probe import SHAPES, make, split  # noqa: E402

ROOF_TFLOPS = 412.5 / 3  # three TF32 products at the H200's measured TF32 rate
CONSUMER_REGS = 240  # registers a thread of the worker consumer warpgroup asks for (setmaxnreg)
WS_MAXNREG = 168  # launch limit: 12 warps (4 + 4 + 1 rounded to warpgroups) * 32 * 168 <= 65536


@gluon.jit
def _rn(x):
    # fp32 rounded to nearest (ties away) at TF32's 10-bit mantissa, inf and NaN kept (as _tf32_rn).
    bits = x.to(gl.uint32, bitcast=True)
    up = ((bits + 0x1000) & 0xFFFFE000).to(gl.float32, bitcast=True)
    return gl.where((bits & 0x7F800000) == 0x7F800000, x, up)


@gluon.jit
def _pin(x):
    # x through a side-effecting asm: LLVM then keeps the add that made x before the next wgmma's
    # issue (side effects stay in order) instead of sinking it past, with copies of the step sums.
    return gl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=gl.float32, is_pure=False, pack=1)


@gluon.jit
def _tile_offsets(t, M, N, BM: gl.constexpr, BN: gl.constexpr, GROUP_M: gl.constexpr):
    # Row and column offsets of tile t, GROUP_M row tiles walked together (L2 reuse of B).
    grid_m = M // BM
    grid_n = N // BN
    width = GROUP_M * grid_n
    first = (t // width) * GROUP_M
    rows = gl.minimum(grid_m - first, GROUP_M)
    return (first + (t % width) % rows) * BM, ((t % width) // rows) * BN


@gluon.jit
def _issue(j, pred, descs, bufs, ready, off_m, off_n, STAGES: gl.constexpr, A_SPLIT: gl.constexpr):
    # TMA loads of K step j into stage j % STAGES, signalled on that stage's ready barrier.
    a_desc, alo_desc, bhi_desc, blo_desc = descs
    a_bufs, alo_bufs, bhi_bufs, blo_bufs = bufs
    BK: gl.constexpr = a_desc.block_type.shape[1]
    a_bytes: gl.constexpr = a_desc.block_type.nbytes
    b_bytes: gl.constexpr = bhi_desc.block_type.nbytes
    s = j % STAGES
    bar = ready.index(s)
    k = j * BK
    if A_SPLIT:
        mbarrier.expect(bar, 2 * a_bytes + 2 * b_bytes, pred=pred)
        tma.async_copy_global_to_shared(alo_desc, [off_m, k], bar, alo_bufs.index(s), pred=pred)
    else:
        mbarrier.expect(bar, a_bytes + 2 * b_bytes, pred=pred)
    tma.async_copy_global_to_shared(a_desc, [off_m, k], bar, a_bufs.index(s), pred=pred)
    tma.async_copy_global_to_shared(bhi_desc, [off_n, k], bar, bhi_bufs.index(s), pred=pred)
    tma.async_copy_global_to_shared(blo_desc, [off_n, k], bar, blo_bufs.index(s), pred=pred)


@gluon.jit
def _operands(j, bufs, ready, row0, ROWS: gl.constexpr, STAGES: gl.constexpr, A_SPLIT: gl.constexpr,
              a_layout: gl.constexpr):
    # Wait for step j's tiles; (A_hi, A_lo, B_hi^T, B_lo^T) of this warpgroup's ROWS rows.
    a_bufs, alo_bufs, bhi_bufs, blo_bufs = bufs
    s = j % STAGES
    mbarrier.wait(ready.index(s), (j // STAGES) & 1)
    bh = bhi_bufs.index(s).permute((1, 0))  # (BK, BN) view of K-major rows: what tf32 wgmma needs
    bl = blo_bufs.index(s).permute((1, 0))
    if A_SPLIT:
        ah = a_bufs.index(s).slice(row0, ROWS)
        al = alo_bufs.index(s).slice(row0, ROWS)
    else:
        a = a_bufs.index(s).slice(row0, ROWS).load(a_layout)
        ah = _rn(a)
        al = a - ah
    return ah, al, bh, bl


@gluon.jit
def _release(j, num_k, descs, bufs, ready, empty, off_m, off_n, STAGES: gl.constexpr,
             A_SPLIT: gl.constexpr, WS: gl.constexpr):
    # Step j's operands are read (its wgmmas are done): hand its stage back (j < 0: nothing).
    if not A_SPLIT:
        fence_async_shared()  # our generic loads of A before the async proxy's TMA rewrites them
    if WS:
        mbarrier.arrive(empty.index((j + STAGES) % STAGES), pred=j >= 0)
    else:
        _issue(j + STAGES, (j >= 0) & (j + STAGES < num_k), descs, bufs, ready, off_m, off_n, STAGES, A_SPLIT)


@gluon.jit
def _mainloop(descs, bufs, ready, empty, off_m, off_n, row0, num_k, ROWS: gl.constexpr, BN: gl.constexpr,
              BK: gl.constexpr, STAGES: gl.constexpr, A_SPLIT: gl.constexpr, UNROLL: gl.constexpr,
              WS: gl.constexpr, WARPS: gl.constexpr):
    # The fp32 sum of ROWS x BN over K: each step's products in a fresh wgmma accumulator
    # (use_acc=False on the first), added to the sum in fp32.
    acc_l: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[WARPS, 1],
                                                    instr_shape=[16, BN, 8])
    a_l: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=acc_l, k_width=1)
    acc = gl.zeros([ROWS, BN], gl.float32, acc_l)
    s0 = gl.zeros([ROWS, BN], gl.float32, acc_l)  # even steps' sums
    s1 = gl.zeros([ROWS, BN], gl.float32, acc_l)  # odd steps'
    for i in range(0, num_k, UNROLL):
        # UNROLL steps an iteration: step j's wgmmas are issued before the wait for step j-1's (which
        # leaves the newest three in flight) and step j-1's add. The iteration's last step is waited
        # for in full: ptxas injects a full wait where an accumulator is read in the iteration after
        # the one whose wgmmas wrote it (C7517), so none is carried over the back edge.
        for j in gl.static_range(UNROLL):
            # (precision: the CUDA default, "tf32"; a string passed in a Gluon function arrives as a
            # constexpr, which 3.6's warpgroup_mma does not unwrap)
            if j % 2 == 0:
                ah0, al0, bh, bl = _operands(i + j, bufs, ready, row0, ROWS, STAGES, A_SPLIT, a_l)
                s0 = warpgroup_mma(al0, bh, s0, use_acc=False, is_async=True)
                s0 = warpgroup_mma(ah0, bl, s0, is_async=True)
                s0 = warpgroup_mma(ah0, bh, s0, is_async=True)
                if j > 0:
                    if A_SPLIT:
                        s1 = warpgroup_mma_wait(3, deps=(s1, ))
                    else:  # (step j-1's A halves kept alive until its wgmmas are done)
                        s1, ah1, al1 = warpgroup_mma_wait(3, deps=(s1, ah1, al1))
                    _release(i + j - 1, num_k, descs, bufs, ready, empty, off_m, off_n, STAGES, A_SPLIT, WS)
                    acc = _pin(acc + s1)
            else:
                ah1, al1, bh, bl = _operands(i + j, bufs, ready, row0, ROWS, STAGES, A_SPLIT, a_l)
                s1 = warpgroup_mma(al1, bh, s1, use_acc=False, is_async=True)
                s1 = warpgroup_mma(ah1, bl, s1, is_async=True)
                s1 = warpgroup_mma(ah1, bh, s1, is_async=True)
                if A_SPLIT:
                    s0 = warpgroup_mma_wait(3, deps=(s0, ))
                else:
                    s0, ah0, al0 = warpgroup_mma_wait(3, deps=(s0, ah0, al0))
                _release(i + j - 1, num_k, descs, bufs, ready, empty, off_m, off_n, STAGES, A_SPLIT, WS)
                acc = _pin(acc + s0)
        if (UNROLL - 1) % 2 == 0:
            if A_SPLIT:
                s0 = warpgroup_mma_wait(0, deps=(s0, ))
            else:
                s0, ah0, al0 = warpgroup_mma_wait(0, deps=(s0, ah0, al0))
            _release(i + UNROLL - 1, num_k, descs, bufs, ready, empty, off_m, off_n, STAGES, A_SPLIT, WS)
            acc += s0
        else:
            if A_SPLIT:
                s1 = warpgroup_mma_wait(0, deps=(s1, ))
            else:
                s1, ah1, al1 = warpgroup_mma_wait(0, deps=(s1, ah1, al1))
            _release(i + UNROLL - 1, num_k, descs, bufs, ready, empty, off_m, off_n, STAGES, A_SPLIT, WS)
            acc += s1
    return acc


@gluon.jit
def _store(c_ptr, acc, off_m, N, off_n):
    # The tile straight from the wgmma layout (each thread's pairs of columns: whole 32-byte sectors).
    layout: gl.constexpr = acc.type.layout
    ROWS: gl.constexpr = acc.type.shape[0]
    BN: gl.constexpr = acc.type.shape[1]
    rm = off_m + gl.arange(0, ROWS, layout=gl.SliceLayout(1, layout))
    rn = off_n + gl.arange(0, BN, layout=gl.SliceLayout(0, layout))
    gl.store(c_ptr + gl.expand_dims(rm.to(gl.int64) * N, 1) + gl.expand_dims(rn, 0), acc)


@gluon.jit
def _alloc(a_desc, alo_desc, bhi_desc, blo_desc, STAGES: gl.constexpr, A_SPLIT: gl.constexpr):
    # The ring's buffers (alo_bufs is a_bufs where A is split in registers: never read then).
    a_bufs = gl.allocate_shared_memory(gl.float32, [STAGES] + a_desc.block_type.shape, a_desc.layout)
    if A_SPLIT:
        alo_bufs = gl.allocate_shared_memory(gl.float32, [STAGES] + alo_desc.block_type.shape, alo_desc.layout)
    else:
        alo_bufs = a_bufs
    bhi_bufs = gl.allocate_shared_memory(gl.float32, [STAGES] + bhi_desc.block_type.shape, bhi_desc.layout)
    blo_bufs = gl.allocate_shared_memory(gl.float32, [STAGES] + blo_desc.block_type.shape, blo_desc.layout)
    return a_bufs, alo_bufs, bhi_bufs, blo_bufs


@gluon.jit
def _single_kernel(a_desc, alo_desc, bhi_desc, blo_desc, c_ptr, M, N, K, STAGES: gl.constexpr,
                   A_SPLIT: gl.constexpr, UNROLL: gl.constexpr, GROUP_M: gl.constexpr, num_warps: gl.constexpr):
    # `wait_add` (UNROLL=1) and `late_add`: every warp computes (a warpgroup a 64 rows), TMA issued in
    # the loop as stages are freed.
    BM: gl.constexpr = a_desc.block_type.shape[0]
    BK: gl.constexpr = a_desc.block_type.shape[1]
    BN: gl.constexpr = bhi_desc.block_type.shape[0]
    descs = (a_desc, alo_desc, bhi_desc, blo_desc)
    bufs = _alloc(a_desc, alo_desc, bhi_desc, blo_desc, STAGES, A_SPLIT)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)
    off_m, off_n = _tile_offsets(gl.program_id(0), M, N, BM, BN, GROUP_M)
    num_k = K // BK
    for j in gl.static_range(STAGES):  # fill the ring
        _issue(j, j < num_k, descs, bufs, ready, off_m, off_n, STAGES, A_SPLIT)
    acc = _mainloop(descs, bufs, ready, ready, off_m, off_n, 0, num_k, BM, BN, BK, STAGES, A_SPLIT, UNROLL, False,
                    num_warps)
    _store(c_ptr, acc, off_m, N, off_n)


@gluon.jit
def _ws_consumer(SLAB: gl.constexpr, descs, bufs, ready, empty, c_ptr, N, off_m, off_n, num_k,
                 STAGES: gl.constexpr, A_SPLIT: gl.constexpr, UNROLL: gl.constexpr):
    a_desc, alo_desc, bhi_desc, blo_desc = descs
    BK: gl.constexpr = a_desc.block_type.shape[1]
    BN: gl.constexpr = bhi_desc.block_type.shape[0]
    acc = _mainloop(descs, bufs, ready, empty, off_m, off_n, SLAB * 64, num_k, 64, BN, BK, STAGES, A_SPLIT, UNROLL,
                    True, 4)
    _store(c_ptr, acc, off_m + SLAB * 64, N, off_n)


@gluon.jit
def _ws_producer(descs, bufs, ready, empty, off_m, off_n, num_k, STAGES: gl.constexpr, A_SPLIT: gl.constexpr):
    for j in range(num_k):
        # Wait for both consumers to free the stage (a fresh barrier passes the parity-1 wait).
        mbarrier.wait(empty.index(j % STAGES), ((j // STAGES) & 1) ^ 1)
        _issue(j, True, descs, bufs, ready, off_m, off_n, STAGES, A_SPLIT)


@gluon.jit
def _ws_kernel(a_desc, alo_desc, bhi_desc, blo_desc, c_ptr, M, N, K, STAGES: gl.constexpr, A_SPLIT: gl.constexpr,
               UNROLL: gl.constexpr, GROUP_M: gl.constexpr, CONSUMER_REGS: gl.constexpr, num_warps: gl.constexpr):
    # Default partition (num_warps = 4): consumer of rows 0-63; workers: consumer of rows 64-127
    # (4 warps), producer (1 warp).
    gl.static_assert(num_warps == 4, "ws: the default partition is one consumer warpgroup")
    gl.static_assert(a_desc.block_type.shape[0] == 128, "ws: two 64-row slabs")
    BM: gl.constexpr = a_desc.block_type.shape[0]
    BK: gl.constexpr = a_desc.block_type.shape[1]
    BN: gl.constexpr = bhi_desc.block_type.shape[0]
    descs = (a_desc, alo_desc, bhi_desc, blo_desc)
    bufs = _alloc(a_desc, alo_desc, bhi_desc, blo_desc, STAGES, A_SPLIT)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for j in gl.static_range(STAGES):
        mbarrier.init(ready.index(j), count=1)  # the producer's expect; the bytes by TMA
        mbarrier.init(empty.index(j), count=2)  # one arrive from each consumer
    off_m, off_n = _tile_offsets(gl.program_id(0), M, N, BM, BN, GROUP_M)
    num_k = K // BK
    gl.warp_specialize([
        (_ws_consumer, (0, descs, bufs, ready, empty, c_ptr, N, off_m, off_n, num_k, STAGES, A_SPLIT, UNROLL)),
        (_ws_consumer, (1, descs, bufs, ready, empty, c_ptr, N, off_m, off_n, num_k, STAGES, A_SPLIT, UNROLL)),
        (_ws_producer, (descs, bufs, ready, empty, off_m, off_n, num_k, STAGES, A_SPLIT)),
    ], [4, 1], [CONSUMER_REGS, 24])


def _nvmma(block):
    return gl.NVMMASharedLayout.get_default_for(block, gl.float32)


def kernel_and_params(schedule, cfg):
    """(Gluon kernel, its constexprs and launch options) for cfg = (BM, BN, BK, STAGES, A, UNROLL)."""
    bm, bn, bk, stages, a_mode, unroll = cfg
    assert a_mode in ("b", "ab"), f"A must be 'b' (split in registers) or 'ab' (split once), not {a_mode!r}"
    assert (unroll == 1) == (schedule == "wait_add") or schedule == "ws", f"{schedule}: UNROLL = {unroll}?"
    params = dict(STAGES=stages, A_SPLIT=a_mode == "ab", UNROLL=unroll, GROUP_M=8)
    if schedule == "ws":
        assert bm == 128, "ws: BM is two consumers' 64-row slabs"
        return _ws_kernel, dict(params, CONSUMER_REGS=CONSUMER_REGS), dict(num_warps=4, maxnreg=WS_MAXNREG)
    return _single_kernel, params, dict(num_warps=bm // 16)  # a warpgroup a 64 rows


def gluon_gemm(schedule, a, b, cfg):
    """A call computing a @ b (2-D fp32) by Gluon `schedule` with cfg = (BM, BN, BK, STAGES, A, UNROLL)."""
    bm, bn, bk = cfg[:3]
    kernel, params, options = kernel_and_params(schedule, cfg)
    M, K = a.shape
    N = b.shape[1]
    step = bk * params["UNROLL"]
    assert M % bm == 0 and N % bn == 0 and K % step == 0, \
        f"{schedule}: M, N, K = {M}, {N}, {K} must be multiples of BM, BN, BK * UNROLL = {bm}, {bn}, {step}"
    tiles = (M // bm) * (N // bn)

    def call():
        bh, bl = split(b, kmajor_rows=False)  # (N, K) K-major halves of B
        ah, al = split(a, kmajor_rows=True) if params["A_SPLIT"] else (a, a)
        la, lb = _nvmma([bm, bk]), _nvmma([bn, bk])
        descs = (TensorDescriptor.from_tensor(ah, [bm, bk], la), TensorDescriptor.from_tensor(al, [bm, bk], la),
                 TensorDescriptor.from_tensor(bh, [bn, bk], lb), TensorDescriptor.from_tensor(bl, [bn, bk], lb))
        c = torch.empty((M, N), device=a.device, dtype=torch.float32)
        call.kernel = kernel[(tiles,)](*descs, c, M, N, K, **params, **options)
        return c
    return call


# (BM, BN, BK, STAGES, A, UNROLL). A: "b" = A split in registers, "ab" = A split once. UNROLL: K steps
# an iteration of the K loop, all but the last added while the next step's products run (1: each
# waited for, then added). Shared memory a stage: (2 if "ab" else 1) * BM*BK*4 + 2 * BN*BK*4 bytes
# (48 KiB at 128, 128, 32, "b"; 64 KiB with "ab"), 227 KiB at most.
CONFIGS = {
    "wait_add": [(128, 128, 32, 4, "b", 1), (128, 128, 32, 3, "ab", 1)],
    "late_add": [(128, 128, 32, 3, "ab", 2), (128, 128, 32, 3, "ab", 4), (128, 128, 32, 3, "ab", 8),
                 (128, 64, 32, 4, "b", 4), (128, 128, 32, 4, "b", 2)],
    "ws": [(128, 128, 32, 4, "b", 1), (128, 128, 32, 3, "b", 1), (128, 128, 32, 3, "ab", 1),
           (128, 128, 32, 3, "ab", 2), (128, 128, 32, 3, "ab", 4)],
}
TRITON_REF = ("inloop_tma", (128, 128, 64, 8, 3))  # gemm_split_probe's Triton tf32x3: the error bar
TRITON_SPLIT = ("split_b", (128, 128, 32, 8, 3, 1))  # B split once, each step added in fp32 (72%)


def _parse_cfg(text):
    schedule, _, rest = text.partition(":")
    fields = rest.split(",")
    cfg = tuple(int(f) for f in fields[:4]) + (fields[4],) + tuple(int(f) for f in fields[5:])
    return schedule, cfg


def _rel_err(got, want, norm):
    return float((got.double() - want).norm() / norm)


def _run_shape(name, M, N, K, configs):
    """Rows of the table for one shape: the baselines, then each Gluon schedule's configurations."""
    from triton.testing import do_bench
    a = torch.randn(M, K, device="cuda")
    b = torch.randn(K, N, device="cuda") / K ** 0.5
    want = a.double() @ b.double()
    norm = want.norm()
    flops = 2.0 * M * N * K
    eager_err = _rel_err(torch.matmul(a, b), want, norm)
    ref_err = None

    def row(label, cfg, call):
        nonlocal ref_err
        try:
            err = _rel_err(call(), want, norm)
            ms = do_bench(call, warmup=25, rep=100)
            k = getattr(call, "kernel", None)
            regs = f"{k.n_regs} / {k.n_spills}" if hasattr(k, "n_regs") else "-"
        except Exception as e:  # a config that does not compile, fit or launch: say so, go on
            msg = " ".join(f"{type(e).__name__}: {e}".split())[:300].replace("|", "/")
            print(f"| {name} | {label} | {cfg} | failed | | | | | {msg} |", flush=True)
            return
        if ref_err is None and label.startswith("Triton tf32x3"):
            ref_err = err
        note = "INACCURATE" if ref_err is not None and err > 2 * ref_err else ""
        print(f"| {name} | {label} | {cfg} | {ms:.4f} | {flops / ms / 1e9:.1f} | "
              f"{flops / ms / 1e9 / ROOF_TFLOPS:.0%} | {err:.2e} ({eager_err:.2e}) | {regs} | {note} |", flush=True)

    row("cuBLAS fp32", "-", lambda: torch.matmul(a, b))
    row(f"Triton tf32x3 ({TRITON_REF[0]})", TRITON_REF[1], make(TRITON_REF[0], a, b, TRITON_REF[1]))
    row(f"Triton {TRITON_SPLIT[0]}, steps added", TRITON_SPLIT[1], make(TRITON_SPLIT[0], a, b, TRITON_SPLIT[1]))
    for schedule, cfgs in configs.items():
        for cfg in cfgs:
            try:
                call = gluon_gemm(schedule, a, b, cfg)
            except (AssertionError, ValueError) as e:  # tiles that do not divide the shape, a bad cfg
                print(f"| {name} | gluon {schedule} | {cfg} | failed | | | | | {e} |", flush=True)
                continue
            row(f"gluon {schedule}", cfg, call)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="shape names containing one of these")
    ap.add_argument("--quick", action="store_true", help="the first shape only")
    ap.add_argument("--schedules", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--cfg", action="append", default=[], metavar="SCHEDULE:BM,BN,BK,STAGES,A,UNROLL",
                    help="replace a schedule's configurations (repeatable), e.g. ws:128,128,32,3,ab,4")
    args = ap.parse_args()
    configs = {s: list(CONFIGS[s]) for s in args.schedules}
    given = {}
    for text in args.cfg:
        schedule, cfg = _parse_cfg(text)
        assert schedule in CONFIGS, f"--cfg: unknown schedule {schedule!r}"
        given.setdefault(schedule, []).append(cfg)
    configs.update(given)

    torch.backends.cuda.matmul.allow_tf32 = False  # cuBLAS fp32 proper
    torch.manual_seed(0)
    shapes = [(n, s) for n, s in SHAPES.items() if s[0] == 1]  # (batched shapes: not in these kernels)
    if args.only:
        shapes = [(n, s) for n, s in shapes if any(o in n for o in args.only)]
    if args.quick:
        shapes = shapes[:1]
    print("| shape | schedule | config | ms | TFLOP/s | share of the roof | error vs float64 (eager) | "
          "regs / spills | note |")
    print("|---|---|---|---:|---:|---:|---|---|---|")
    for name, (_, M, N, K) in shapes:
        _run_shape(name, M, N, K, configs)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
