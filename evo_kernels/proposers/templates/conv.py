"""Implicit-GEMM Conv2d (and Conv1d, as a Conv2d of height 1) over NCHW input, K ordered (kh, kw, c),
with the same epilogue as the GEMM template (bias, elementwise ops, BatchNorm statistics); a pooling
after it goes to the pooling template. Groups 1, zero padding.

CONV_PRECISION: "tf32x3" (as accurate as fp32), "ieee" (fp32 FMA), or "tf32rn": one TF32 product of
inputs and weights rounded to nearest, about as accurate as cuDNN's TF32 convolution (PyTorch's default), which
the accuracy contract then admits; where the run is strict fp32 the contract rejects it.
"""
from __future__ import annotations

from string import Template
from typing import Any, NamedTuple

from torch import fx, nn

from .ir import Group, Op
from .base import (REDUCE, AnchorTemplate, Chain, Emitted, _with_grouped_tiles, body, operand_lines, prefix, render,
                   shift, with_bias)
from .stats import STATS_ARGS, STATS_PTRS, bn_apply, bn_args, fold_lines, stats_alloc, stats_in_store


def _products(a_tf32rn: str, b: str) -> str:
    """One K step's products at the kernel's PRECISION, of the tile `a` by `b` (an expression of the
    tile `b`). "tf32rn": TF32 products of inputs rounded to nearest (`a_tf32rn`: the input's tile
    rounded here, or `a` where the launcher rounded it; the weights always by the launcher); the
    tensor cores alone would drop the low mantissa bits, a biased error 2-3x cuDNN's TF32 conv's."""
    return f"""\
        if PRECISION == "tf32rn":
            acc = tl.dot({a_tf32rn}, {b}, acc, input_precision="tf32")
        else:
            acc = tl.dot(a, {b}, acc, input_precision=PRECISION)"""


# Gathered tiles: A rounded in registers, B as loaded (K x N).
PRODUCTS = _products("_tf32_rn(a)", "b")


# After a K step's products where A reaches the tensor cores through registers and Triton would leave
# them in flight: Triton 3.6 splits such a step into several wgmma, waits only for the previous
# step's, and loads the next step's A into registers the products still in flight read (the pointer
# kernels; the transposed TMA kernel, whose box is reshaped in registers). On an H200 one warp's rows
# of a tile came out wrong in about 1 call in 130 (level2/17; harness/wgmma_hazards.py reads the
# hazard in the SASS). A use of the accumulator in the loop makes Triton wait for each step's
# products first; adding +0.0 changes no sum but a -0.0. It cost level2/17's transposed TMA kernel
# nothing, the pointer kernels 1% (transposed) to 38% (3x3; 1x1: 32%). The conv TMA kernel has no
# such hazard (its SASS) and does without: the wait would cost it 38% too.
SETTLE = """
        acc = acc + 0.0  # the step's products done before the next step's loads (SETTLE)"""


# TMA tiles (filter rows, N x K, transposed): "tf32rn" operands were rounded before, by the launcher.
TMA_PRODUCTS = _products("a", "b.T")
# A TMA kernel's BH x BW tile of output pixels by BLOCK_N channels, after its K loop (the conv and
# Conv3d templates').
TMA_TILE = """\
    rm = tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    oh = oh0 + rm // BW
    ow = ow0 + rm % BW
    m_ok = (oh < OH) & (ow < OW)
    n_ok = rn < CO
    mask = m_ok[:, None] & n_ok[None, :]"""


CONV = _with_grouped_tiles('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs$pro_ptrs$stats_ptrs NB, C, H, W, CO, OH, OW, CP, s_xn, s_xc, s_xh, s_xw,
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
                    mask=ok[:, None] & c_ok[None, :], other=0.0)$prologue
        b = tl.load(w_rows + (tap * C + c)[:, None], mask=c_ok[:, None], other=0.0)
$products
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * ohw + pix)[:, None] + rn[None, :] * ohw
    v = acc
$body
$stats
    tl.store(c_ptr + offs, $out, mask=mask)
