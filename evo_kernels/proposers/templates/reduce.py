"""Reductions and normalizations over any run of dims, at the memory roofline: sum, mean, amax,
amin, argmax, argmin; softmax and log-softmax over any dim; LayerNorm over any trailing dims,
GroupNorm, InstanceNorm. The ones a row template cannot hold (rows of more than 64 Ki elements,
reductions not over the last dim, norms over several dims) come here.

The input is viewed as [A, R, B] (R: the reduced dims, B: the dims after them, contiguous). Pass one
(`stats`) splits each reduction over R into SPLIT chunks, so that long rows and few rows still fill
the device, and keeps per chunk and column one or two partials: a sum, a running max or min (with
its index), (mean, M2) for a norm (Welford per element of a tile, Chan's formula across them and
across chunks: stable whatever the mean), (max, sum of exp) for a softmax (online). Pass two
combines the chunks' partials into the reduction, or into a normalization's statistics, which pass
three applies, reading the rows again (with the affine weight and bias; under a LayerNorm's weight,
several samples per program share each weight tile). With SPLIT 1 (rows enough to fill the device)
there is one kernel: a reduction is stored at once, and a normalization folds and applies its row in
the same program, so that the second read can come from L2 (where the rows in flight fit there).
Bytes moved: one read for a reduction; a read and a write for a normalization in one kernel, plus a
second read when it is split (or when its rows in flight do not fit in L2: InstanceNorm and
GroupNorm at real sizes lost to compile's three passes that way). A softmax over a strided dim (the
channels of a map) whose strip of R by 64 or more columns fits a tile holds the strip: no second read.

Contiguous rows that a tile holds whole (a global average pool's 7 x 7, GroupNorm's groups after a
Linear, InstanceNorm on small maps) take their own kernel (`rows`): several rows a program, held in
registers; a reduction is one read, a normalization one read and one write.

A normalization of contiguous rows (LayerNorm, GroupNorm, InstanceNorm, a softmax over the last dim)
whose rows fit a group of programs on the device at once takes a fourth path (`coop`): each program
reads RED_COOP_CHUNK elements of a row, publishes their partials, waits for the rest of its group's,
and normalizes its chunk, read again from L2: one read from memory and one write, whatever the
row's length.

RED_TILE: elements per tile (BLOCK_R x BLOCK_B); RED_BLOCK_B: columns per tile when B > 1;
RED_WARPS; RED_WAVES: programs per SM aimed at when choosing SPLIT; RED_COOP_CHUNK: elements each
program of a cooperative normalization takes (0: none), 32 per thread (on an H200, InstanceNorm and
GroupNorm: 4096 over 4 warps fastest when the chunk was held across the wait; re-read, 4096 was
faster than 2048, experiments/coop_probe.py).

Which nodes it takes, and their [A, R, B] view: templates/reduce_pattern.py.
"""
from __future__ import annotations

from string import Template
from typing import Any

from .base import AnchorTemplate, Emitted
from .ir import Group
from .reduce_pattern import ARGMAX, ARGMIN, NORM, reduce_source

