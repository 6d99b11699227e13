"""C = A @ B (linear, matmul, bmm, addmm) with a fused elementwise epilogue, or a fused row sum/mean
(atomic) of it, or the statistics of a BatchNorm after it; what needs whole rows goes to a chain
template after it.

fp32 inputs go through `tl.dot(..., input_precision=PRECISION)`: "ieee" is plain fp32 FMA,
"tf32x3" the split-precision product (a = hi + lo in TF32; hi*hi + hi*lo + lo*hi) on the tensor
cores, about 2^-22 relative per product, where plain TF32 (2^-11) would not keep fp32 accuracy. The
verifier, not this comment, decides: each precision is a value of the space.

GEMM_TMA (tf32x3 on a device with TMA): B is split once into its TF32 halves as K-major rows (a pass
over B), A in the kernel; tiles come by TMA and each K step's three TF32 products are added to the
tile's sum in fp32 (on an H200, level1/01 and level2/05: 1.09x the pointer kernel, 74-75% of the
tf32x3 roof). Where M or N is under 128 (a GEMM bound by reading one operand) the pointer kernel stays.
"""
from __future__ import annotations

import operator
from string import Template
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .ir import Group, Op, arg, shape_of
from .base import (AnchorTemplate, Chain, Emitted, _with_grouped_tiles, body, operand_lines, prefix, render, shift,
                   uses, with_bias)
from .stats import STATS_ARGS, STATS_PTRS, bn_apply, bn_args, fold_lines, stats_alloc, stats_in_store

GEMM = _with_grouped_tiles('''
@triton.jit
def $name(a_ptr, b_ptr, blo_ptr, c_ptr,$ptrs$stats_ptrs M, N, K, B1, s_a0, s_a1, s_am, s_ak, s_b0, s_b1, s_bk,
          s_bn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
          SPLIT_K: tl.constexpr, EVEN_K: tl.constexpr, PRECISION: tl.constexpr, TMA: tl.constexpr,
          A_T: tl.constexpr):
    # One BLOCK_M x BLOCK_N tile of C = A @ B per program, the batch folded into axis 0 (axis 1
    # would cap it at 65535), K split on axis 1. Tiles run in groups of GROUP_M rows so the A rows
    # stay in L2 while the columns sweep. TMA: tf32x3 from tensor descriptors (a_ptr: A's rows
    # (batch, m) by K, or with A_T A^T's rows, K by M; b_ptr, blo_ptr: B's TF32 halves as rows (batch, n)
    # by K); else pointers.
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    pid = tl.program_id(0) % (grid_m * grid_n)
    bid = tl.program_id(0) // (grid_m * grid_n)
    kid = tl.program_id(1)
$grouped_tiles
    k_len = tl.cdiv(K, SPLIT_K * BLOCK_K) * BLOCK_K
    k_lo = kid * k_len
    if TMA:
        # (rows past a batch's M or N read the next batch's, or zeros: never stored)
        ra = bid * M + pid_m * BLOCK_M
        rb = bid * N + pid_n * BLOCK_N
        acc = _gemm_split_sum(a_ptr, b_ptr, blo_ptr, ra, rb, k_lo, k_len, BLOCK_M, BLOCK_N, BLOCK_K, A_T, False)
        if tl.max((acc != acc).to(tl.int32)) > 0:  # an infinite input (or a NaN): summed again, as fp32 has it
            acc = _gemm_split_sum(a_ptr, b_ptr, blo_ptr, ra, rb, k_lo, k_len, BLOCK_M, BLOCK_N, BLOCK_K, A_T, True)
    else:
        # Past the edges, rows and columns read row/column 0 (never stored): no M/N masks in the loop.
        am = tl.where(rm < M, rm, 0)
        bn = tl.where(rn < N, rn, 0)
        b0 = (bid // B1).to(tl.int64)
        b1 = (bid % B1).to(tl.int64)
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
        tl.store(c_ptr + kid.to(tl.int64) * M * N + offs, v, mask=mask)  # (a K split only on one batch)
''')