'''.replace("$products", PRODUCTS + SETTLE))

# A 1x1 conv's GEMM per image: its grid (images folded into axis 0), and its store.
_POINTWISE_HEAD = """\
    # M = one image's pixels, N = output channels, K = input channels; images folded into axis 0.
    M = HW
    grid_m = tl.cdiv(HW, BLOCK_M)
    grid_n = tl.cdiv(CO, BLOCK_N)
    img = tl.program_id(0) // (grid_m * grid_n)
    pid = tl.program_id(0) % (grid_m * grid_n)
$grouped_tiles
    m_ok = rm < HW
    n_ok = rn < CO"""
_POINTWISE_STORE = """\
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * HW + rm)[:, None] + rn[None, :] * HW
    v = acc
$body
$stats
    tl.store(c_ptr + offs, $out, mask=mask)"""

# A 1x1 conv at stride 1 without padding is a GEMM per image. Its tiles stay inside one image, where
# a tile's pixels are contiguous (NCHW): its loads are whole vectors, which the implicit GEMM's
# div/mod pixel addressing keeps Triton from seeing (0.53 against 0.68 ms on level1/07). The input is
# the A operand, pixels x channels: the other order, (channels x pixels) = W @ X with the tile
# transposed before the epilogue, measured 1.6-3x slower on level1/07, level2/19 and level3/10.
POINTWISE = _with_grouped_tiles('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs$pro_ptrs$stats_ptrs C, CO, HW, s_xn, s_xc, BLOCK_M: tl.constexpr,
          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PRECISION: tl.constexpr):
$head
    x_img = x_ptr + img.to(tl.int64) * s_xn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, C, BLOCK_K):
        c = k + rk
        c_ok = c < C
        b = tl.load(w_ptr + rn[None, :] * C + c[:, None], mask=n_ok[None, :] & c_ok[:, None], other=0.0)
        a = tl.load(x_img + rm[:, None] + c[None, :].to(tl.int64) * s_xc, mask=m_ok[:, None] & c_ok[None, :],
                    other=0.0)$prologue
$products
$store
'''.replace("$head", _POINTWISE_HEAD).replace("$store", _POINTWISE_STORE).replace("$products", PRODUCTS + SETTLE))


# The same GEMM per image with its tiles by TMA, the input read as it lies: NCHW viewed as rows of
# pixels, (image, channel) a row, a box of BLOCK_K channels by BLOCK_M pixels. TF32 products read A
# from shared memory only K-major, so the box reaches them transposed, through registers (where the
# TF32 rounding and a producer's prologue apply, no pass of their own), and SETTLE waits after each
# step. No channels-last copy (the conv TMA kernel's, 0.19 ms on level1/07) and no pixel addresses.
# The channel mask only where the K blocks do not divide the channels: on level1/07 it cost 8% (0.686
# against 0.634 ms, H200) and 16 KB of shared memory.
POINTWISE_TMA = _with_grouped_tiles('''
@triton.jit
def $name(x_desc, w_desc, c_ptr,$ptrs$pro_ptrs$stats_ptrs C, CO, HW, BLOCK_M: tl.constexpr,
          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PRECISION: tl.constexpr,
          EVEN_K: tl.constexpr):
$head
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, C, BLOCK_K):
        c = k + rk
        c_ok = c < C
        a = x_desc.load([img * C + k, pid_m * BLOCK_M]).T
        if not EVEN_K:  # a box's rows past the image's channels are the next image's: zeroed (NaN * 0 is NaN)
            a = tl.where(c_ok[None, :], a, 0.0)$prologue
        b = w_desc.load([pid_n * BLOCK_N, k])
$products
$store
'''.replace("$head", _POINTWISE_HEAD).replace("$store", _POINTWISE_STORE)
    .replace("$products", _products("_tf32_rn(a)", "b.T") + SETTLE))


