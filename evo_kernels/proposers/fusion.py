"""Fusion candidates: the traced forward, rewritten so that each matched group is one generated call.

`build(problem, options)` traces the reference (fx_patterns), applies the graph rewrites the options
ask for (rewrites.py: SDPA for hand-written attention, average pooling as a convolution), matches the
groups, and replaces each group it can emit by a call to a helper `_fK` that launches one to three
Triton kernels from templates.py. The candidate is the problem's code plus `ModelNew(Model)` whose
forward is the rewritten graph's code: it keeps the reference's modules and parameter names, so it
receives the reference's weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from .. import fx_patterns as fxp
from . import rewrites
from . import templates as T


@dataclass(frozen=True)
class Options:
    gemm: bool = False  # GEMM groups through the Triton GEMM template (epilogue fused)
    conv: bool = False  # Conv2d groups through the implicit-GEMM template
    chains: bool = False  # library GEMM/conv + one Triton kernel for the chain; anchor-free chains
    addmm: bool = False  # a bias add after a GEMM folded into torch.addmm (no Triton)
    sdpa: bool = False  # softmax(q k^T * s [masked]) v as scaled_dot_product_attention
    avgpool_conv: bool = False  # AvgPool2d as a depthwise convolution (cuDNN)


# --- emitting one group -------------------------------------------------------------------------------------
@dataclass
class Emitted:
    args: list[Any]  # graph nodes or "attr:..." strings, in the helper's parameter order
    kernels: list[str]
    helper: str
    spaces: set[str]


def _fold_bias(group: fxp.Group) -> tuple[Any, list[fxp.Op], str | None]:
    """The GEMM's bias (its own, or an add of a column vector right after it), the other ops, and
    the operand ref of a folded add (None for the GEMM's own bias)."""
    bias = group.source.get("bias")
    ops = group.ops
    if bias is None and ops and ops[0].name == "add" and "v" in ops[0].args and "v" not in T.uses(ops[1:]):
        other = ops[0].args[1] if ops[0].args[0] == "v" else ops[0].args[0]
        if isinstance(other, str) and other.startswith("p") and group.operands[int(other[1:])].kind == "col":
            return group.operands[int(other[1:])].node, T.shift(ops, 1), other
    return bias, ops, None


def _prefix(ops: list[fxp.Op], template: str, kinds: list[str]) -> int:
    """The longest head of `ops` an anchor's epilogue can take: elementwise, its operands loadable
    there, and nothing after it reading any of its values but the last."""
    for k in range(len(ops), -1, -1):
        head, rest = ops[:k], ops[k:]
        if any(op.name in T.REDUCE or op.name in ("pool", "bn") for op in head) or not T.supports(template, head, kinds):
            continue
        inner = {"v"} | {f"t{i}" for i in range(k - 1)} if k else set()
        if not (T.uses(rest) & inner):
            return k
    return 0


def _bn_apply(ops: list[fxp.Op], kinds: list[str], chan: str) -> tuple[fxp.Op, list[fxp.Op], list[str]]:
    """A leading BatchNorm as two more operands (per-channel scale and shift) and two ops on them."""
    n = len(kinds)

    def ref(a: Any) -> Any:
        return f"t{int(a[1:]) + 1}" if isinstance(a, str) and a.startswith("t") else a
    apply = [fxp.Op("mul", ("v", f"p{n}")), fxp.Op("add", ("t0", f"p{n + 1}"))]
    apply += [fxp.Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops[1:]]
    return ops[0], apply, kinds + [chan, chan]


def _bn_args(bn: fxp.Op) -> tuple[list[Any], str, str]:
    """The BatchNorm's tensors as helper arguments, their parameter names, and the finishing line."""
    target, eps, momentum, affine, track = bn.const
    names = ["bn_w", "bn_b", "bn_rm", "bn_rv", "bn_nbt"]
    attrs = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    args = [f"attr:{target}.{a}" if (affine if i < 2 else track) else None for i, a in enumerate(attrs)]
    return args, ", ".join(names), f"_bn_scale_shift(st_cnt, st_mean, st_m2, {', '.join(names)}, {eps!r}, {momentum!r})"


def _stats_kernel_lines(name: str, y: str, ndim: int) -> list[str]:
    r, c, sz = (f"{y}.shape[0]", f"{y}.shape[1]", f"{y}[0, 0].numel()") if ndim == 4 else \
        (f"{y}.shape[0]", f"{y}.shape[1]", "1")
    return [f"    st_r, st_c, st_s = {r}, {c}, {sz}",
            "    chunks = triton.cdiv(st_r * st_s, 4096)",
            f"    st_mean = torch.empty((chunks, st_c), device={y}.device, dtype=torch.float32)",
            "    st_m2 = torch.empty_like(st_mean)",
            f"    st_cnt = torch.empty((chunks,), device={y}.device, dtype=torch.float32)",
            f"    {name}[(st_c, chunks)]({y}, st_mean, st_m2, st_cnt, st_r, st_c, S=st_s, BLOCK=4096, num_warps=8)"]


def _chain(name: str, ops: list[fxp.Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> tuple[str, list[str], str] | None:
    """One kernel for `ops` on the tensor named `y`: (kernel source, launch lines, result name)."""
    nptr = len(kinds)
    ptrs = "".join(f"p{j}, " for j in range(nptr))
    pool_at = next((i for i, op in enumerate(ops) if op.name == "pool"), None)
    if pool_at is not None:
        pre, post = ops[:pool_at], T.shift(ops, pool_at + 1)
        pool = ops[pool_at]
        if pool.args[0] != (f"t{pool_at - 1}" if pool_at else "v") or any(
                kinds[int(r[1:])] != "chan" for r in T.uses(pre) if r.startswith("p")):
            return None
        if not T.supports("pool", post, kinds):
            return None
        pre_lines, pre_out = T.body(pre, T.loads_for("pool", kinds), indent=" " * 12)
        post_lines, out = T.body(post, T.loads_for("pool", kinds))
        kernel = T.render(T.POOL, name, nptr, pre="\n".join(pre_lines), pre_out=pre_out,
                          post="\n".join(post_lines), out=out)
        mode, (kh, kw), (sh, sw), (ph, pw), count_pad, _ = pool.const
        launch = [
            f"    nb, c, h, w = {y}.shape",
            f"    oh, ow = (h + {2 * ph} - {kh}) // {sh} + 1, (w + {2 * pw} - {kw}) // {sw} + 1",
            f"    out = torch.empty((nb, c, oh, ow), device={y}.device, dtype=torch.float32)",
            f"    {name}[(triton.cdiv(out.numel(), EW_BLOCK),)]({y}, out, {ptrs}out.numel(), c, h, w, oh, ow, "
            f"KH={kh}, KW={kw}, SH={sh}, SW={sw}, PH={ph}, PW={pw}, IS_MAX={mode == 'max'}, "
            f"COUNT_PAD={count_pad}, BLOCK=EW_BLOCK, num_warps=EW_WARPS)",
        ]
        return kernel, launch, "out"
    if any(op.name in T.REDUCE for op in ops):
        if not T.supports("rowwise", ops, kinds) or full_shape[-1] > 65536:
            return None  # (a row is held whole in registers: at most 64 Ki elements)
        lines, out = T.body(ops, T.loads_for("rowwise", kinds))
        per_row = out in T.row_valued(ops, kinds)
        if not per_row and out != "v" and any(op.const == ("squeeze",) for op in ops):
            return None
        store = (T.ROW_STORE_ROW if per_row else T.ROW_STORE_FULL).format(out=out)
        kernel = T.render(T.ROWWISE, name, nptr, body="\n".join(lines), store=store)
        squeeze = ops[-1].const == ("squeeze",)
        shape = (f"{y}.shape[:-1]" if squeeze else f"(*{y}.shape[:-1], 1)") if per_row else f"{y}.shape"
        launch = [
            f"    n = {y}.shape[-1]",
            f"    r = {y}.numel() // n",
            f"    out = torch.empty({shape}, device={y}.device, dtype=torch.float32)",
            "    block_n, rows, warps = _row_config(n)",
            f"    {name}[(triton.cdiv(r, rows),)]({y}, out, {ptrs}r, n, n, SPLIT=1, ROWS=rows, BLOCK_N=block_n, "
            "num_warps=warps)",
        ]
        return kernel, launch, "out"
    if not T.supports("elementwise", ops, kinds):
        return None
    lines, out = T.body(ops, T.loads_for("elementwise", kinds))
    kernel = T.render(T.ELEMENTWISE, name, nptr, body="\n".join(lines), out=out)
    chan = (f"{y}.shape[1], {y}[0, 0].numel()" if len(full_shape) >= 3 else "1, 1")
    launch = [
        f"    out = torch.empty({y}.shape[-{len(full_shape)}:], device={y}.device, dtype=torch.float32)",
        f"    n = out.numel()",
        f"    {name}[(triton.cdiv(n, EW_BLOCK),)]({y}, out, {ptrs}n, out.shape[-1], {chan}, SPLIT={split}, "
        "BLOCK=EW_BLOCK, num_warps=EW_WARPS)",
    ]
    return kernel, launch, "out"


def _operand_lines(kinds: list[str]) -> list[str]:
    return [f"    p{j} = p{j}.contiguous()" for j in range(len(kinds))]


def _gemm_layout(group: fxp.Group) -> list[str] | None:
    """Lines binding a2/b, M, N, K, batch sizes and strides for the GEMM kernel; None if unsupported."""
    src = group.source
    sa = fxp._shape(src["a"]) if isinstance(src["a"], fx.Node) else None
    if sa is None:
        return None
    if src["b_nk"] or len(sa) == 2 or isinstance(src["b"], str) or len(fxp._shape(src["b"]) or ()) == 2:
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


def _emit_gemm_triton(k: int, group: fxp.Group) -> Emitted | None:
    layout = _gemm_layout(group)
    if layout is None:
        return None
    bias, ops, folded = _fold_bias(group)
    kinds = [o.kind for o in group.operands]
    args: list[Any] = [group.source["a"], group.source["b"]] + [o.node for o in group.operands]
    if folded is not None:
        ops = T.with_bias(ops, folded)
    elif bias is not None:
        bshape = fxp._shape(bias) if isinstance(bias, fx.Node) else None
        kinds.append("full" if bshape is not None and len(bshape) == 2 else "col")
        args.append(bias)
        ops = T.with_bias(ops, f"p{len(kinds) - 1}")
    head = _prefix(ops, "gemm", kinds)
    rest = T.shift(ops, head) if head < len(ops) else []
    bn = rest[0] if rest and rest[0].name == "bn" else None
    if bn is not None and len(group.shape) != 2:
        return None
    n_ops = len(kinds)
    params = ", ".join(["a", "b"] + [f"p{j}" for j in range(n_ops)])
    if bn is not None:
        bn_arg_list, bn_params, bn_finish = _bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
    name = f"_gemm_{k}"
    lines, out = T.body(ops[:head], T.loads_for("gemm", kinds), indent=" " * 8)
    row_reduce = len(rest) == 1 and rest[0].name in ("rsum", "rmean") and rest[0].args == ("v",)
    if row_reduce:
        store = T.GEMM_ROW_REDUCE.format(out=out, scale=" / N" if rest[0].name == "rmean" else "")
    else:
        store = T.GEMM_STORE.format(out=out)
    stats = T.STATS.format(i=" " * 8, out=out, ncols="N") if bn is not None else ""
    kernels = [T.render(T.GEMM, name, len(kinds), body="\n".join(lines) or "        pass", store=store,
                        stats=stats, stats_ptrs=T.STATS_PTRS if bn is not None else "")]
    ptrs = "".join(f"p{j}, " for j in range(len(kinds))) + ("st_mean, st_m2, st_cnt, " if bn is not None else "")
    kmajor = ["    # tf32 tensor-core products read both operands K-major: copy an operand that is not.",
              "    if GEMM_KMAJOR and a.stride(-1) != 1:", "        a = a.contiguous()"]
    if group.source["b_nk"]:
        kmajor += ["    if GEMM_KMAJOR and b.stride(-1) != 1:", "        b = b.contiguous()"]
    else:
        kmajor += ["    if GEMM_KMAJOR and b.stride(-2) != 1:", "        b = b.transpose(-1, -2).contiguous().transpose(-1, -2)"]
    code = [f"def _f{k}({params}):"] + _operand_lines(kinds) + kmajor + layout + [
        "    # Tiles no larger than the matrix (a narrow N would leave most of a wide tile idle).",
        "    bm, bn = min(BLOCK_M, max(16, triton.next_power_of_2(M))), min(BLOCK_N, max(16, triton.next_power_of_2(N)))",
        "    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)",
        "    split = 1" if rest else "    split = _split_k(tiles, K, BLOCK_K) if B0 * B1 == 1 else 1",
    ]
    if row_reduce:
        shape = "lead" if rest[0].const == ("squeeze",) else "(*lead, 1)"
        code.append(f"    c = torch.zeros({shape}, device=a.device, dtype=torch.float32)")
    else:
        code.append("    c = torch.empty((split, *out_shape) if split > 1 else out_shape, device=a.device, "
                    "dtype=torch.float32)")
    if bn is not None:
        code += ["    st_mean = torch.empty((triton.cdiv(M, bm), N), device=a.device, dtype=torch.float32)",
                 "    st_m2 = torch.empty_like(st_mean)",
                 "    st_cnt = torch.empty((triton.cdiv(M, bm),), device=a.device, dtype=torch.float32)"]
    code.append(f"    {name}[(tiles, B0 * B1, split)](a, b, c, {ptrs}M, N, K, B1, *s_a, *s_b, BLOCK_M=bm, "
                "BLOCK_N=bn, BLOCK_K=BLOCK_K, GROUP_M=GROUP_M, SPLIT_K=split, "
                "EVEN_K=K % (BLOCK_K * split) == 0, PRECISION=PRECISION, num_warps=GEMM_WARPS, "
                "num_stages=_fit_stages(bm, bn, BLOCK_K, GEMM_STAGES))")
    spaces = {"gemm"}
    if bn is not None:  # statistics came with the GEMM; one pass applies them and the rest
        _, rest, kinds = _bn_apply(rest, kinds, "col")
        code.append(f"    p{n_ops}, p{n_ops + 1} = {bn_finish}")
    if rest and not row_reduce:  # a row kernel (or the BatchNorm apply) for what needs whole rows
        chained = _chain(f"_row_{k}", rest, kinds, "c", group.shape)
        if chained is None:
            return None
        kernels.append(chained[0])
        code += chained[1] + ["    return out"]
    elif row_reduce:
        code.append("    return c")
    else:
        # After a K split the partial products are summed by the elementwise template, epilogue included.
        chained = _chain(f"_ew_{k}", ops, kinds, "c", group.shape, split="split")
        if chained is None:
            return None
        kernels.append(chained[0])
        code += ["    if split == 1:", "        return c"] + chained[1] + ["    return out"]
    return Emitted(args, kernels, "\n".join(code) + "\n", spaces)


def _emit_conv_triton(k: int, group: fxp.Group) -> Emitted | None:
    conv: nn.Conv2d = group.source["conv"]
    if conv.in_channels < 16:  # tiny K per tap: padding C to a tensor-core block would waste most work
        return None
    kinds = [o.kind for o in group.operands]
    args: list[Any] = [group.source["x"], f"attr:{group.source['module']}.weight"] + [o.node for o in group.operands]
    ops = group.ops
    if conv.bias is not None:
        kinds.append("chan")
        args.append(f"attr:{group.source['module']}.bias")
        ops = T.with_bias(ops, f"p{len(kinds) - 1}")
    head = _prefix(ops, "conv", kinds)
    rest = T.shift(ops, head) if head < len(ops) else []
    bn = rest[0] if rest and rest[0].name == "bn" else None
    name = f"_conv_{k}"
    lines, out = T.body(ops[:head], T.loads_for("conv", kinds))
    stats = T.STATS.format(i="    ", out=out, ncols="CO") if bn is not None else ""
    kernels = [T.render(T.CONV, name, len(kinds), body="\n".join(lines), out=out, stats=stats,
                        stats_ptrs=T.STATS_PTRS if bn is not None else "")]
    one_d = isinstance(conv, nn.Conv1d)  # as a Conv2d over (N, C, 1, L)
    geometry = [conv.kernel_size, conv.stride, conv.padding, conv.dilation]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = [((1 if i != 2 else 0),) + tuple(g) if one_d else tuple(g)
                                              for i, g in enumerate(geometry)]
    ptrs = "".join(f"p{j}, " for j in range(len(kinds))) + ("st_mean, st_m2, st_cnt, " if bn is not None else "")
    n_ops = len(kinds)
    params = ", ".join(["x", "w"] + [f"p{j}" for j in range(len(kinds))])
    if bn is not None:
        bn_arg_list, bn_params, bn_finish = _bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
    code = [f"def _f{k}({params}):"] + _operand_lines(kinds) + (
        ["    x, w = x.unsqueeze(2), w.unsqueeze(2)"] if one_d else []) + [
        "    nb, c, h, w_ = x.shape",
        "    co = w.shape[0]",
        f"    oh, ow = (h + {2 * ph} - {dh * (kh - 1) + 1}) // {sh} + 1, (w_ + {2 * pw} - {dw * (kw - 1) + 1}) // {sw} + 1",
        "    # Filters as rows of (kh, kw, c): K-major, as the tensor cores read them.",
        "    wk = w.permute(0, 2, 3, 1).contiguous()",
        "    y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)",
        "    cp = triton.cdiv(c, CONV_BLOCK_K) * CONV_BLOCK_K",
        "    bn = min(CONV_BLOCK_N, max(16, triton.next_power_of_2(co)))  # no wider than the channels",
        "    tiles_m = triton.cdiv(nb * oh * ow, CONV_BLOCK_M)",
        "    st_mean = torch.empty((tiles_m, co), device=x.device, dtype=torch.float32)",
        "    st_m2, st_cnt = torch.empty_like(st_mean), torch.empty((tiles_m,), device=x.device, dtype=torch.float32)",
        "    grid = (tiles_m * triton.cdiv(co, bn),)",
        f"    {name}[grid](x, wk, y, {ptrs}nb, c, h, w_, co, oh, ow, cp, *x.stride(), SH={sh}, SW={sw}, PH={ph}, "
        f"PW={pw}, DH={dh}, DW={dw}, KH={kh}, KW={kw}, BLOCK_M=CONV_BLOCK_M, BLOCK_N=bn, "
        "BLOCK_K=CONV_BLOCK_K, GROUP_M=8, PRECISION=CONV_PRECISION, num_warps=CONV_WARPS, "
        "num_stages=_fit_stages(CONV_BLOCK_M, bn, CONV_BLOCK_K, CONV_STAGES))",
    ]
    if bn is None:
        code = [line for line in code if "st_m" not in line]
    if one_d:
        code.append("    y = y.squeeze(2)")
    spaces = {"conv"}
    if bn is not None:
        _, rest, kinds = _bn_apply(rest, kinds, "chan")
        code.append(f"    p{n_ops}, p{n_ops + 1} = {bn_finish}")
    if rest:
        chained = _chain(f"_post_{k}", rest, kinds, "y", group.shape)
        if chained is None:
            return None
        kernels.append(chained[0])
        code += chained[1] + ["    return out"]
        spaces.add("elementwise")
    else:
        code.append("    return y")
    return Emitted(args, kernels, "\n".join(code) + "\n", spaces)


def _emit_library(k: int, group: fxp.Group, opts: Options) -> Emitted | None:
    """The anchor by the library (cuBLAS/cuDNN), the chain after it in one Triton kernel."""
    kinds = [o.kind for o in group.operands]
    ops = group.ops
    if group.kind == "chain":
        args: list[Any] = [group.source] + [o.node for o in group.operands]
        pre = ["    y = x.contiguous()"]
    elif group.kind == "conv":
        conv: nn.Conv2d = group.source["conv"]
        mod = group.source["module"]
        args = [group.source["x"], f"attr:{mod}.weight", f"attr:{mod}.bias" if conv.bias is not None else None]
        args += [o.node for o in group.operands]
        fn = "conv1d" if isinstance(conv, nn.Conv1d) else "conv2d"
        pre = [f"    y = torch.nn.functional.{fn}(x, w, bias, {tuple(conv.stride)}, {tuple(conv.padding)}, "
               f"{tuple(conv.dilation)}, 1)"]
    else:
        bias, ops, _ = _fold_bias(group)
        src = group.source
        args = [src["a"], src["b"], bias] + [o.node for o in group.operands]
        sa = fxp._shape(src["a"]) if isinstance(src["a"], fx.Node) else None
        bmat = "b.t()" if src["b_nk"] else "b"
        b2d = src["b_nk"] or isinstance(src["b"], str) or len(fxp._shape(src["b"]) or ()) == 2
        if sa is None or (not b2d and bias is not None):
            return None
        if b2d:
            mm = f"torch.addmm(bias, a2, {bmat})" if bias is not None else f"torch.mm(a2, {bmat})"
            pre = ["    a2 = a.reshape(-1, a.shape[-1])", f"    y = {mm}", "    y = y.view(*a.shape[:-1], y.shape[-1])"]
        else:
            pre = ["    y = torch.matmul(a, b)"]
        if not opts.chains:  # addmm only: the bias add is the whole group
            ops = []
    nptr = len(kinds)
    params = ", ".join((["x"] if group.kind == "chain" else ["x", "w", "bias"] if group.kind == "conv"
                        else ["a", "b", "bias"]) + [f"p{j}" for j in range(nptr)])
    kernels: list[str] = []
    post: list[str] = []
    if ops and ops[0].name == "bn":
        if len(group.shape) not in (2, 4):
            return None
        bn, ops, kinds = _bn_apply(ops, kinds, "chan" if len(group.shape) == 4 else "col")
        bn_arg_list, bn_params, bn_finish = _bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
        kernels.append(T.render(T.CHAN_STATS, f"_stats_{k}", 0))
        post = _stats_kernel_lines(f"_stats_{k}", "y", len(group.shape)) + [f"    p{nptr}, p{nptr + 1} = {bn_finish}"]
    code = [f"def _f{k}({params}):"] + _operand_lines(kinds[:nptr]) + pre + post
    if not ops:
        return Emitted(args, [], "\n".join(code + ["    return y"]) + "\n", set())
    chained = _chain(f"_chain_{k}", ops, kinds, "y", group.shape)
    if chained is None:
        return None
    space = "rowwise" if "ROWS: tl.constexpr" in chained[0] else "elementwise"
    return Emitted(args, kernels + [chained[0]], "\n".join(code + chained[1] + ["    return out"]) + "\n", {space})


def _emit(k: int, group: fxp.Group, opts: Options) -> tuple[Emitted, int] | None:
    """The helper for a group under the options, and how many of its members it replaces."""
    if group.kind == "gemm" and opts.gemm:
        e = _emit_gemm_triton(k, group)
        if e is not None:
            return e, len(group.members)
    if group.kind == "conv" and opts.conv:
        e = _emit_conv_triton(k, group)
        if e is not None:
            return e, len(group.members)
    if opts.chains and (group.ops or group.kind == "chain"):
        e = _emit_library(k, group, opts)
        return (e, len(group.members)) if e is not None else None
    if opts.addmm and group.kind == "gemm" and group.source.get("bias") is None:
        bias, _, folded = _fold_bias(group)
        if folded is not None and len(group.members) >= 2 and len(group.ops) >= 1:
            trimmed = fxp.Group(group.kind, group.anchor, group.source, group.ops[:1], group.operands,
                                group.members[:2], group.shape)
            e = _emit_library(k, trimmed, opts)
            return (e, 2) if e is not None else None
    return None


# --- assembling the candidate -------------------------------------------------------------------------------
def _placeholder(k: int, impl: Any = None) -> Any:
    """A call target standing for helper `_fK` in the graph; `impl` computes its value where the
    rewritten graph is run again (shape propagation on meta tensors)."""
    def fn(*args: Any) -> Any:
        if impl is None:
            raise RuntimeError("a fused group's placeholder is not meant to run")
        return impl(*args)
    fn.__name__ = fn.__qualname__ = f"_evo_fused_{k}"
    return fn


def build(problem: Any, opts: Options) -> tuple[str, list[str]] | None:
    """(source, search spaces used) of a candidate with the options applied, or None when they change
    nothing for this problem or the forward does not trace."""
    example = problem.make_inputs(0, "meta")
    gm = fxp.trace(problem.Model, problem.init_inputs(), example)
    if gm is None:
        return None
    extra: list[str] = []
    changed = 0
    if opts.sdpa:
        changed += rewrites.sdpa(gm)
    if opts.avgpool_conv:
        extra = rewrites.avgpool_as_conv(gm, lambda i, mod: _placeholder(1000 + i, mod))
        changed += len(extra)
    if changed:
        gm.recompile()
        from torch.fx.passes.shape_prop import ShapeProp
        try:
            ShapeProp(gm).propagate(*example)
        except Exception:  # noqa: BLE001 - a rewrite the meta device cannot run: no candidate
            return None
    groups = fxp.find_groups(gm) if (opts.gemm or opts.conv or opts.chains or opts.addmm) else []
    emitted: list[tuple[int, fxp.Group, Emitted, int]] = []
    for group in groups:
        got = _emit(len(emitted), group, opts)
        if got is not None:
            emitted.append((len(emitted), group, got[0], got[1]))
    if not emitted and not changed:
        return None
    graph = gm.graph
    replaced: dict[fx.Node, fx.Node] = {}  # a group's output -> its call (later groups may read it)
    for k, group, e, n_members in emitted:
        members = group.members[:n_members]
        out = members[-1]
        with graph.inserting_after(out):
            args = []
            for a in e.args:
                if isinstance(a, str) and a.startswith("attr:"):
                    with graph.inserting_before(out):
                        a = graph.get_attr(a[len("attr:"):])
                args.append(replaced.get(a, a) if isinstance(a, fx.Node) else a)
            call = graph.call_function(_placeholder(k), tuple(args))
        out.replace_all_uses_with(call)
        replaced[out] = call
        for m in reversed(members):
            if not m.users and m.op != "placeholder":
                graph.erase_node(m)
    graph.eliminate_dead_code()
    code = graph.python_code("self")
    # SDPA is a builtin whose qualified name is torch._C._nn's; name it by its public path.
    src = code.src.replace("torch._C._nn.scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention")
    for gname, obj in code.globals.items():
        qual = getattr(obj, "__name__", "")
        if qual.startswith("_evo_fused_"):
            k = int(qual[len("_evo_fused_"):])
            target = f"_f{k}" if k < 1000 else f"_avgpool_{k - 1000}"
            src = re.sub(rf"\b{re.escape(gname)}\b", target, src)
        elif gname not in ("torch", "inf", "nan") and re.search(rf"\b{re.escape(gname)}\b", src):
            return None  # a global the candidate module would not have
    spaces = sorted(set().union(*(e.spaces for _, _, e, _ in emitted)) if emitted else set())
    kernels = [kern for _, _, e, _ in emitted for kern in e.kernels]
    helpers = [e.helper for _, _, e, _ in emitted] + extra
    return _module(problem.source, src, kernels, helpers, spaces), spaces


def space_params(spaces: list[str]) -> tuple[dict[str, list[Any]], str]:
    """Defaults for every tunable the templates read, and the TUNABLE declaration: the space's name
    when there is one, else the merged parameters (each candidate repairs invalid combinations)."""
    merged: dict[str, list[Any]] = {}
    for name in ["gemm", "conv", "rowwise", "elementwise"]:
        merged.update(T.space(name)[0])
    if len(spaces) == 1:
        return merged, repr(spaces[0])
    if not spaces:
        return merged, ""
    own: dict[str, list[Any]] = {}
    for s in spaces:
        own.update(T.space(s)[0])
    return merged, repr(own)


def _module(problem_source: str, forward_src: str, kernels: list[str], helpers: list[str], spaces: list[str]) -> str:
    params, tunable = space_params(spaces)
    lines = [problem_source.rstrip(), "", "", "# evo_kernels fusion: Triton templates around the traced forward",
             "import torch", "import triton", "import triton.language as tl", "", "inf = float('inf')",
             "nan = float('nan')"]
    lines += [f"{k} = {v[0]!r}" for k, v in params.items()]
    if tunable:
        lines.append(f"TUNABLE = {tunable}")
    lines += [T.HELPERS] + kernels + [""] + helpers
    body = forward_src.strip("\n")
    lines += ["", "class ModelNew(Model):"] + ["    " + line if line else "" for line in body.splitlines()] + [""]
    return "\n".join(lines)