# A copy that makes an operand's K dim contiguous: torch's strided copy of a transposed matrix runs at
# a fifth of the copy bandwidth (1.36 ms for 512 MiB on an H200, 2026-12-01), more than the GEMM's own
# time on a long-K A^T B. Tiles are loaded along the source's contiguous dim and stored along the
# destination's; Triton stages each tile through shared memory between the two. SPLIT: the copy as
# its TF32 halves (hi rounded to nearest, lo = x - hi), the operand of the TMA tf32x3 GEMM.
KMAJOR_COPY = Template('''
@triton.jit
def $name(x_ptr, y_ptr, ylo_ptr, R, C, B1, s0, s1, sr, sc, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr,
          SPLIT: tl.constexpr):
    # y[b, r, c] = x[b, r, c], y contiguous: one BLOCK_R x BLOCK_C tile per program, the batch folded
    # into axis 0 (axis 1 would cap it at 65535).
    tiles_c = tl.cdiv(C, BLOCK_C)
    tiles = tl.cdiv(R, BLOCK_R) * tiles_c
    pid = tl.program_id(0)
    bid = pid // tiles
    r = ((pid % tiles) // tiles_c) * BLOCK_R + tl.arange(0, BLOCK_R)
    c = (pid % tiles_c) * BLOCK_C + tl.arange(0, BLOCK_C)
    src = x_ptr + (bid // B1).to(tl.int64) * s0 + (bid % B1).to(tl.int64) * s1
    mask = (r < R)[:, None] & (c < C)[None, :]
    v = tl.load(src + r.to(tl.int64)[:, None] * sr + c.to(tl.int64)[None, :] * sc, mask=mask)
    offs = bid.to(tl.int64) * R * C + r.to(tl.int64)[:, None] * C + c[None, :]
    if SPLIT:  # (lo is NaN where x is infinite: the GEMM's products that meet it are redone)
        hi = _tf32_rn(v)
        tl.store(ylo_ptr + offs, v - hi, mask=mask)
        v = hi
    tl.store(y_ptr + offs, v, mask=mask)


def ${name}_launch(t, block_r=64, block_c=64, warps=4, split=False):
    # A contiguous copy of t (2 to 4 dims; more go to torch's copy), or with split its TF32 halves.
    if t.dim() > 4:
        if not split:
            return t.contiguous()
        t = t.reshape(-1, *t.shape[-2:])
    y = torch.empty(t.shape, device=t.device, dtype=t.dtype)
    lo = torch.empty_like(y) if split else y
    lead = (1,) * (4 - t.dim()) + tuple(t.shape[:-2])
    strides = (0,) * (4 - t.dim()) + tuple(t.stride()[:-2])
    R, C = t.shape[-2], t.shape[-1]
    if y.numel():
        grid = (_cdiv(R, block_r) * _cdiv(C, block_c) * lead[0] * lead[1],)
        _launch($name, grid,
                t, y, lo, R, C, lead[1], *strides, t.stride(-2), t.stride(-1), BLOCK_R=block_r, BLOCK_C=block_c,
                SPLIT=split, num_warps=warps)
    return (y, lo) if split else y
''')