# On Hopper: input tiles by TMA from a channels-last copy of the input (one box of BH x BW pixels by
# BLOCK_K channels a tap, the padding zero-filled by the copy engine), filter rows by TMA, both fed to
# the tensor cores from shared memory. On level1/06 (H200) the kernel ran 0.42 ms against the
# pointer-gathered kernel's 0.67 (experiments/tma_conv_probe.py). "tf32rn": the copy is rounded.
# Strided: the copy is split into SH x SW phase planes (_conv_operands_launch), pixel (h, w) in plane
# (h % SH, w % SW) at (h // SH, w // SW); a tap's input pixels for a tile of outputs are then a box
# of one plane, at the tile's own offset plus the tap's.
CONV_TMA = Template('''
@triton.jit
def $name(x_desc, w_desc, c_ptr,$ptrs$stats_ptrs CO, OH, OW, CP, KH: tl.constexpr, KW: tl.constexpr,
          SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, BH: tl.constexpr,
          BW: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    # A tile of BH x BW output pixels of one image by BLOCK_N channels; K = (kh, kw, c), c padded to CP.
    BLOCK_M: tl.constexpr = BH * BW
    grid_n = tl.cdiv(CO, BLOCK_N)
    tiles_w = tl.cdiv(OW, BW)
    tiles_h = tl.cdiv(OH, BH)
    pid_n = tl.program_id(0) % grid_n
    tile = tl.program_id(0) // grid_n
    img = tile // (tiles_h * tiles_w)
    oh0 = ((tile // tiles_w) % tiles_h) * BH
    ow0 = (tile % tiles_w) * BW
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    steps = CP // BLOCK_K
    for it in range(KH * KW * steps):
        tap = it // steps
        c0 = (it - tap * steps) * BLOCK_K
        kh = tap // KW
        # input row oh * SH - PH + kh: plane row oh + floor((kh - PH) / SH), plane (kh - PH) mod SH
        # (offset by SH * PH to divide non-negative numbers); columns alike
        qh = kh - PH + SH * PH
        qw = tap - kh * KW - PW + SW * PW
        a = x_desc.load([img * (SH * SW) + (qh % SH) * SW + qw % SW, oh0 + qh // SH - PH,
                         ow0 + qw // SW - PW, c0]).reshape(BLOCK_M, BLOCK_K)
        b = w_desc.load([pid_n * BLOCK_N, tap * CP + c0])
$products
$tile
    offs = (img.to(tl.int64) * CO * OH * OW + oh * OW + ow)[:, None] + rn[None, :] * (OH * OW)
    v = acc
$body
$stats
    tl.store(c_ptr + offs, $out, mask=mask)
'''.replace("$products", TMA_PRODUCTS).replace("$tile", TMA_TILE))


class Prologue(NamedTuple):
    """A producer's elementwise tail (a BatchNorm's scale and shift, an activation) that a conv applies
    to its input as it loads it, instead of a pass of its own over the tensor: ops on "v" (the input's
    value), "tK" and the per-channel operands "pq0", "pq1", ..."""

    ops: list[Op]
    operands: int

    @property
    def names(self) -> list[str]:
        return [f"pq{j}" for j in range(self.operands)]


def prologue_wiring(prologue: Prologue | None) -> tuple[str, str, list[str]]:
    """What a consumer's kernel and helper add for a prologue (nothing without one): the kernel's
    pointer parameters, the launch's arguments, and the helper's line unpacking its input."""
    if prologue is None:
        return "", "", []
    names = prologue.names
    return ("".join(f" {q}_ptr," for q in names), "".join(f"{q}, " for q in names),
            [f"    x, {', '.join(names)} = x  # the producer's output and its deferred tail's operands"])


def deferred_tail(rest: list[Op], kinds: list[str]) -> tuple[Prologue, list[str]] | None:
    """`rest` as a prologue, and the operands it reads (the producer returns them after its output,
    in this order); None unless it is elementwise on per-channel operands only."""
    if not rest or any(op.name in REDUCE or op.name in ("pool", "bn") for op in rest):
        return None
    used = sorted({a for op in rest for a in op.args if isinstance(a, str) and a.startswith("p")},
                  key=lambda a: int(a[1:]))
    if any(kinds[int(a[1:])] != "chan" for a in used):
        return None
    rename = {a: f"pq{i}" for i, a in enumerate(used)}
    ops = [Op(op.name, tuple(rename.get(a, a) if isinstance(a, str) else a for a in op.args), op.const) for op in rest]
    return Prologue(ops, len(used)), used