REDUCE = Template('''
@triton.jit
def ${name}_chan(mean_a, m2_a, n_a, mean_b, m2_b, n_b):
    # Two Welford partials (mean, sum of squared deviations, count) combined by Chan's formula.
    n = n_a + n_b
    w = n_b / tl.maximum(n, 1.0)
    d = mean_b - mean_a
    return mean_a + d * w, m2_a + m2_b + d * d * n_a * w, n


@triton.jit
def ${name}_max(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)  # NaN wins, as in torch.amax


@triton.jit
def ${name}_min(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def ${name}_fold(base, lo, hi, B, rb, bmask, STAT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr):
    # Rows [lo, hi) of R folded into per-column partials (acc, acc2, idx), by STAT. Sums, extrema
    # and arg-extrema keep a whole tile of running values and reduce across its rows once, at the
    # end, as does a norm (Welford per element); a softmax (online max and sum of exp) folds each
    # tile as it comes.
    if STAT <= 4:
        if STAT == 0:
            run = tl.zeros((BLOCK_R, BLOCK_B), tl.float32)
        elif STAT == 1 or STAT == 3:
            run = tl.full((BLOCK_R, BLOCK_B), float('-inf'), tl.float32)
        else:
            run = tl.full((BLOCK_R, BLOCK_B), float('inf'), tl.float32)
        where = tl.zeros((BLOCK_R, BLOCK_B), tl.int64)
        for r0 in range(lo, hi, BLOCK_R):
            rr = r0 + tl.arange(0, BLOCK_R)
            m = (rr < hi)[:, None] & bmask[None, :]
            ptrs = base + rr.to(tl.int64)[:, None] * B + rb[None, :]
            if STAT == 0:
                run += tl.load(ptrs, mask=m, other=0.0)
            elif STAT == 1:
                run = ${name}_max(run, tl.load(ptrs, mask=m, other=float('-inf')))
            elif STAT == 2:
                run = ${name}_min(run, tl.load(ptrs, mask=m, other=float('inf')))
            else:
                if STAT == 3:
                    x = tl.load(ptrs, mask=m, other=float('-inf'))
                    x = tl.where(x != x, float('inf'), x)  # NaN wins, as in torch
                    better = x > run  # strictly: a tie keeps the earlier row
                else:
                    x = tl.load(ptrs, mask=m, other=float('inf'))
                    x = tl.where(x != x, float('-inf'), x)
                    better = x < run
                where = tl.where(better, rr.to(tl.int64)[:, None] + tl.zeros_like(where), where)
                run = tl.where(better, x, run)
        if STAT == 0:
            acc = tl.sum(run, axis=0)
        elif STAT == 1 or STAT == 3:
            acc = tl.reduce(run, 0, ${name}_max)
        else:
            acc = tl.reduce(run, 0, ${name}_min)
        # The first row holding the extremum (rows that never held a value keep index hi: never chosen
        # unless the column is all masked).
        idx = tl.min(tl.where(run == acc[None, :], where, 9223372036854775807), axis=0)
        return acc, tl.zeros((BLOCK_B,), tl.float32), idx
    elif STAT == 5:
        # Welford per element of the tile (no reduction across the tile's rows until the end, when
        # Chan's formula combines them): each element's running mean and sum of squared deviations.
        # Every element of a whole tile has the same count, so its reciprocal is one scalar per
        # tile; the partial last tile keeps counts per element.
        mean = tl.zeros((BLOCK_R, BLOCK_B), tl.float32)
        m2 = tl.zeros((BLOCK_R, BLOCK_B), tl.float32)
        whole = (hi - lo) // BLOCK_R
        cols = bmask[None, :] & (tl.arange(0, BLOCK_R) >= 0)[:, None]
        for t in range(0, whole):
            rr = lo + t * BLOCK_R + tl.arange(0, BLOCK_R)
            x = tl.load(base + rr.to(tl.int64)[:, None] * B + rb[None, :], mask=cols, other=0.0)
            delta = x - mean
            mean += delta * (1.0 / (t + 1.0))
            m2 += delta * (x - mean)
        n = tl.where(cols, whole * 1.0, 0.0)
        if lo + whole * BLOCK_R < hi:
            rr = lo + whole * BLOCK_R + tl.arange(0, BLOCK_R)
            m = (rr < hi)[:, None] & cols
            x = tl.load(base + rr.to(tl.int64)[:, None] * B + rb[None, :], mask=m, other=0.0)
            n_new = n + m.to(tl.float32)
            delta = x - mean
            mean = tl.where(m, mean + delta / tl.maximum(n_new, 1.0), mean)
            m2 = tl.where(m, m2 + delta * (x - mean), m2)
            n = n_new
        acc, acc2, _ = tl.reduce((mean, m2, n), 0, ${name}_chan)
        return acc, acc2, tl.zeros((BLOCK_B,), tl.int64)
    else:
        acc = tl.full((BLOCK_B,), float('-inf'), tl.float32)
        acc2 = tl.zeros((BLOCK_B,), tl.float32)
        for r0 in range(lo, hi, BLOCK_R):
            rr = r0 + tl.arange(0, BLOCK_R)
            m = (rr < hi)[:, None] & bmask[None, :]
            x = tl.load(base + rr.to(tl.int64)[:, None] * B + rb[None, :], mask=m, other=float('-inf'))
            new = tl.maximum(acc, tl.max(x, axis=0))
            safe = tl.where(new == float('-inf'), 0.0, new)
            acc2 = acc2 * tl.exp(acc - safe) + tl.sum(tl.exp(x - safe[None, :]), axis=0)
            acc = new
        return acc, acc2, tl.zeros((BLOCK_B,), tl.int64)


@triton.jit
def ${name}_stats(x_ptr, p1_ptr, p2_ptr, out_ptr, R, B, CH, SPLIT, STAT: tl.constexpr, FINAL: tl.constexpr,
                  MEAN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr):
    # Pass one over [A, R, B]: program (a, s, b-tile) folds rows [s * CH, s * CH + CH) of R into one
    # or two partials per column, stored at [a, s, b] (or, FINAL, the reduction itself at [a, b]).
    a = tl.program_id(0)
    s = tl.program_id(1)
    rb = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    bmask = rb < B
    lo = s * CH
    acc, acc2, idx = ${name}_fold(x_ptr + a.to(tl.int64) * R * B, lo, tl.minimum(lo + CH, R), B, rb, bmask, STAT,
                                  BLOCK_R, BLOCK_B)
    if FINAL:
        o = a.to(tl.int64) * B + rb
        if STAT == 3 or STAT == 4:
            tl.store(out_ptr + o, idx, mask=bmask)
        elif MEAN:
            tl.store(out_ptr + o, acc / R, mask=bmask)
        else:
            tl.store(out_ptr + o, acc, mask=bmask)
    else:
        o = (a.to(tl.int64) * SPLIT + s) * B + rb
        tl.store(p1_ptr + o, acc, mask=bmask)
        if STAT == 3 or STAT == 4:
            tl.store(p2_ptr + o, idx, mask=bmask)
        elif STAT >= 5:
            tl.store(p2_ptr + o, acc2, mask=bmask)


@triton.jit
def ${name}_combine(p1_ptr, p2_ptr, a, rb, R, B, CH, SPLIT, STAT: tl.constexpr, SPLIT_P2: tl.constexpr,
                    VOLATILE: tl.constexpr):
    # The chunks' partials of columns (a, rb), combined: (value, index) for the reductions, (mean,
    # variance) for a norm, (max, sum of exp) for a softmax. VOLATILE: other programs of this launch
    # stored them (past L1, which another program on this SM may hold stale lines of).
    sp = tl.arange(0, SPLIT_P2)
    m = (sp < SPLIT)[:, None] & (rb < B)[None, :]
    o = (a.to(tl.int64) * SPLIT + sp[:, None]) * B + rb[None, :]
    zero = tl.zeros(rb.shape, tl.float32)
    if STAT == 0:
        return tl.sum(tl.load(p1_ptr + o, mask=m, other=0.0), axis=0), zero
    elif STAT == 1:
        return tl.reduce(tl.load(p1_ptr + o, mask=m, other=float('-inf')), 0, ${name}_max), zero
    elif STAT == 2:
        return tl.reduce(tl.load(p1_ptr + o, mask=m, other=float('inf')), 0, ${name}_min), zero
    elif STAT == 3:
        v = tl.load(p1_ptr + o, mask=m, other=float('-inf'))
        best = tl.max(v, axis=0)
        first = tl.min(tl.where((v == best[None, :]) & m, sp[:, None], SPLIT_P2), axis=0)  # earliest chunk
        return best, tl.sum(tl.where(sp[:, None] == first[None, :], tl.load(p2_ptr + o, mask=m, other=0), 0), axis=0)
    elif STAT == 4:
        v = tl.load(p1_ptr + o, mask=m, other=float('inf'))
        best = tl.min(v, axis=0)
        first = tl.min(tl.where((v == best[None, :]) & m, sp[:, None], SPLIT_P2), axis=0)
        return best, tl.sum(tl.where(sp[:, None] == first[None, :], tl.load(p2_ptr + o, mask=m, other=0), 0), axis=0)
    elif STAT == 5:
        mean_s = tl.load(p1_ptr + o, mask=m, other=0.0, volatile=VOLATILE)
        m2_s = tl.load(p2_ptr + o, mask=m, other=0.0, volatile=VOLATILE)
        n_s = tl.minimum(tl.maximum(R - sp * CH, 0), CH).to(tl.float32)[:, None]
        mean = tl.sum(n_s * mean_s, axis=0) / R
        d = mean_s - mean[None, :]
        return mean, (tl.sum(m2_s, axis=0) + tl.sum(tl.where(m, n_s * d * d, 0.0), axis=0)) / R
    else:
        mx_s = tl.load(p1_ptr + o, mask=m, other=float('-inf'), volatile=VOLATILE)
        sm_s = tl.load(p2_ptr + o, mask=m, other=0.0, volatile=VOLATILE)
        mx = tl.max(mx_s, axis=0)
        safe = tl.where(mx == float('-inf'), 0.0, mx)
        return mx, tl.sum(sm_s * tl.exp(mx_s - safe[None, :]), axis=0)


@triton.jit
def ${name}_finish(p1_ptr, p2_ptr, out_ptr, out2_ptr, R, B, CH, SPLIT, STAT: tl.constexpr, MEAN: tl.constexpr,
                   SPLIT_P2: tl.constexpr, BLOCK_B: tl.constexpr):
    # Pass two of a reduction split over chunks: combine and store [a, b]; of a normalization, its
    # statistics (mean and variance; max and sum of exp) at out and out2 [a, b].
    a = tl.program_id(0)
    rb = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    v, i = ${name}_combine(p1_ptr, p2_ptr, a, rb, R, B, CH, SPLIT, STAT, SPLIT_P2, False)
    o = a.to(tl.int64) * B + rb
    if STAT == 3 or STAT == 4:
        tl.store(out_ptr + o, i.to(tl.int64), mask=rb < B)
    elif STAT >= 5:
        tl.store(out_ptr + o, v, mask=rb < B)
        tl.store(out2_ptr + o, i, mask=rb < B)
    elif MEAN:
        tl.store(out_ptr + o, v / R, mask=rb < B)
    else:
        tl.store(out_ptr + o, v, mask=rb < B)


@triton.jit
def ${name}_scale(v2, eps, STAT: tl.constexpr):
    # A row's second statistic (variance; sum of exp) as the normalization applies it, once per row.
    if STAT == 5:
        return 1.0 / tl.sqrt(v2 + eps)
    elif STAT == 6:
        return 1.0 / v2
    else:
        return tl.log(v2)


@triton.jit
def ${name}_normalize(x, v1, c2, STAT: tl.constexpr):
    # One element of a normalization from its row's max or mean and `scale`'s figure.
    if STAT == 5:
        return (x - v1) * c2
    elif STAT == 6:
        return tl.exp(x - v1) * c2
    else:
        return (x - v1) - c2


@triton.jit
def ${name}_affine(y, w_ptr, b_ptr, idx, mask, HAS_W: tl.constexpr, HAS_B: tl.constexpr):
    # A norm's affine weight and bias at `idx` (shaped to broadcast against y) applied to y. Only a
    # norm has them: HAS_W and HAS_B are False for a softmax.
    if HAS_W:
        y = y * tl.load(w_ptr + idx, mask=mask, other=0.0)
    if HAS_B:
        y = y + tl.load(b_ptr + idx, mask=mask, other=0.0)
    return y


@triton.jit
def ${name}_apply(x_ptr, f1_ptr, f2_ptr, out_ptr, w_ptr, b_ptr, A, R, B, CH, eps, AMOD, RMUL, RDIV,
                  STAT: tl.constexpr, FUSED: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                  A_GROUP: tl.constexpr, HELD: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_B: tl.constexpr):
    # A normalization's last pass over chunk s of R. Its statistics: FUSED, folded here from the
    # rows this program then reads again (from L2 where the rows in flight fit there); else those
    # `finish` stored at f1, f2 [a, b]. The affine weight of element (a, r) is
    # w[(a % AMOD) * RMUL + r // RDIV]: LayerNorm (1, 0, 1), GroupNorm (groups, channels per group,
    # spatial size), InstanceNorm (C, 1, R). Tiles go backwards over the chunk: those the fold read
    # last are the likeliest still in L2. HELD (FUSED, BLOCK_R >= R): the program's whole strip of R
    # by BLOCK_B is one tile, held in registers: one read, no second one even from L2.
    s = tl.program_id(1)
    lo = s * CH
    hi = tl.minimum(lo + CH, R)
    n_tiles = tl.cdiv(hi - lo, BLOCK_R)
    if A_GROUP > 1:
        # Rows of R (B is 1) of A_GROUP samples at once, under a weight indexed by r alone
        # (LayerNorm): each weight and bias tile is loaded once for all of them.
        av = tl.program_id(0) * A_GROUP + tl.arange(0, A_GROUP)
        amask = av < A
        v1 = tl.load(f1_ptr + av, mask=amask, other=0.0)[:, None]
        c2 = ${name}_scale(tl.load(f2_ptr + av, mask=amask, other=1.0), eps, STAT)[:, None]
        for t in range(0, n_tiles):
            rr = lo + (n_tiles - 1 - t) * BLOCK_R + tl.arange(0, BLOCK_R)
            rmask = rr < hi
            m = amask[:, None] & rmask[None, :]
            offs = av.to(tl.int64)[:, None] * R + rr[None, :]
            y = ${name}_normalize(tl.load(x_ptr + offs, mask=m, other=0.0), v1, c2, STAT)
            y = ${name}_affine(y, w_ptr, b_ptr, (rr // RDIV)[None, :], rmask[None, :], HAS_W, HAS_B)
            tl.store(out_ptr + offs, y, mask=m)
    else:
        a = tl.program_id(0)
        rb = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
        bmask = rb < B
        base = a.to(tl.int64) * R * B
        if HELD:  # (a softmax or log-softmax: a norm's rows are contiguous, B is 1, and never held here)
            rr = tl.arange(0, BLOCK_R)
            m = (rr < R)[:, None] & bmask[None, :]
            offs = base + rr.to(tl.int64)[:, None] * B + rb[None, :]
            x = tl.load(x_ptr + offs, mask=m, other=float('-inf'))
            v1 = tl.max(x, axis=0)
            e = tl.where(m, tl.exp(x - v1[None, :]), 0.0)  # once: the numerators and their sum
            if STAT == 6:
                y = e * (1.0 / tl.sum(e, axis=0))[None, :]
            else:
                y = (x - v1[None, :]) - tl.log(tl.sum(e, axis=0))[None, :]
            tl.store(out_ptr + offs, y, mask=m)
        else:
            if FUSED:
                v1, v2, _ = ${name}_fold(x_ptr + base, lo, hi, B, rb, bmask, STAT, BLOCK_R, BLOCK_B)
                if STAT == 5:
                    v2 = v2 / R
            else:
                o = a.to(tl.int64) * B + rb
                v1 = tl.load(f1_ptr + o, mask=bmask, other=0.0)
                v2 = tl.load(f2_ptr + o, mask=bmask, other=1.0)
            c2 = ${name}_scale(v2, eps, STAT)
            for t in range(0, n_tiles):
                rr = lo + (n_tiles - 1 - t) * BLOCK_R + tl.arange(0, BLOCK_R)
                m = (rr < hi)[:, None] & bmask[None, :]
                offs = base + rr.to(tl.int64)[:, None] * B + rb[None, :]
                y = ${name}_normalize(tl.load(x_ptr + offs, mask=m, other=0.0), v1[None, :], c2[None, :], STAT)
                widx = (a % AMOD) * RMUL + rr // RDIV
                y = ${name}_affine(y, w_ptr, b_ptr, widx[:, None], (rr < hi)[:, None], HAS_W, HAS_B)
                tl.store(out_ptr + offs, y, mask=m)


@triton.jit
def ${name}_rows(x_ptr, out_ptr, w_ptr, b_ptr, A, R, eps, AMOD, RMUL, RDIV, STAT: tl.constexpr, MEAN: tl.constexpr,
                 HAS_W: tl.constexpr, HAS_B: tl.constexpr, ROWS: tl.constexpr, BLOCK_R: tl.constexpr):
    # Short contiguous rows (BLOCK_R >= R), ROWS of them a program, each held whole in registers: a
    # reduction stored at once; a normalization in one read and one write, a norm's variance from its
    # exact mean, a softmax's sum from its max. A program per row of a few dozen elements (GroupNorm
    # after a Linear: 64; a global average pool over 7 x 7) leaves most of its threads idle: 5% of
    # the bandwidth on an H200.
    av = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    rr = tl.arange(0, BLOCK_R)
    m = (av < A)[:, None] & (rr < R)[None, :]
    offs = av.to(tl.int64)[:, None] * R + rr[None, :]
    if STAT == 0:
        v = tl.sum(tl.load(x_ptr + offs, mask=m, other=0.0), axis=1)
        tl.store(out_ptr + av, v / R if MEAN else v, mask=av < A)
    elif STAT == 1:
        tl.store(out_ptr + av, tl.reduce(tl.load(x_ptr + offs, mask=m, other=float('-inf')), 1, ${name}_max),
                 mask=av < A)
    elif STAT == 2:
        tl.store(out_ptr + av, tl.reduce(tl.load(x_ptr + offs, mask=m, other=float('inf')), 1, ${name}_min),
                 mask=av < A)
    elif STAT <= 4:
        # NaN wins (as in torch), then the first element holding the extremum
        if STAT == 3:
            x = tl.load(x_ptr + offs, mask=m, other=float('-inf'))
            x = tl.where(x != x, float('inf'), x)
            best = tl.max(x, axis=1)
        else:
            x = tl.load(x_ptr + offs, mask=m, other=float('inf'))
            x = tl.where(x != x, float('-inf'), x)
            best = tl.min(x, axis=1)
        idx = tl.min(tl.where(m & (x == best[:, None]), rr[None, :], BLOCK_R), axis=1)
        tl.store(out_ptr + av, idx.to(tl.int64), mask=av < A)
    else:
        if STAT == 5:
            x = tl.load(x_ptr + offs, mask=m, other=0.0)
            v1 = tl.sum(x, axis=1) / R
            d = tl.where(m, x - v1[:, None], 0.0)
            v2 = tl.sum(d * d, axis=1) / R
        else:
            x = tl.load(x_ptr + offs, mask=m, other=float('-inf'))
            v1 = tl.max(x, axis=1)
            v2 = tl.sum(tl.where(m, tl.exp(x - v1[:, None]), 0.0), axis=1)
        y = ${name}_normalize(x, v1[:, None], ${name}_scale(v2, eps, STAT)[:, None], STAT)
        y = ${name}_affine(y, w_ptr, b_ptr, (av % AMOD)[:, None] * RMUL + rr[None, :] // RDIV, m, HAS_W, HAS_B)
        tl.store(out_ptr + offs, y, mask=m)


@triton.jit
def ${name}_coop(x_ptr, out_ptr, w_ptr, b_ptr, p1_ptr, p2_ptr, sync_ptr, R, SPLIT, eps, AMOD, RMUL, RDIV,
                 STAT: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr, CH: tl.constexpr,
                 SPLIT_P2: tl.constexpr, W_SCALAR: tl.constexpr):
    # A normalization of contiguous rows, each split among SPLIT programs of CH elements, which publish
    # their chunk's partials and wait for the others' before normalizing their chunk. The chunk is
    # read again after the wait, not held: it was read microseconds before, so the second read comes
    # from L2, and a program waiting holds no registers for it, so more programs load at once (on an
    # H200 InstanceNorm's and GroupNorm's rows ran at 80% and 77% of the read-and-write bound, against
    # 67% and 66% held; with no wait at all, 96%). A program's (row, chunk) comes from a ticket taken
    # when it starts (sync[0]), not from its program id, so the programs a group waits for have
    # started or start as soon as the groups before it finish: no deadlock while one group fits on
    # the device (SPLIT <= SMs). sync[1 + a] counts row a's arrivals.
    t = tl.atomic_add(sync_ptr, 1)
    a = t // SPLIT
    s = t - a * SPLIT
    rr = s * CH + tl.arange(0, CH)
    m = rr < R
    offs = a.to(tl.int64) * R + rr
    x = tl.load(x_ptr + offs, mask=m, other=0.0)
    if STAT == 5:
        v1 = tl.sum(x, axis=0) / tl.minimum(R - s * CH, CH)
        d = tl.where(m, x - v1, 0.0)
        v2 = tl.sum(d * d, axis=0)  # the chunk's sum of squared deviations, from its exact mean
    else:
        v1 = tl.max(tl.where(m, x, float('-inf')), axis=0)
        v2 = tl.sum(tl.where(m, tl.exp(x - v1), 0.0), axis=0)
    tl.store(p1_ptr + t, v1)
    tl.store(p2_ptr + t, v2)
    tl.debug_barrier()  # every thread's stores before the release below
    tl.atomic_add(sync_ptr + 1 + a, 1, sem="release")
    while tl.atomic_add(sync_ptr + 1 + a, 0, sem="acquire") < SPLIT:
        pass
    f1, f2 = ${name}_combine(p1_ptr, p2_ptr, a, tl.arange(0, 1), R, 1, CH, SPLIT, STAT, SPLIT_P2, True)
    v1 = tl.sum(f1, axis=0)
    c2 = ${name}_scale(tl.sum(f2, axis=0), eps, STAT)
    x = tl.load(x_ptr + offs, mask=m, other=0.0)  # again, from L2
    y = ${name}_normalize(x, v1, c2, STAT)
    if W_SCALAR:
        # The chunk spans at most two affine weights (RDIV >= CH; InstanceNorm: one; GroupNorm: a
        # channel boundary): two scalars each. A division and a gathered load per element cost
        # InstanceNorm's and GroupNorm's re-reading kernel 24% and 21% on an H200 (coop_probe).
        c0 = (s * CH) // RDIV
        i0 = (a % AMOD) * RMUL + c0
        nxt = rr >= (c0 + 1) * RDIV
        more = (c0 + 1) * RDIV < tl.minimum(R, s * CH + CH)  # the chunk reaches the next weight
        if HAS_W:
            y = y * tl.where(nxt, tl.load(w_ptr + i0 + 1, mask=more, other=0.0), tl.load(w_ptr + i0))
        if HAS_B:
            y = y + tl.where(nxt, tl.load(b_ptr + i0 + 1, mask=more, other=0.0), tl.load(b_ptr + i0))
    else:
        y = ${name}_affine(y, w_ptr, b_ptr, (a % AMOD) * RMUL + rr // RDIV, m, HAS_W, HAS_B)
    tl.store(out_ptr + offs, y, mask=m)
''')