# A tile of the TMA tf32x3 GEMM's products (the same text from every GEMM: the candidate carries it once).
GEMM_SPLIT_SUM = '''
@triton.jit
def _gemm_split_sum(a_desc, bhi_desc, blo_desc, ra, rb, k_lo, k_len, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_K: tl.constexpr, A_T: tl.constexpr, DROP_NAN: tl.constexpr):
    # A @ B over [k_lo, k_lo + k_len) in tf32x3 from TMA tiles: B's TF32 halves as split by the launcher,
    # A's split here (its hi rounded to nearest, lo = a - hi). Each K step's three TF32 products are
    # summed by the tensor cores apart from the tile's sum, then added to it in fp32: their own
    # accumulation into a running sum drifts with K (25x eager's error at K = 4096 on an H200; RESULTS
    # "2026-12-03 (GEMM schedules)"). DROP_NAN: a NaN of a step's small products (an infinite input
    # meeting a lo, which is NaN) dropped before its big product, as Triton's own tf32x3 does. A_T: A's
    # boxes come K by M from A^T as it lies and reach the products transposed, through registers.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(k_lo, k_lo + k_len, BLOCK_K):
        if A_T:
            a = a_desc.load([k, ra]).T
        else:
            a = a_desc.load([ra, k])
        ah = _tf32_rn(a)
        al = a - ah
        bh = bhi_desc.load([rb, k]).T
        bl = blo_desc.load([rb, k]).T
        part = tl.dot(al, bh, input_precision="tf32")
        part = tl.dot(ah, bl, part, input_precision="tf32")
        if DROP_NAN:
            part = tl.where(part == part, part, 0.0)
        acc += tl.dot(ah, bh, part, input_precision="tf32")
    return acc
'''

GEMM_STORE = "        tl.store(c_ptr + offs, {out}, mask=mask)"
# A row sum/mean of the epilogue's value, accumulated across the column tiles.
GEMM_ROW_REDUCE = "        tl.atomic_add(c_ptr + row, tl.sum(tl.where(mask, {out}, 0.0), axis=1){scale}, mask=rm < M)"


def gemm_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """A GEMM anchor: {"a", "b", "b_nk" (b is a [N, K] weight), "bias" (a column operand or None)}."""
    if node.op == "call_module" and type(modules.get(node.target)) is nn.Linear:
        lin = modules[node.target]
        bias = f"attr:{node.target}.bias" if lin.bias is not None else None
        return {"a": node.args[0], "b": f"attr:{node.target}.weight", "b_nk": True, "bias": bias}
    if node.op == "call_function" and node.target is F.linear:
        return {"a": node.args[0], "b": arg(node, 1, "weight"), "b_nk": True, "bias": arg(node, 2, "bias")}
    is_mm = (node.op == "call_function" and node.target in (operator.matmul, torch.matmul, torch.mm, torch.bmm)) or (
        node.op == "call_method" and node.target in ("matmul", "mm", "bmm"))
    if is_mm and len(node.args) == 2 and not node.kwargs:
        a, b = node.args
        sa, sb = shape_of(a), shape_of(b)
        if sa is None or sb is None:
            return None
        if len(sa) >= 2 and len(sb) == 2 and sa[-1] == sb[0]:
            return {"a": a, "b": b, "b_nk": False, "bias": None}
        if len(sa) == len(sb) in (3, 4) and sa[:-2] == sb[:-2] and sa[-1] == sb[-2]:
            return {"a": a, "b": b, "b_nk": False, "bias": None}
    if node.op == "call_function" and node.target is torch.addmm and not node.kwargs:
        bias, a, b = node.args
        out = shape_of(node)
        if out is not None and shape_of(bias) in ((out[-1],), out):
            return {"a": a, "b": b, "b_nk": False, "bias": bias}
    return None


def fold_bias(group: Group) -> tuple[Any, list[Op], str | None]:
    """The GEMM's bias (its own, or an add of a column vector right after it), the other ops, and
    the operand ref of a folded add (None for the GEMM's own bias)."""
    bias = group.source.get("bias")
    ops = group.ops
    if bias is None and ops and ops[0].name == "add" and "v" in ops[0].args and "v" not in uses(ops[1:]):
        other = ops[0].args[1] if ops[0].args[0] == "v" else ops[0].args[0]
        if isinstance(other, str) and other.startswith("p") and group.operands[int(other[1:])].kind == "col":
            return group.operands[int(other[1:])].node, shift(ops, 1), other
    return bias, ops, None