def prologue_lines(prologue: Prologue | None, mask: str, value: str = "a", indent: str = " " * 8,
                   loaded: bool = False) -> list[str]:
    """Lines applying a prologue to the loaded input `value` (valid where `mask`); out-of-bounds and
    padded positions stay zero, as the producer's output has them. The per-channel operands pq0, ...
    are loaded per K block (channels `c`), or `loaded` already (a depthwise kernel's scalars: one
    channel a program)."""
    if prologue is None:
        return []
    names = prologue.names
    loads = {} if loaded else {q: "tl.load({ptr} + c, mask=c_ok, other=0.0)[None, :]" for q in names}
    lines, out = body(prologue.ops, loads, indent=indent, temp="q", given=names if loaded else ())  # (qt0, ...)
    return [f"{indent}v = {value}"] + lines + [f"{indent}{value} = tl.where({mask}, {out}, 0.0)"]


def conv_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """A Conv2d (or Conv1d, as a Conv2d of height 1) anchor the implicit-GEMM template covers:
    groups 1, zero padding, integer padding."""
    mod = modules.get(node.target) if node.op == "call_module" else None
    if type(mod) not in (nn.Conv2d, nn.Conv1d) or mod.groups != 1 or mod.padding_mode != "zeros":
        return None
    if isinstance(mod.padding, str):
        return None
    return {"x": node.args[0], "module": node.target, "conv": mod}


class ConvAnchor(NamedTuple):
    """What the conv and depthwise templates read off a convolution's group."""

    kinds: list[str]  # the operands' broadcast kinds (p0, p1, ...), the conv's bias last when it has one
    args: list[Any]  # the helper's arguments: x, the weight, the operands, the BatchNorm's tensors
    params: str  # the helper's parameters, in that order
    ptrs: str  # "p0, p1, ": the operands in a launch
    head: list[Op]  # the epilogue the conv kernel's store computes
    rest: list[Op]  # what follows it (a BatchNorm first, when there is one)
    bn: Op | None
    one_d: bool  # a Conv1d, run as a Conv2d over (N, C, 1, L)
    geometry: tuple[int, ...]  # kh, kw, sh, sw, ph, pw, dh, dw (a Conv3d's: kd, kh, kw, sd, sh, sw, ...)


def conv_anchor(group: Group, t: AnchorTemplate) -> ConvAnchor:
    conv = group.source["conv"]
    module = group.source["module"]
    kinds = [o.kind for o in group.operands]
    args: list[Any] = [group.source["x"], f"attr:{module}.weight"] + [o.node for o in group.operands]
    ops = group.ops
    if conv.bias is not None:
        kinds.append("chan")
        args.append(f"attr:{module}.bias")
        ops = with_bias(ops, f"p{len(kinds) - 1}")
    head = prefix(ops, t, kinds)
    rest = shift(ops, head) if head < len(ops) else []
    bn = rest[0] if rest and rest[0].name == "bn" else None
    params = ", ".join(["x", "w"] + [f"p{j}" for j in range(len(kinds))])
    if bn is not None:
        bn_arg_list, bn_params, _ = bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
    one_d = isinstance(conv, nn.Conv1d)
    dims = [conv.kernel_size, conv.stride, conv.padding, conv.dilation]
    # (a Conv1d's as a Conv2d's of height 1: kernel, stride and dilation 1, padding 0)
    geometry = tuple(v for i, g in enumerate(dims) for v in ((1 if i != 2 else 0),) * one_d + tuple(g))
    return ConvAnchor(kinds, args, params, "".join(f"p{j}, " for j in range(len(kinds))), ops[:head], rest, bn,
                      one_d, geometry)


def output_size_line(a: ConvAnchor) -> str:
    kh, kw, sh, sw, ph, pw, dh, dw = a.geometry
    return f"    oh, ow = (h + {2 * ph} - {dh * (kh - 1) + 1}) // {sh} + 1, (w_ + {2 * pw} - {dw * (kw - 1) + 1}) // {sw} + 1"


