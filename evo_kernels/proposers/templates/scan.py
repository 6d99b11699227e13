"""Cumulative sum (torch.cumsum) over any dim of an fp32 tensor, x read once and the result written
once: the bound. The input is viewed as [A, L, B] (L: the scanned dim, B: the dims after it,
contiguous). A program holds BLOCK_N independent scans: rows of [A, L] when B is 1 (several rows
per program when rows are short), else BLOCK_N columns of B for one a (loads coalesced along B).
It walks L a tile at a time, each tile scanned in registers, the running sum carried to the next.

Sums are compensated, so that the error does not grow with the row (a plain fp32 scan drifts with
its length; PyTorch's CPU cumsum accumulates in double). The running sum carried from tile to tile is
a (hi, lo) pair of fp32 whose sum TwoSum keeps exactly; within a tile the prefix sums are plain fp32
(a tile's partial sums are small beside the carry), each output the carry plus its prefix, rounded
once. SCAN_PAIRED 1 makes every partial sum a pair (within about an ulp of the exact prefix sum, at
several times the arithmetic: the scan then runs below the bandwidth).

When the scans are too few to fill the device (a few long rows), L is split into chunks: a first
pass stores each chunk's total, the second scans each chunk from the sum of the totals before it.
That reads x twice, still better than a handful of programs walking long rows alone.
Matched: `torch.cumsum(x, dim)` and `x.cumsum(dim)` on fp32 x, dtype None or float32, no `out`.

SCAN_TILE: elements per tile (BLOCK_L x BLOCK_N); SCAN_BLOCK_B: columns per tile when B > 1;
SCAN_WARPS (fewer for small tiles); SCAN_WAVES: programs per SM aimed at before L is split;
SCAN_PAIRED: every partial sum compensated (1), or the carry between tiles only (0).
"""
from __future__ import annotations

from string import Template
from typing import Any

import torch
from torch import fx, nn

from .base import AnchorTemplate, Emitted
from .ir import Group, arg, shape_of