def _layout(group: Group) -> list[str] | None:
    """Lines binding a2/b, M, N, K, batch sizes and strides for the GEMM kernel; None if unsupported."""
    src = group.source
    sa = shape_of(src["a"]) if isinstance(src["a"], fx.Node) else None
    if sa is None:
        return None
    if src["b_nk"] or len(sa) == 2 or isinstance(src["b"], str) or len(shape_of(src["b"]) or ()) == 2:
        bt = "b.stride(1), b.stride(0)" if src["b_nk"] else "b.stride(0), b.stride(1)"
        n = "b.shape[0]" if src["b_nk"] else "b.shape[1]"
        return ["    lead = a.shape[:-1]", "    a = a.reshape(-1, a.shape[-1])", "    M, K = a.shape",
                f"    N = {n}", "    B0, B1 = 1, 1", "    s_a = (0, 0, a.stride(0), a.stride(1))",
                f"    s_b = (0, 0, {bt})", "    out_shape = (*lead, N)"]
    if len(sa) == 3:
        return ["    B0, M, K = a.shape", "    N = b.shape[2]", "    B1 = 1",
                "    s_a = (a.stride(0), 0, a.stride(1), a.stride(2))",
                "    s_b = (b.stride(0), 0, b.stride(1), b.stride(2))", "    out_shape = (B0, M, N)"]
    return ["    B0, B1, M, K = a.shape", "    N = b.shape[3]",
            "    s_a = (a.stride(0), a.stride(1), a.stride(2), a.stride(3))",
            "    s_b = (b.stride(0), b.stride(1), b.stride(2), b.stride(3))", "    out_shape = (B0, B1, M, N)"]