def finish(k: int, a: ConvAnchor, code: list[str], kernels: list[str], space: str, chain: Chain,
           shape: tuple[int, ...], defer: bool = False, fold: bool = False) -> Emitted | None:
    """The helper after its conv kernel's launch (which left `y`, and a BatchNorm's statistics in
    st_cnt, st_mean, st_m2): the BatchNorm's scale and shift, then a chain kernel for what follows,
    or `y` itself. With `defer`, what follows goes to the consumer's loads instead: `y` and its
    operands are returned (None when it cannot be a prologue). With `fold`, the helper's `fold`
    says at run time whether the kernel's store already applied the BatchNorm and what follows."""
    n, kinds, rest = len(a.kinds), a.kinds, a.rest
    if a.one_d:
        code.append("    y = y.squeeze(2)")
    if fold:
        code += ["    if fold:", "        return y"]
    spaces = {space}
    if a.bn is not None:
        _, rest, kinds = bn_apply(rest, kinds, "chan")
        code.append(f"    p{n}, p{n + 1} = {bn_args(a.bn)[2]}")
    if defer:
        tail = deferred_tail(rest, kinds)
        if tail is None:
            return None
        prologue, used = tail
        code.append(f"    return (y, {', '.join(used)})")
        return Emitted(a.args, kernels, "\n".join(code) + "\n", spaces, deferred=prologue)
    if rest:
        chained = chain(f"_post_{k}", rest, kinds, "y", shape)
        if chained is None:
            return None
        kernels.append(chained.kernel)
        code += chained.launch + ["    return out"]
        spaces.add(chained.space or "elementwise")
    else:
        code.append("    return y")
    return Emitted(a.args, kernels, "\n".join(code) + "\n", spaces)


