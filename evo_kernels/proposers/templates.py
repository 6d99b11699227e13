"""Triton kernel templates: sources with holes for a fused group's ops, and their launch code.

Five templates, each a kernel text (string.Template: `$name`, `$ptrs`, `$body`) that the fusion
code (fusion.py) fills with the Triton lines of a group's ops (fx_patterns.Op):

- gemm: C = A @ B with a fused elementwise epilogue, or a fused row sum (atomic) of it; fp32 inputs
  through `tl.dot(..., input_precision=PRECISION)`: "ieee" is plain fp32 FMA, "tf32x3" is the
  split-precision product (a = hi + lo in TF32; hi*hi + hi*lo + lo*hi) on the tensor cores, which
  keeps fp32 accuracy (about 2^-22 relative per product) where plain TF32 (2^-11) would not pass
  the 1e-4 tolerance. The verifier, not this comment, decides: each precision is a tunable value.
- conv: implicit-GEMM Conv2d over NCHW input (K ordered kh, kw, c) with the same epilogue.
- rowwise: rows of the last dim held whole in registers (one read, one write): softmax, log-softmax,
  layer/RMS/L2 norm, mean subtraction, row sums, with elementwise ops before and after.
- elementwise: a flat 1-D kernel over contiguous data; per-column / per-channel / per-row operands.
- pool: 2-D max/avg pooling with elementwise ops before (per input element) and after.

Tunable names are module-level constants of the candidate, declared in search_spaces/*.yaml.
"""
from __future__ import annotations

import math
from pathlib import Path
from string import Template
from typing import Any

import yaml

from ..fx_patterns import Op

SPACES = Path(__file__).resolve().parent.parent.parent / "search_spaces"

# Elementwise ops as Triton expressions. tanh, sigmoid and friends go through tl.exp (no libdevice:
# its module path differs across Triton versions); their absolute error is ~1e-7.
EXPR = {
    "relu": "tl.maximum({0}, 0.0)", "sigmoid": "1.0 / (1.0 + tl.exp(-{0}))",
    "tanh": "1.0 - 2.0 / (tl.exp(2.0 * {0}) + 1.0)", "silu": "{0} / (1.0 + tl.exp(-{0}))",
    "hardswish": "{0} * tl.minimum(tl.maximum({0} + 3.0, 0.0), 6.0) / 6.0",
    "relu6": "tl.minimum(tl.maximum({0}, 0.0), 6.0)", "gelu": "0.5 * {0} * (1.0 + tl.erf({0} * 0.7071067811865476))",
    "exp": "tl.exp({0})", "log": "tl.log({0})", "abs": "tl.abs({0})", "neg": "-{0}", "sqrt": "tl.sqrt({0})",
    "rsqrt": "tl.rsqrt({0})", "square": "{0} * {0}",
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "max": "tl.maximum({0}, {1})", "min": "tl.minimum({0}, {1})",
}
REDUCE = {"rsum": "tl.sum(tl.where(mask, {0}, 0.0), axis=1)[:, None]",
          "rmean": "(tl.sum(tl.where(mask, {0}, 0.0), axis=1) / N)[:, None]",
          "rmax": "tl.max(tl.where(mask, {0}, float('-inf')), axis=1)[:, None]"}


def space(name: str) -> tuple[dict[str, list[Any]], list[str]]:
    data = yaml.safe_load((SPACES / f"{name}.yaml").read_text())
    return dict(data["params"]), list(data.get("constraints") or [])


def _lit(x: Any) -> str:
    if isinstance(x, float):
        if math.isinf(x):
            return "float('inf')" if x > 0 else "float('-inf')"
        return repr(x)
    return str(x)


def shift(ops: list[Op], k: int) -> list[Op]:
    """ops[k:] as a group of its own: the value of ops[k-1] becomes "v", tK becomes t(K-k)."""
    def ref(a: Any) -> Any:
        if isinstance(a, str) and a.startswith("t"):
            i = int(a[1:])
            return "v" if i == k - 1 else f"t{i - k}"
        return a
    return [Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops[k:]]