def _emit(k: int, group: Group, t: AnchorTemplate, chain: Chain) -> Emitted | None:
    layout = _layout(group)
    if layout is None:
        return None
    bias, ops, folded = fold_bias(group)
    kinds = [o.kind for o in group.operands]
    args: list[Any] = [group.source["a"], group.source["b"]] + [o.node for o in group.operands]
    if folded is not None:
        ops = with_bias(ops, folded)
    elif bias is not None:
        bshape = shape_of(bias) if isinstance(bias, fx.Node) else None
        kinds.append("full" if bshape is not None and len(bshape) == 2 else "col")
        args.append(bias)
        ops = with_bias(ops, f"p{len(kinds) - 1}")
    head = prefix(ops, t, kinds)
    rest = shift(ops, head) if head < len(ops) else []
    bn = rest[0] if rest and rest[0].name == "bn" else None
    if bn is not None and len(group.shape) != 2:
        return None
    n_ops = len(kinds)
    params = ", ".join(["a", "b"] + [f"p{j}" for j in range(n_ops)])
    if bn is not None:
        bn_arg_list, bn_params, bn_finish = bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
    name = f"_gemm_{k}"
    lines, out = body(ops[:head], t.loads_for(kinds), indent=" " * 8)
    row_reduce = len(rest) == 1 and rest[0].name in ("rsum", "rmean") and rest[0].args == ("v",)
    if row_reduce:
        store = GEMM_ROW_REDUCE.format(out=out, scale=" / N" if rest[0].name == "rmean" else "")
    else:
        store = GEMM_STORE.format(out=out)
    # A BatchNorm after the GEMM: its statistics from the store (training), or, in eval mode, its
    # scale and shift and what follows applied there (`fold`), no pass of their own.
    fold = fold_lines(rest, kinds, t, out, "col", " " * 8) if bn is not None and not row_reduce else None
    stats = stats_in_store(" " * 8, out, "N", "pid_m", "rm < M") + ("\n" + fold if fold else "") \
        if bn is not None else ""
    kernels = [render(GEMM, name, len(kinds) + (2 if bn is not None else 0), body="\n".join(lines) or "        pass",
                      store=store, stats=stats, stats_ptrs=STATS_PTRS + " FOLD: tl.constexpr," if bn is not None else "")]
    ptrs = "".join(f"p{j}, " for j in range(len(kinds)))
    if bn is not None:
        ptrs += f"p{len(kinds)}, p{len(kinds) + 1}, " + STATS_ARGS + "fold, "
    copy = "_kmajor_copy"  # the same text from every GEMM: the candidate carries it once
    kernels += [KMAJOR_COPY.substitute(name=copy), GEMM_SPLIT_SUM]
    b_rows = "b" if group.source["b_nk"] else "b.transpose(-1, -2)"  # B as rows (batch, n) by K
    n_expr = "b.shape[0]" if group.source["b_nk"] else "b.shape[-1]"
    kmajor = ["    # tf32x3 by TMA where the device has it (GEMM_TMA): B split once into its TF32 halves as",
              "    # K-major rows (one pass over B, which makes its K-major copy too), A split in the kernel;",
              "    # where M and N fill 128-wide tiles (level1/05, N = 4, bound by reading A: the pointer kernel",
              "    # 1.0414 ms on 2026-11-30, this one 1.2273 on 2026-12-03, H200).",
              "    tma = GEMM_TMA and PRECISION == 'tf32x3' and _tma_ok(a) \\",
              f"        and min(a.numel() // max(1, a.shape[-1]) if b.dim() == 2 else a.shape[-2], {n_expr}) >= 128",
              "    # A^T B (a 2-D A whose M dim is contiguous): A's boxes by TMA from A^T as it lies, transposed in",
              "    # registers, no K-major copy (level1/03: 1.7770 ms against 2.0319 with the copy, 2026-12-03, H200).",
              "    a_t = tma and a.dim() == 2 and a.stride(0) == 1 and a.shape[0] % 4 == 0",
              "    # tf32 tensor-core products read both operands K-major: copy an operand that is not.",
              "    if GEMM_KMAJOR and a.stride(-1) != 1 and not a_t:", f"        a = {copy}_launch(a)",
              "    tma = tma and (a_t or (a.stride(-1) == 1 and a.shape[-1] % 4 == 0))"]
    if group.source["b_nk"]:
        kmajor += ["    if not tma and GEMM_KMAJOR and b.stride(-1) != 1:", f"        b = {copy}_launch(b)"]
    else:
        kmajor += ["    if not tma and GEMM_KMAJOR and b.stride(-2) != 1:",
                   f"        b = {copy}_launch(b.transpose(-1, -2)).transpose(-1, -2)"]
    code = [f"def _f{k}({params}):"] + operand_lines(kinds) + kmajor + layout + [
        "    if tma:  # A's rows (batch, m) by K as one matrix, or A^T's, K by M; row strides of 16 bytes",
        "        a2 = a.T if a_t else a.reshape(-1, K)",
        "        tma = a2.stride(0) % 4 == 0 and a2.stride(1) == 1 and _tma_ok(a2)",
        "    # Tiles no larger than the matrix (a narrow N would leave most of a wide tile idle). By TMA, K steps",
        "    # of 32: three stages of A and both B halves fit; 64 ran at 53-57% of the roof (2026-12-03).",
        "    bm, bn = min(BLOCK_M, max(16, _pow2(M))), min(BLOCK_N, max(16, _pow2(N)))",
        "    bk = min(BLOCK_K, 32) if tma else BLOCK_K",
        "    tiles = _cdiv(M, bm) * _cdiv(N, bn)",
        "    split = 1" if rest else "    split = _split_k(tiles, K, bk) if B0 * B1 == 1 else 1",
    ]
    if row_reduce:
        shape = "lead" if rest[0].const == ("squeeze",) else "(*lead, 1)"
        code.append(f"    c = torch.zeros({shape}, device=a.device, dtype=torch.float32)")
    else:
        code.append("    c = torch.empty((split, *out_shape) if split > 1 else out_shape, device=a.device, "
                    "dtype=torch.float32)")
    if bn is not None:
        code += stats_alloc("_cdiv(M, bm)", "N", "a.device") + [
            f"    fold = {'not stats' if fold else 'False'}  # the BatchNorm in the store (eval)",
            f"    p{n_ops}, p{n_ops + 1} = {bn_finish} if fold else (c, c)"]
    launch = ("(tiles * B0 * B1, split), {}, c, " + ptrs + "M, N, K, B1, *s_a, *s_b, BLOCK_M=bm, BLOCK_N=bn, "
              "BLOCK_K=bk, GROUP_M=GROUP_M, SPLIT_K=split, EVEN_K=K % (bk * split) == 0, PRECISION=PRECISION, "
              "num_warps=GEMM_WARPS, num_stages=_fit_stages(bm, {}, bk, GEMM_STAGES), TMA={}, A_T={})")
    code += ["    if tma:",
             f"        bh, bl = {copy}_launch({b_rows}, split=True)",
             f"        _launch({name}, " + launch.format("_descriptor(a2, [bk, bm] if a_t else [bm, bk]), _descriptor(bh.reshape(-1, K), "
                                                        "[bn, bk]), _descriptor(bl.reshape(-1, K), [bn, bk])",
                                                        "2 * bn", "True", "a_t"),
             "    else:",
             f"        _launch({name}, " + launch.format("a, b, b", "bn", "False", "False")]
    spaces = {"gemm"}
    if bn is not None:  # statistics came with the GEMM; one pass applies them and the rest
        _, rest, kinds = bn_apply(rest, kinds, "col")
        code += ["    if fold:", "        return c", f"    p{n_ops}, p{n_ops + 1} = {bn_finish}"]
    if rest and not row_reduce:  # a row kernel (or the BatchNorm apply) for what needs whole rows
        chained = chain(f"_row_{k}", rest, kinds, "c", group.shape)
        if chained is None:
            return None
        kernels.append(chained[0])
        code += chained[1] + ["    return out"]
    elif row_reduce:
        code.append("    return c")
    else:
        # After a K split the partial products are summed by the elementwise template, epilogue included.
        chained = chain(f"_ew_{k}", ops, kinds, "c", group.shape, split="split")
        if chained is None:
            return None
        kernels.append(chained[0])
        code += ["    if split == 1:", "        return c"] + chained[1] + ["    return out"]
    return Emitted(args, kernels, "\n".join(code) + "\n", spaces)


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 24)
    def forward(self, x):
        return torch.clamp(F.silu(self.linear(x) * 0.5), min=-0.2, max=0.4)