def _emit(k: int, group: Group, t: AnchorTemplate, chain: Chain, defer: bool = False,
          prologue: Prologue | None = None) -> Emitted | None:
    if group.source["conv"].in_channels < 16:  # tiny K per tap: a tensor-core block of C would waste most work
        return None
    a = conv_anchor(group, t)
    kh, kw, sh, sw, ph, pw, dh, dw = a.geometry
    pointwise = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)
    if prologue is not None and kh * kw > 1:
        return None  # each input element would be loaded, and its prologue recomputed, once per tap
    name = f"_conv_{k}"
    lines, out = body(a.head, t.loads_for(a.kinds))
    fold = _fold(a, t, out, defer)
    n_ptrs, stats_ptrs, bn_ptrs = len(a.kinds), "", ""
    if a.bn is not None:  # the BatchNorm's statistics (training), or its scale and shift (eval, folded)
        n_ptrs, stats_ptrs = len(a.kinds) + 2, STATS_PTRS + " FOLD: tl.constexpr,"
        bn_ptrs = f"p{len(a.kinds)}, p{len(a.kinds) + 1}, "

    def bn_tail(chunk: str, valid: str) -> str:  # the store's statistics (training) or folded BatchNorm (eval)
        return stats_in_store("    ", out, "CO", chunk, valid) + ("\n" + fold if fold else "") if a.bn is not None else ""
    stats = bn_tail("(img * grid_m + pid_m)" if pointwise else "pid_m", "rm < M")
    pro = prologue_lines(prologue, "m_ok[:, None] & c_ok[None, :]" if pointwise else "ok[:, None] & c_ok[None, :]")
    pro_ptrs, pro_args, unpack = prologue_wiring(prologue)
    kernels = [render(POINTWISE if pointwise else CONV, name, n_ptrs, body="\n".join(lines), out=out,
                      stats=stats, stats_ptrs=stats_ptrs,
                      prologue="".join("\n" + line for line in pro), pro_ptrs=pro_ptrs)]
    ptrs = a.ptrs + bn_ptrs + pro_args + (STATS_ARGS + "fold, " if a.bn is not None else "")
    code = [f"def _f{k}({a.params}):"] + operand_lines(a.kinds) + unpack + (
        ["    x, w = x.unsqueeze(2), w.unsqueeze(2)"] if a.one_d else [])
    head = len(code)  # the launch lines from here on (the TMA kernel's replace them where it applies)
    # What differs between the two kernels: the input's layout, the filters' rows, the M tiles
    # (inside one image for the GEMM per image) and the kernel's geometry arguments.
    if pointwise:
        code += ["    x = x.contiguous()  # (a tile's pixels contiguous)",
                 "    nb, c, oh, ow = x.shape",
                 "    co = w.shape[0]",
                 "    wk = w.reshape(co, c).contiguous()  # rows of c: K-major, as the tensor cores read them"]
        bm = "min(CONV_BLOCK_M, max(16, _pow2(oh * ow)))  # no taller than an image"
        tiles_m = "nb * _cdiv(oh * ow, bm)"
        geometry = "c, co, oh * ow, x.stride(0), x.stride(1)"
    else:
        code += ["    nb, c, h, w_ = x.shape",
                 "    co = w.shape[0]",
                 output_size_line(a),
                 "    # Filters as rows of (kh, kw, c): K-major, as the tensor cores read them.",
                 "    wk = _pack_filters(w, False, 1, 1, c, CONV_PRECISION == 'tf32rn')"]
        bm = "CONV_BLOCK_M"
        tiles_m = "_cdiv(nb * oh * ow, bm)"
        geometry = (f"nb, c, h, w_, co, oh, ow, _cdiv(c, CONV_BLOCK_K) * CONV_BLOCK_K, *x.stride(), SH={sh}, "
                    f"SW={sw}, PH={ph}, PW={pw}, DH={dh}, DW={dw}, KH={kh}, KW={kw}")
    if pointwise:  # (the other filters are rounded as they are packed)
        code += ["    if CONV_PRECISION == 'tf32rn':",
                 "        wk = _round_tf32(wk)"]
    code += [
        "    y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)",
        f"    bm = {bm}"]
    if prologue is None:
        code += ["    bn = min(CONV_BLOCK_N, max(16, _pow2(co)))  # no wider than the channels"]
    else:
        code += ["    # All output channels in one tile where the accumulator fits: the prologue is applied",
                 "    # once per input element, not once per tile of channels (level2/19, 2026-12-01).",
                 "    bn = min(max(16, _pow2(co)), 256, 128 * 32 * CONV_WARPS // bm)"]
    code += [
        f"    tiles_m = {tiles_m}"]
    if a.bn is not None:  # its per-tile statistics, or the folded BatchNorm's scale and shift
        code += _bn_lines(a, fold is not None, "    ")

    def tiles(extra: str = "") -> str:  # the launch's tile arguments (`extra` shared memory beyond the stages')
        return ("BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=CONV_BLOCK_K, GROUP_M=8, PRECISION=CONV_PRECISION, "
                f"num_warps=CONV_WARPS, num_stages=_fit_stages(bm, bn, CONV_BLOCK_K, CONV_STAGES{extra}))")
    code += ["    grid = (tiles_m * _cdiv(co, bn),)"]
    launch = f"_launch({name}, grid, x, wk, y, {ptrs}{geometry}, {tiles()}"
    # (channels in 16-byte rows, as a tensor descriptor's strides must be)
    channel_rows = group.source["conv"].in_channels % 4 == 0
    if pointwise and channel_rows:  # the input's tiles by TMA where its image rows are 16-byte rows too
        kernels.append(render(POINTWISE_TMA, f"{name}_tma", n_ptrs, body="\n".join(lines), out=out, stats=stats,
                              stats_ptrs=stats_ptrs, prologue="".join("\n" + line for line in pro), pro_ptrs=pro_ptrs))
        # (its transposed A tile takes shared memory of its own: two tiles' worth at tf32x3 as compiled
        # for an H200, 64 KB beyond the stages at 128 x 64)
        return finish(k, a, code + [
            "    if CONV_TMA and _tma_ok(x, wk) and (oh * ow) % 4 == 0:",
            f"        _launch({name}_tma, grid, _descriptor(x.view(nb * c, oh * ow), [CONV_BLOCK_K, bm]), "
            f"_descriptor(wk, [bn, CONV_BLOCK_K]), y, {ptrs}c, co, oh * ow, EVEN_K=c % CONV_BLOCK_K == 0, "
            f"{tiles(', 8 * bm * CONV_BLOCK_K')}",
            "    else:",
            f"        {launch}"], kernels, "conv", chain, group.shape, defer, fold is not None)
    code.append(f"    {launch}")
    # (strided: where every phase plane of the copy is read, not a 1x1 conv's one plane of four)
    if (dh, dw) == (1, 1) and kh >= sh and kw >= sw and channel_rows and prologue is None and not pointwise:
        kernels.append(render(CONV_TMA, f"{name}_tma", n_ptrs, body="\n".join(lines), out=out,
                              stats=bn_tail("tile", "m_ok"), stats_ptrs=stats_ptrs))
        code = code[:head] + run_time_choice("CONV_TMA and _tma_ok(x)", _tma_lines(a, f"{name}_tma", ptrs, fold is not None),
                                             [line[4:] for line in code[head:]])
    return finish(k, a, code, kernels, "conv", chain, group.shape, defer, fold is not None)