# The launcher each candidate carries once per group, next to its kernels.
LAUNCH = Template('''
def ${name}_run(x, out, w, b, a, r, n_b, stat, mean=False, eps=0.0, amod=1, rmul=0, rdiv=1):
    if n_b == 1 and _pow2(r) <= RED_TILE and (stat < 5 or r <= RED_COOP_CHUNK or not RED_COOP_CHUNK):
        # Contiguous rows a tile holds whole (and, a normalization's, that no cooperating group would
        # split): several a program, so long as about RED_WAVES programs per SM still run.
        block_r = _pow2(r)
        rows = max(1, min(RED_TILE // block_r, _pow2(_cdiv(a, max(1, RED_WAVES) * _sms(x)))))
        _launch(${name}_rows, (_cdiv(a, rows),),
                x, out, w if w is not None else x, b if b is not None else x, a, r, eps, amod, rmul, rdiv, STAT=stat,
                MEAN=mean, HAS_W=w is not None, HAS_B=b is not None, ROWS=rows, BLOCK_R=block_r, num_warps=RED_WARPS)
        return out
    if stat >= 5 and n_b == 1 and RED_COOP_CHUNK:
        # Contiguous rows of a normalization in one kernel, each split among a group of programs that
        # wait for each other. A group must fit on the device at once: no more programs than SMs (each
        # holds at least one); off a GPU (Triton's interpreter runs programs one after another),
        # groups of one program, which wait for no one.
        split = _cdiv(r, RED_COOP_CHUNK)
        if split <= (min(64, _sms(x)) if x.is_cuda else 1):
            p1 = torch.empty((a * split,), device=x.device, dtype=torch.float32)
            p2 = torch.empty_like(p1)
            sync = torch.zeros((1 + a,), device=x.device, dtype=torch.int32)
            _launch(${name}_coop, (a * split,),
                    x, out, w if w is not None else x, b if b is not None else x, p1, p2, sync, r, split, eps, amod,
                    rmul, rdiv, STAT=stat, HAS_W=w is not None, HAS_B=b is not None, CH=RED_COOP_CHUNK,
                    SPLIT_P2=max(2, _pow2(split)), W_SCALAR=rdiv >= RED_COOP_CHUNK,
                    num_warps=max(1, min(16, RED_COOP_CHUNK // 1024)))
            return out
    # Tile: BLOCK_B columns (1 when B is 1: rows are contiguous) by BLOCK_R rows of R.
    block_b = 1 if n_b == 1 else min(RED_BLOCK_B, _pow2(n_b))
    block_r = max(1, min(RED_TILE // block_b, _pow2(r)))
    # A softmax or log-softmax over a strided dim (the channels of a map) whose strip of R by at least 32
    # columns (128-byte runs) fits a tile of up to 16384, and whose strips fill the device: each held
    # whole. On an H200 (2026-12-03) a held strip ran 2.2x faster on 4 warps than on 8, and 4.2x than
    # on 16: at most 4; 512 channels by 32 columns (128 a thread) took 0.6185 ms against the fold's
    # 0.6755, by 16 columns 0.7466 against 0.7323: not under 32.
    held_b = min(RED_BLOCK_B, _pow2(n_b), max(RED_TILE, 16384) // _pow2(r))
    held = stat >= 6 and n_b > 1 and held_b >= min(32, _pow2(n_b)) and a * _cdiv(n_b, held_b) >= _sms(x)
    if held:
        block_b, block_r = held_b, _pow2(r)
    n_bt = _cdiv(n_b, block_b)
    # Split R so that about RED_WAVES programs per SM run; at most 64 chunks.
    split, ch = _split_length(x, a * n_bt, r, block_r, RED_WAVES, 64)
    one = split == 1  # one program per (a, b-tile): a reduction stores at once, a norm is one kernel
    sp2 = max(2, _pow2(split))
    p1 = p2 = x
    if not one:
        p1 = torch.empty((a, split, n_b), device=x.device, dtype=torch.float32)
        p2 = torch.empty((a, split, n_b), device=x.device, dtype=torch.int64 if stat in (3, 4) else torch.float32)
    if stat < 5 or not one:
        _launch(${name}_stats, (a, split, n_bt),
                x, p1, p2, out, r, n_b, ch, split, STAT=stat, FINAL=one, MEAN=mean, BLOCK_R=block_r, BLOCK_B=block_b,
                num_warps=RED_WARPS)
    f1 = f2 = x
    if not one:  # combined: the reduction, or a normalization's statistics at f1, f2 [a, b]
        if stat >= 5:
            f1 = torch.empty((a, n_b), device=x.device, dtype=torch.float32)
            f2 = torch.empty_like(f1)
        _launch(${name}_finish, (a, 1, n_bt),
                p1, p2, out if stat < 5 else f1, f2, r, n_b, ch, split, STAT=stat, MEAN=mean, SPLIT_P2=sp2,
                BLOCK_B=block_b, num_warps=RED_WARPS)
    if stat >= 5:
        # Split rows under a weight indexed by position alone (LayerNorm): up to 8 samples per
        # program share each weight tile, in their own chunks.
        group = min(8, _pow2(a)) if not one and n_b == 1 and amod == 1 and rmul == 0 else 1
        grid = (a, split, n_bt)
        if group > 1:
            block_r = max(1, min(RED_TILE // group, _pow2(r)))
            split, ch = _split_length(x, _cdiv(a, group), r, block_r, RED_WAVES, 256)
            grid = (_cdiv(a, group), split, 1)
        _launch(${name}_apply, grid,
                x, f1, f2, out, w if w is not None else x, b if b is not None else x, a, r, n_b, ch, eps, amod, rmul,
                rdiv, STAT=stat, FUSED=one, HAS_W=w is not None, HAS_B=b is not None, A_GROUP=group, HELD=held,
                BLOCK_R=block_r, BLOCK_B=block_b, num_warps=min(RED_WARPS, 4) if held else RED_WARPS)
    return out
''')