SCAN = Template('''
@triton.jit
def ${name}_add(a_hi, a_lo, b_hi, b_lo):
    # Compensated add of (hi, lo) pairs: TwoSum keeps the rounding error of hi + hi in lo, then the
    # pair is renormalised (|lo| <= ulp(hi) / 2). An inf or NaN sum passes through as (s, 0).
    s = a_hi + b_hi
    v = s - a_hi
    e = (a_hi - (s - v)) + (b_hi - v)
    lo = a_lo + b_lo + e
    hi = s + lo
    lo = lo - (hi - s)
    finite = (s - s) == 0.0
    return tl.where(finite, hi, s), tl.where(finite, lo, 0.0)


@triton.jit
def ${name}_scan(x_ptr, y_ptr, th_ptr, tl_ptr, N, L, B, NBT, CH, SPLIT, ROWS: tl.constexpr, CARRY: tl.constexpr,
                 SCAN: tl.constexpr, PAIRED: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr):
    # Program (p, s): BLOCK_N scans over positions [s * CH, s * CH + CH) of L, held as tiles of
    # BLOCK_L x BLOCK_N (axis 0 along L). ROWS: scan n is row p * BLOCK_N + n of [N, L]; else column
    # b = (p % NBT) * BLOCK_N + n of [A, L, B] for a = p // NBT. SCAN: the prefix sums are stored;
    # else (the first pass of a split) the chunk's total. CARRY: the scans start from the totals of
    # the chunks before s (stored by the first pass). PAIRED: every partial sum a compensated pair;
    # else only the carry between tiles.
    p = tl.program_id(0)
    s = tl.program_id(1)
    nn = tl.arange(0, BLOCK_N)
    if ROWS:
        lane = p.to(tl.int64) * BLOCK_N + nn
        nmask = lane < N
        start = lane * L
    else:
        a = (p // NBT).to(tl.int64)
        b = (p % NBT) * BLOCK_N + nn
        nmask = b < B
        lane = a * B + b
        start = a * L * B + b
    lo = s * CH
    hi = tl.minimum(lo + CH, L)
    c_hi = tl.zeros((BLOCK_N,), tl.float32)
    c_lo = tl.zeros((BLOCK_N,), tl.float32)
    if CARRY:
        for j in range(0, s):  # in chunk order: the same sum whatever the grid's schedule
            t = lane * SPLIT + j
            c_hi, c_lo = ${name}_add(c_hi, c_lo, tl.load(th_ptr + t, mask=nmask, other=0.0),
                                     tl.load(tl_ptr + t, mask=nmask, other=0.0))
    ll = tl.arange(0, BLOCK_L)
    first = (ll == 0)[:, None]
    last = (ll == BLOCK_L - 1)[:, None]
    acc_hi = tl.zeros((BLOCK_L, BLOCK_N), tl.float32)
    acc_lo = tl.zeros((BLOCK_L, BLOCK_N), tl.float32)
    for l0 in range(lo, hi, BLOCK_L):
        rr = l0 + ll
        m = (rr < hi)[:, None] & nmask[None, :]
        if ROWS:
            offs = start[None, :] + rr[:, None]
        else:
            offs = start[None, :] + rr.to(tl.int64)[:, None] * B
        x = tl.load(x_ptr + offs, mask=m, other=0.0)
        zero = tl.zeros_like(x)
        if SCAN and PAIRED:
            # The carry enters at the tile's first position; masked positions add 0, so the last
            # position holds the carry for the next tile.
            h, e = ${name}_add(x, zero, tl.where(first, c_hi[None, :], zero), tl.where(first, c_lo[None, :], zero))
            h, e = tl.associative_scan((h, e), 0, ${name}_add)
            tl.store(y_ptr + offs, h, mask=m)  # (hi is hi + lo rounded: the pair is normalised)
            c_hi = tl.sum(tl.where(last, h, zero), axis=0)
            c_lo = tl.sum(tl.where(last, e, zero), axis=0)
        elif SCAN:
            # The tile scanned in plain fp32: its partial sums are a tile's, small beside the carry,
            # whose pair holds the error that would otherwise grow with the row. Each output is the
            # carry plus its tile's prefix, rounded once.
            part = tl.cumsum(x, axis=0)
            tl.store(y_ptr + offs, c_hi[None, :] + (part + c_lo[None, :]), mask=m)
            c_hi, c_lo = ${name}_add(c_hi, c_lo, tl.sum(x, axis=0), tl.zeros_like(c_lo))
        else:
            acc_hi, acc_lo = ${name}_add(acc_hi, acc_lo, x, zero)
    if not SCAN:
        t_hi, t_lo = tl.reduce((acc_hi, acc_lo), 0, ${name}_add)
        t = lane * SPLIT + s
        tl.store(th_ptr + t, t_hi, mask=nmask)
        tl.store(tl_ptr + t, t_lo, mask=nmask)
''')