def tma_tile_lines(prefix: str, oh: str, ow: str) -> list[str]:
    """A TMA kernel's tile, chosen at run time (unindented helper lines): bh rows of bw pixels, bw at
    most {prefix}_BLOCK_W, no taller than the output (`oh` x `ow`), {prefix}_BLOCK_M pixels in all."""
    return [f"bw = min({prefix}_BLOCK_W, max(8, _pow2({ow})))",
            f"bh = min(max(1, {prefix}_BLOCK_M // bw), _pow2({oh}))",
            f"bw = {prefix}_BLOCK_M // bh"]


def run_time_choice(condition: str, then: list[str], otherwise: list[str]) -> list[str]:
    """A helper's lines running `then` where `condition` holds at each call, else `otherwise` (both
    unindented helper lines): a template's TMA kernel or its pointer kernel."""
    return ([f"    if {condition}:"] + ["        " + line for line in then] + ["    else:"]
            + ["        " + line for line in otherwise])


def _fold(a: ConvAnchor, t: AnchorTemplate, out: str, defer: bool) -> str | None:
    """Eval mode: the BatchNorm and what follows in the conv's store (stats.fold_lines; on level2/11
    in eval mode the pass it saves was 0.194 of 0.786 ms, H200), not where the tail is deferred."""
    return None if a.bn is None or defer else fold_lines(a.rest, a.kinds, t, out, "chan", "    ")


def _bn_lines(a: ConvAnchor, foldable: bool, i: str) -> list[str]:
    """Before the launch: the statistics' buffers, and where the BatchNorm folds into the store (eval,
    running statistics), its scale and shift (pointers to `y` where not: never read)."""
    n = len(a.kinds)
    return stats_alloc("tiles_m", "co", "x.device", i) + [
        f"{i}fold = {'not stats' if foldable else 'False'}  # the BatchNorm in the store (eval)",
        f"{i}p{n}, p{n + 1} = {bn_args(a.bn)[2]} if fold else (y, y)"]