def with_bias(ops: list[Op], bias: str) -> list[Op]:
    """A bias add as the first op (`bias` is an operand ref), the others' refs moved up by one."""
    def ref(a: Any) -> Any:
        if a == "v":
            return "t0"
        if isinstance(a, str) and a.startswith("t"):
            return f"t{int(a[1:]) + 1}"
        return a
    return [Op("add", ("v", bias))] + [Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops]


def uses(ops: list[Op]) -> set[str]:
    return {a for op in ops for a in op.args if isinstance(a, str)}


def row_valued(ops: list[Op], operand_kinds: list[str]) -> set[str]:
    """Refs whose value is one per row (reductions and what is computed from them alone)."""
    rows: set[str] = set()
    for i, op in enumerate(ops):
        refs = [a for a in op.args if isinstance(a, str)]
        per_row = [a in rows or (a.startswith("p") and operand_kinds[int(a[1:])] == "row") for a in refs]
        if op.name in REDUCE or (refs and all(per_row)):
            rows.add(f"t{i}")
    return rows


def body(ops: list[Op], loads: dict[str, str], indent: str = "    ") -> tuple[list[str], str]:
    """Triton lines computing `ops` (operands loaded on first use with `loads[kind]`), and the ref of
    the result ("v" when there are no ops)."""
    lines: list[str] = []
    loaded: set[str] = set()

    def val(a: Any) -> str:
        if isinstance(a, str):
            if a.startswith("p") and a not in loaded:
                loaded.add(a)
                lines.append(f"{indent}{a} = {loads[a].format(ptr=a + '_ptr')}")
            return a
        return _lit(float(a))

    for i, op in enumerate(ops):
        args = [val(a) for a in op.args]
        if op.name in REDUCE:
            expr = REDUCE[op.name].format(*args)
        elif op.name == "clamp":
            lo, hi = op.const
            expr = args[0]
            expr = expr if lo is None else f"tl.maximum({expr}, {_lit(lo)})"
            expr = expr if hi is None else f"tl.minimum({expr}, {_lit(hi)})"
        elif op.name == "leaky_relu":
            expr = f"tl.where({args[0]} >= 0.0, {args[0]}, {args[0]} * {_lit(op.const[0])})"
        elif op.name == "gelu_tanh":
            lines.append(f"{indent}u{i} = 0.7978845608028654 * ({args[0]} + 0.044715 * {args[0]} * {args[0]} * {args[0]})")
            expr = f"0.5 * {args[0]} * (1.0 + {EXPR['tanh'].format(f'u{i}')})"
        elif op.name == "pool":
            raise ValueError("pool ops are lowered by the pool template")
        else:
            expr = EXPR[op.name].format(*args)
        lines.append(f"{indent}t{i} = {expr}")
    return lines, (f"t{len(ops) - 1}" if ops else "v")


def ptr_params(n: int) -> str:
    return "".join(f" p{j}_ptr," for j in range(n))