LAUNCH = Template('''
def ${name}_run(x, dim):
    # The inclusive prefix sum of contiguous fp32 x along dim (>= 0), as a new tensor.
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    a, l, b = x.shape[:dim].numel(), x.shape[dim], x.shape[dim + 1:].numel()
    if b == 1:  # rows: a tile is BLOCK_L of a row by BLOCK_N rows (several when rows are short)
        block_l = min(SCAN_TILE, _pow2(l))
        block_n = min(SCAN_TILE // block_l, _pow2(a))
        nbt, programs = 1, _cdiv(a, block_n)
    else:  # columns: BLOCK_N contiguous columns of B by BLOCK_L positions of L
        block_n = min(SCAN_BLOCK_B, _pow2(b))
        block_l = min(max(1, SCAN_TILE // block_n), _pow2(l))
        nbt = _cdiv(b, block_n)
        programs = a * nbt
    warps = max(1, min(SCAN_WARPS, block_l * block_n // 128))  # >= 4 elements per thread
    # Split L when fewer than SCAN_WAVES programs per SM would run; at most 256 chunks.
    split, ch = _split_length(x, programs, l, block_l, SCAN_WAVES, 256)
    if split == 1:
        _launch(${name}_scan, (programs, 1),
                x, out, x, x, a, l, b, nbt, ch, 1, ROWS=b == 1, CARRY=False, SCAN=True, PAIRED=bool(SCAN_PAIRED),
                BLOCK_L=block_l, BLOCK_N=block_n, num_warps=warps)
        return out
    t_hi = torch.empty((a * b, split), device=x.device, dtype=torch.float32)
    t_lo = torch.empty((a * b, split), device=x.device, dtype=torch.float32)
    for carry in (False, True):
        _launch(${name}_scan, (programs, split),
                x, out, t_hi, t_lo, a, l, b, nbt, ch, split, ROWS=b == 1, CARRY=carry, SCAN=carry,
                PAIRED=bool(SCAN_PAIRED), BLOCK_L=block_l, BLOCK_N=block_n, num_warps=warps)
    return out
''')


def scan_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """The input and the (non-negative) dim of a cumsum this template computes as PyTorch does:
    fp32 in and out, no `out=`; None for anything else."""
    if not ((node.op == "call_function" and node.target is torch.cumsum)
            or (node.op == "call_method" and node.target == "cumsum")):
        return None
    if len(node.args) > 2 or set(node.kwargs) - {"input", "dim", "dtype"}:
        return None  # out= (or an argument this template does not know)
    x = node.args[0] if node.args else node.kwargs.get("input")
    dim, dtype = arg(node, 1, "dim"), node.kwargs.get("dtype")
    xs = shape_of(x)
    if (xs is None or not xs or shape_of(node) != xs or dtype not in (None, torch.float32)
            or isinstance(dim, bool) or not isinstance(dim, int) or not -len(xs) <= dim < len(xs)):
        return None
    return {"x": x, "dim": dim % len(xs)}


def _emit(k: int, group: Group, t: Any, chain: Any) -> Emitted | None:
    """The helper `_fK`: the input made contiguous, then the scan (the output has its shape)."""
    if group.ops:
        return None  # nothing is fused after it (the group is the node alone)
    src = group.source
    name = f"_scan_{k}"
    code = f"def _f{k}(x):\n    return {name}_run(x.contiguous(), {src['dim']})\n"
    return Emitted([src["x"]], [SCAN.substitute(name=name), LAUNCH.substitute(name=name)], code, {"scan"})


# Rows of 700 at tiles of 256 (example_params): several tiles, a ragged last one, and the carry.
EXAMPLE = '''
class Model(nn.Module):
    def forward(self, x):
        return torch.cumsum(x * 0.5, dim=-1)
def get_inputs():
    return [torch.randn(3, 700)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=SCAN, example=EXAMPLE, example_rules=("triton_scan",), example_params={"SCAN_TILE": 256},
    name="scan", rule="triton_scan", prior=4.0, kind="reduce", pattern=scan_source, emitter=_emit,
    # Defaults measured on an H200 (32768 rows of 16384, bound 1.01 ms): with the carry alone
    # compensated, 1.088 ms at 512 x 1 warp and every tiling tried within 1% of it; every partial sum a
    # pair (SCAN_PAIRED 1), 1.366 ms: ALU-bound, small tiles on few warps had hidden it best.
    params={"SCAN_TILE": [512, 1024, 2048, 256, 4096], "SCAN_BLOCK_B": [64, 256, 32, 128, 16],
            "SCAN_WARPS": [1, 2, 4, 8], "SCAN_WAVES": [4, 2, 8], "SCAN_PAIRED": [0, 1]},
    constraints=["SCAN_BLOCK_B <= SCAN_TILE"])