# --- the emitter -----------------------------------------------------------------------------------------
def _emit(k: int, group: Group, t: Any, chain: Any) -> Emitted | None:
    """The helper `_fK`: the input made contiguous, the output allocated, both passes launched."""
    src = group.source
    if group.ops:
        return None  # nothing is fused after it (the group is the node alone)
    stat, d0, d1 = src["stat"], src["d0"], src["d1"]
    name = f"_red_{k}"
    code = [f"def _f{k}(x, w, b):", "    x = x.contiguous()",
            f"    a, r, n_b = x.shape[:{d0}].numel(), x.shape[{d0}:{d1 + 1}].numel(), x.shape[{d1 + 1}:].numel()"]
    if stat < NORM:
        if src.get("flat"):
            shape = "(1,) * x.dim()" if src["keepdim"] else "()"
        elif src["keepdim"]:
            shape = f"(*x.shape[:{d0}], {', '.join(['1'] * (d1 - d0 + 1))}, *x.shape[{d1 + 1}:])"
        else:
            shape = f"(*x.shape[:{d0}], *x.shape[{d1 + 1}:])"
        dtype = "torch.int64" if stat in (ARGMAX, ARGMIN) else "torch.float32"
        code += [f"    out = torch.empty({shape}, device=x.device, dtype={dtype})",
                 f"    return {name}_run(x, out, None, None, a, r, n_b, {stat}, mean={src.get('mean', False)})"]
        args: list[Any] = [src["x"], None, None]
    else:
        code.append("    out = torch.empty_like(x)")
        if stat == NORM:
            affine = src["affine"]
            if affine == "group":
                g = src["groups"]
                code += ["    c, sp = x.shape[1], x.shape[2:].numel()",
                         f"    a, r = a * {g}, r // {g}  # rows: (sample, group)",
                         f"    return {name}_run(x, out, w, b, a, r, 1, {NORM}, eps={src['eps']!r}, amod={g}, "
                         f"rmul=c // {g}, rdiv=sp)"]
            elif affine == "instance":  # rows: (sample, channel)
                code.append(f"    return {name}_run(x, out, w, b, a, r, 1, {NORM}, eps={src['eps']!r}, "
                            "amod=x.shape[1], rmul=1, rdiv=r)")
            else:
                code.append(f"    return {name}_run(x, out, w, b, a, r, 1, {NORM}, eps={src['eps']!r})")
            args = [src["x"], src.get("w"), src.get("b")]
        else:
            code.append(f"    return {name}_run(x, out, None, None, a, r, n_b, {stat})")
            args = [src["x"], None, None]
    kernels = [REDUCE.substitute(name=name), LAUNCH.substitute(name=name)]
    return Emitted(args, kernels, "\n".join(code) + "\n", {"reduce"})


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.GroupNorm(4, 8)
    def forward(self, x):
        return torch.softmax(self.norm(x), dim=1).sum(dim=(2, 3))
def get_inputs():
    return [torch.randn(3, 8, 5, 7)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=REDUCE, example=EXAMPLE, example_rules=("triton_reduce",), example_params={},
    name="reduce", rule="triton_reduce", prior=4.0, kind="reduce", pattern=reduce_source, emitter=_emit,
    params={"RED_TILE": [4096, 2048, 8192, 1024], "RED_BLOCK_B": [64, 32, 128, 16], "RED_WARPS": [8, 4, 16],
            "RED_WAVES": [4, 2, 8], "RED_COOP_CHUNK": [4096, 8192, 2048, 0]})