def get_inputs():
    return [torch.randn(3, 10, 40)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=GEMM, example=EXAMPLE, example_rules=('triton_gemm',), example_params={'BLOCK_M': 16, 'BLOCK_N': 16, 'BLOCK_K': 16},
    name="gemm", rule="triton_gemm", prior=5.0, kind="gemm", pattern=gemm_source, emitter=_emit,
    params={"BLOCK_M": [128, 64, 256], "BLOCK_N": [128, 64, 256], "BLOCK_K": [64, 32, 16], "GROUP_M": [8, 4, 16],
            "GEMM_WARPS": [8, 4], "GEMM_STAGES": [3, 4, 2], "PRECISION": ["tf32x3", "ieee"],
            # Copy an operand whose K dim is not contiguous first (tf32 tensor-core reads want K-major;
            # by TMA, B is split into K-major halves anyway and a 2-D A^T is read as it lies).
            "GEMM_KMAJOR": [True, False],
            # tf32x3 from TMA tiles, B split once (on devices with TMA; elsewhere the pointer kernel).
            "GEMM_TMA": [True, False]},
    constraints=[
        "BLOCK_M * BLOCK_N <= 128 * 32 * GEMM_WARPS",  # fp32 accumulators stay in registers (no spills)
        "(BLOCK_M + BLOCK_N) * BLOCK_K * 4 * GEMM_STAGES <= 200000",  # every stage's tiles fit in shared memory
    ],
    loads={"col": "tl.load({ptr} + rn, mask=rn < N, other=0.0)[None, :]",
           "row": "tl.load({ptr} + row, mask=rm < M, other=0.0)[:, None]",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"})