def _tma_lines(a: ConvAnchor, name: str, ptrs: str, foldable: bool) -> list[str]:
    """The TMA kernel's launch (unindented helper lines)."""
    kh, kw, sh, sw, ph, pw, _, _ = a.geometry
    lines = [
        "nb, c, h, w_ = x.shape",
        "cp = _cdiv(c, CONV_BLOCK_K) * CONV_BLOCK_K",
        "# The input's channels-last copy and the filters as rows of (kh, kw, c), c padded to cp with zeros",
        "# (a TMA box never spans two taps), by one launch, first: the device makes them while the host",
        "# prepares the rest." + (" The copy in phase planes, one per (row, column) of a stride." if (sh, sw) != (1, 1) else ""),
        f"xl, wk = _tma_operands(x, w, False, 1, 1, cp, CONV_PRECISION == 'tf32rn', ({sh}, {sw}))",
        "co = w.shape[0]",
        output_size_line(a).strip(),
        "y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)",
        "# A tile: bh rows of bw pixels (no taller than the output: a Conv1d's rows are whole tiles)."]
    lines += tma_tile_lines("CONV", "oh", "ow") + [
        "bn = min(CONV_BLOCK_N, max(16, _pow2(co)))",
        "tiles_m = nb * _cdiv(oh, bh) * _cdiv(ow, bw)"]
    if a.bn is not None:
        lines += _bn_lines(a, foldable, "")
    lines += [
        f"_launch({name}, (tiles_m * _cdiv(co, bn),), _descriptor(xl, [1, bh, bw, CONV_BLOCK_K]), "
        f"_descriptor(wk, [bn, CONV_BLOCK_K]), y, {ptrs}co, oh, ow, cp, KH={kh}, KW={kw}, SH={sh}, SW={sw}, "
        f"PH={ph}, PW={pw}, BH=bh, BW=bw, BLOCK_N=bn, BLOCK_K=CONV_BLOCK_K, PRECISION=CONV_PRECISION, num_warps=CONV_WARPS, "
        "num_stages=_fit_stages(bh * bw, bn, CONV_BLOCK_K, CONV_STAGES))"]
    return lines


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 8, 3, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x)) * 2.0
def get_inputs():
    return [torch.randn(2, 16, 5, 6)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=CONV, example=EXAMPLE, example_rules=('triton_conv',), example_params={'CONV_BLOCK_M': 32, 'CONV_BLOCK_N': 16, 'CONV_BLOCK_K': 16},
    name="conv", rule="triton_conv", prior=5.0, kind="conv", pattern=conv_source, emitter=_emit, defers=True,
    takes_prologue=True,
    # Precision first: its next value (tf32rn, 1.7-2.3x faster where the run's convolutions are TF32;
    # tf32x3 where a seeded tf32rn fails the contract) is the first neighbour a screen tries. Warps
    # next: 4 warps were the one change that helped the TMA kernel with an epilogue (level2/11
    # 0.884 against 1.117 ms, level2/15 0.481 against 0.596; H200), where a narrower tile never did.
    # CONV_TMA and CONV_BLOCK_W: the TMA kernel where it applies (no dilation, channels in 16-byte rows, no prologue)
    # and its tiles' width; on a 1x1 conv, the GEMM per image by TMA on the input as it lies (prologue
    # or not, image rows of 16 bytes). Under the protocol (H200, experiments/RESULTS.md, 2026-12-02) it
    # took level2/19 to 0.769 ms from the pointer kernel's 0.901 and level1/07 to 0.639 (eager 0.673,
    # at BLOCK_N 256), and level3/10 to 0.94 from 0.86-0.93.
    params={"CONV_PRECISION": ["tf32x3", "tf32rn", "ieee"], "CONV_WARPS": [8, 4], "CONV_BLOCK_M": [128, 64, 256],
            "CONV_BLOCK_N": [128, 64, 256], "CONV_BLOCK_K": [64, 32, 16], "CONV_STAGES": [3, 2, 4], "CONV_TMA": [True, False],
            "CONV_BLOCK_W": [16, 8, 32]},
    # Where cuDNN runs TF32 (PyTorch's default), the baseline's convolutions are TF32: rounded TF32
    # products are as accurate (the contract admits them), and K blocks of 32 over 4 stages were the
    # fastest of the probes' tiles on both kernels (1x1 and 3x3; experiments/RESULTS.md, 2026-12-01).
    seeds={"cudnn.allow_tf32": {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 32, "CONV_STAGES": 4}},
    # No one tile was fastest on every conv (experiments/RESULTS.md, 2026-12-02 (seeds), H200): the
    # seeds on the 3x3 convs (level1/06 0.492 ms); 64 x 256 over 4 warps on the 1x1 and on level2/15
    # (level1/07 0.536 against the seeds' 0.768); 256 wide over 3 stages on the strided 3x3 (level1/09
    # 0.934 against 1.105); 4 warps (the second neighbour a screen tries anyway) on level3/10 and
    # level2/11. A draft's screen tries these first.
    alternatives={"cudnn.allow_tf32": [{"CONV_BLOCK_M": 64, "CONV_BLOCK_N": 256, "CONV_WARPS": 4, "CONV_STAGES": 3},
                                       {"CONV_BLOCK_N": 256, "CONV_STAGES": 3}]},
    constraints=["CONV_BLOCK_M * CONV_BLOCK_N <= 128 * 32 * CONV_WARPS",
                 "(CONV_BLOCK_M + CONV_BLOCK_N) * CONV_BLOCK_K * 4 * CONV_STAGES <= 200000"],
    loads={"chan": "tl.load({ptr} + rn, mask=n_ok, other=0.0)[None, :]",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"})