def loads_for(template: str, kinds: list[str]) -> dict[str, str]:
    """How each operand is loaded in a template, by its broadcast kind."""
    table = {
        "gemm": {"col": "tl.load({ptr} + rn, mask=rn < N, other=0.0)[None, :]",
                 "row": "tl.load({ptr} + row, mask=rm < M, other=0.0)[:, None]",
                 "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
        "conv": {"chan": "tl.load({ptr} + rn, mask=n_ok, other=0.0)[None, :]",
                 "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
        "rowwise": {"col": "tl.load({ptr} + rn, mask=cmask, other=0.0)[None, :]",
                    "row": "tl.load({ptr} + rm, mask=rmask, other=0.0)[:, None]",
                    "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
        "elementwise": {"col": "tl.load({ptr} + offs % N, mask=mask, other=0.0)",
                        "chan": "tl.load({ptr} + (offs // HW) % C, mask=mask, other=0.0)",
                        "row": "tl.load({ptr} + offs // N, mask=mask, other=0.0)",
                        "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
        "pool": {"chan": "tl.load({ptr} + chan, mask=mask, other=0.0)",
                 "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
    }[template]
    return {f"p{j}": table[k] for j, k in enumerate(kinds) if k in table}


def supports(template: str, ops: list[Op], kinds: list[str]) -> bool:
    loads = loads_for(template, kinds)
    refs = uses(ops)
    if any(r.startswith("p") and r not in loads for r in refs):
        return False
    reductions = any(op.name in REDUCE for op in ops)
    return not reductions or template == "rowwise"


# --- kernel texts ------------------------------------------------------------------------------------------
# The tile of one program in grouped order, shared by the GEMM and conv kernels: tiles run in groups
# of GROUP_M rows so that the A rows stay in L2 while the columns sweep.
_GROUPED_TILES = """\
    per_group = GROUP_M * grid_n
    first_m = (pid // per_group) * GROUP_M
    size_m = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % size_m
    pid_n = (pid % per_group) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)"""


def _with_grouped_tiles(text: str) -> Template:
    return Template(Template(text).safe_substitute(grouped_tiles=_GROUPED_TILES))


GEMM = _with_grouped_tiles('''
@triton.jit
def $name(a_ptr, b_ptr, c_ptr,$ptrs$stats_ptrs M, N, K, B1, s_a0, s_a1, s_am, s_ak, s_b0, s_b1, s_bk, s_bn,
          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
          SPLIT_K: tl.constexpr, EVEN_K: tl.constexpr, PRECISION: tl.constexpr):
    # One BLOCK_M x BLOCK_N tile of C = A @ B per program, batch on axis 1, K split on axis 2.
    # Tiles run in groups of GROUP_M rows so the A rows stay in L2 while the columns sweep.
    pid = tl.program_id(0)
    bid = tl.program_id(1)
    kid = tl.program_id(2)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
$grouped_tiles
    # Past the edges, rows and columns read row/column 0 (never stored): no M/N masks in the loop.
    am = tl.where(rm < M, rm, 0)
    bn = tl.where(rn < N, rn, 0)
    b0 = (bid // B1).to(tl.int64)
    b1 = (bid % B1).to(tl.int64)
    k_len = tl.cdiv(K, SPLIT_K * BLOCK_K) * BLOCK_K
    k_lo = kid * k_len
    a_ptrs = a_ptr + b0 * s_a0 + b1 * s_a1 + am[:, None] * s_am + (k_lo + rk)[None, :] * s_ak
    b_ptrs = b_ptr + b0 * s_b0 + b1 * s_b1 + (k_lo + rk)[:, None] * s_bk + bn[None, :] * s_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, k_len, BLOCK_K):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_ok = (k_lo + k + rk) < K
            a = tl.load(a_ptrs, mask=k_ok[None, :], other=0.0)
            b = tl.load(b_ptrs, mask=k_ok[:, None], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K * s_ak
        b_ptrs += BLOCK_K * s_bk
    mask = (rm < M)[:, None] & (rn < N)[None, :]
    row = bid * M + rm
    offs = bid.to(tl.int64) * M * N + rm[:, None] * N + rn[None, :]
    v = acc
    if SPLIT_K == 1:
$body
$stats
$store
    else:
        tl.store(c_ptr + kid.to(tl.int64) * tl.num_programs(1) * M * N + offs, v, mask=mask)
''')

GEMM_STORE = "        tl.store(c_ptr + offs, {out}, mask=mask)"
# A row sum/mean of the epilogue's value, accumulated across the column tiles.
GEMM_ROW_REDUCE = "        tl.atomic_add(c_ptr + row, tl.sum(tl.where(mask, {out}, 0.0), axis=1){scale}, mask=rm < M)"

CONV = _with_grouped_tiles('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs$stats_ptrs NB, C, H, W, CO, OH, OW, CP, s_xn, s_xc, s_xh, s_xw,
          SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, DH: tl.constexpr,
          DW: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
          BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PRECISION: tl.constexpr):
    # Implicit GEMM: M = output pixels (n, oh, ow), N = output channels, K = (kh, kw, c) with c
    # padded to CP (a multiple of BLOCK_K) so that one K block never spans two filter taps.
    pid = tl.program_id(0)
    M = NB * OH * OW
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(CO, BLOCK_N)
$grouped_tiles
    m_ok = rm < M
    n_ok = rn < CO
    ohw = OH * OW
    img = rm // ohw
    pix = rm % ohw
    oh = pix // OW
    ow = pix % OW
    x_img = x_ptr + img.to(tl.int64) * s_xn
    w_rows = w_ptr + tl.where(n_ok, rn, 0)[None, :] * (KH * KW * C)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kk in range(0, KH * KW * CP, BLOCK_K):
        tap = kk // CP
        c = kk - tap * CP + rk
        kh = tap // KW
        kw = tap - kh * KW
        ih = oh * SH - PH + kh * DH
        iw = ow * SW - PW + kw * DW
        ok = m_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        c_ok = c < C
        a = tl.load(x_img[:, None] + (ih * s_xh + iw * s_xw)[:, None] + c[None, :] * s_xc,
                    mask=ok[:, None] & c_ok[None, :], other=0.0)
        b = tl.load(w_rows + (tap * C + c)[:, None], mask=c_ok[:, None], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * ohw + pix)[:, None] + rn[None, :] * ohw
    v = acc
$body
$stats
    tl.store(c_ptr + offs, $out, mask=mask)
''')

# Per-tile column statistics of an anchor's output for a BatchNorm after it: (count, mean, M2) per
# BLOCK_M rows, combined later with Chan's formula (stable whatever the mean).
STATS_PTRS = " st_mean_ptr, st_m2_ptr, st_cnt_ptr,"
STATS = """{i}sv = tl.where(mask, {out}, 0.0)
{i}cnt = tl.sum(tl.where(rm < M, 1.0, 0.0), axis=0)
{i}tmean = tl.sum(sv, axis=0) / cnt
{i}dv = tl.where(mask, {out} - tmean[None, :], 0.0)
{i}tl.store(st_mean_ptr + pid_m * {ncols} + rn, tmean, mask=rn < {ncols})
{i}tl.store(st_m2_ptr + pid_m * {ncols} + rn, tl.sum(dv * dv, axis=0), mask=rn < {ncols})
{i}tl.store(st_cnt_ptr + pid_m, cnt)"""

# The same statistics for a tensor made elsewhere (cuDNN, cuBLAS, an input), viewed as [R, C, S].
CHAN_STATS = Template('''
@triton.jit
def $name(x_ptr, mean_ptr, m2_ptr, cnt_ptr, R, C, S: tl.constexpr, BLOCK: tl.constexpr):
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    j = chunk * BLOCK + tl.arange(0, BLOCK)
    ok = j < R * S
    r = j // S
    x = tl.load(x_ptr + (r * C + c).to(tl.int64) * S + (j - r * S), mask=ok, other=0.0)
    cnt = tl.sum(tl.where(ok, 1.0, 0.0), axis=0)
    mean = tl.sum(x, axis=0) / cnt
    d = tl.where(ok, x - mean, 0.0)
    tl.store(mean_ptr + chunk * C + c, mean)
    tl.store(m2_ptr + chunk * C + c, tl.sum(d * d, axis=0))
    tl.store(cnt_ptr + chunk, cnt)
''')

ROWWISE = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs R, N, s_xr, SPLIT: tl.constexpr, ROWS: tl.constexpr, BLOCK_N: tl.constexpr):
    # ROWS rows per program, each row whole in registers: every reduction is over axis 1.
    rm = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    rn = tl.arange(0, BLOCK_N)
    rmask = rm < R
    cmask = rn < N
    mask = rmask[:, None] & cmask[None, :]
    offs = rm.to(tl.int64)[:, None] * N + rn[None, :]
    x_offs = rm.to(tl.int64)[:, None] * s_xr + rn[None, :]
    v = tl.load(x_ptr + x_offs, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLIT):
        v += tl.load(x_ptr + s * R * N + x_offs, mask=mask, other=0.0)
$body
$store
''')
ROW_STORE_FULL = "    tl.store(out_ptr + offs, {out}, mask=mask)"
ROW_STORE_ROW = "    tl.store(out_ptr + rm[:, None], {out}, mask=rmask[:, None])"

ELEMENTWISE = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs n, N, C, HW, SPLIT: tl.constexpr, BLOCK: tl.constexpr):
    # int32 offsets: `n` above 2**31 makes Triton pass it as int64 and the arithmetic follows.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK) + n * 0
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLIT):
        v += tl.load(x_ptr + s * n + offs, mask=mask, other=0.0)
$body
    tl.store(out_ptr + offs, $out, mask=mask)
''')

POOL = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs total, C: tl.constexpr, H: tl.constexpr, W: tl.constexpr, OH: tl.constexpr,
          OW: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
          SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, IS_MAX: tl.constexpr,
          COUNT_PAD: tl.constexpr, BLOCK: tl.constexpr):
    # One output element per lane; the window's elements go through the pre-pool ops one by one.
    # The sizes are compile-time constants: the index divisions become multiplications.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK) + total * 0
    mask = offs < total
    ow = offs % OW
    oh = (offs // OW) % OH
    nc = offs // (OW * OH)
    chan = nc % C
    base = x_ptr + nc * H * W
    if IS_MAX:
        acc = tl.full((BLOCK,), float('-inf'), tl.float32)
    else:
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
    cnt = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            ih = oh * SH - PH + i
            iw = ow * SW - PW + j
            ok = mask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            v = tl.load(base + ih * W + iw, mask=ok, other=0.0)
$pre
            if IS_MAX:
                acc = tl.maximum(acc, tl.where(ok, $pre_out, float('-inf')))
            else:
                acc += tl.where(ok, $pre_out, 0.0)
                cnt += tl.where(ok, 1.0, 0.0)
    if IS_MAX:
        v = acc
    elif COUNT_PAD:
        v = acc / (KH * KW)
    else:
        v = acc / cnt
$post
    tl.store(out_ptr + offs, $out, mask=mask)
''')


def render(template: Template, name: str, n_ptrs: int, **holes: str) -> str:
    holes.setdefault("stats", "")
    holes.setdefault("stats_ptrs", "")
    return template.substitute(name=name, ptrs=ptr_params(n_ptrs), **holes)


# Launch-time helpers every template candidate carries: shared-memory repair of a tuned config
# (so any combination of the merged spaces compiles), split-K choice, row-kernel shapes.
HELPERS = '''
def _fit_stages(bm, bn, bk, stages):
    # Shared memory holds `stages` A and B tiles of fp32; keep them under ~200 KB.
    while stages > 1 and (bm + bn) * bk * 4 * stages > 200000:
        stages -= 1
    return stages


def _split_k(tiles, k, bk):
    # Few output tiles and a long K: split K so that every SM gets work.
    if tiles >= 64 or k < 8 * bk:
        return 1
    split = 1
    while split < 16 and tiles * split * 2 <= 256 and k // (split * 2) >= 4 * bk:
        split *= 2
    return split


def _bn_scale_shift(cnt, mean_t, m2_t, weight, bias, running_mean, running_var, tracked, eps, momentum):
    # Chan's formula over per-tile (count, mean, M2); running statistics updated as BatchNorm does.
    n = cnt.sum()
    mean = (cnt[:, None] * mean_t).sum(0) / n
    var = (m2_t.sum(0) + (cnt[:, None] * (mean_t - mean) ** 2).sum(0)) / n
    if running_mean is not None:
        running_mean.mul_(1.0 - momentum).add_(mean * momentum)
        running_var.mul_(1.0 - momentum).add_(var * (n / (n - 1)) * momentum)
        tracked.add_(1)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return scale.contiguous(), shift.contiguous()


def _row_config(n):
    block_n = triton.next_power_of_2(n)
    rows = max(1, min(64, ROW_TILE // block_n))
    warps = max(1, min(16, rows * block_n // (32 * ROW_PER_THREAD)))
    return block_n, rows, triton.next_power_of_2(warps)
'''
