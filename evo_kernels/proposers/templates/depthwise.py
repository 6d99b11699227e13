"""Depthwise Conv2d (and Conv1d, as a Conv2d of height 1): groups equal to the input channels, each
output channel reading one input channel (a channel multiplier above 1 too), NCHW, zero padding, any
stride and dilation.

There is no channel mixing, so no GEMM and no tensor cores: each program computes a tile of one output
plane, its KH x KW taps summed in fp32 FMA as PyTorch's own depthwise kernel does (TF32 never
applies), then the bias and the elementwise epilogue; a BatchNorm after it takes one statistics pass,
what follows goes to a chain template. Memory-bound: the taps' overlapping input rows are served by L1
and L2, so DRAM sees each input and output element about once (PyTorch's kernel reaches 20% of that
bound on an H200, compile 29%: experiments/RESULTS.md).
"""
from __future__ import annotations

from string import Template
from typing import Any

from torch import fx, nn

from .ir import Group
from .base import AnchorTemplate, Chain, Emitted, body, operand_lines, ptr_params, render
from .conv import Prologue, conv_anchor, finish, output_size_line, prologue_lines, prologue_wiring

DWCONV = Template('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs$pro_ptrs st_mean_ptr, st_m2_ptr, st_cnt_ptr, CI: tl.constexpr, CO: tl.constexpr,
          H: tl.constexpr, W: tl.constexpr, OH: tl.constexpr, OW: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
          SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, DH: tl.constexpr,
          DW: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr, BN_STATS: tl.constexpr):
    # One BLOCK_H x BLOCK_W tile of one output plane (image, channel) per program: the channel, its
    # taps and the bias are scalars, and a tap costs each element one load and one FMA (a lane per
    # element loading its own taps ran 1.16x slower on an H200: the load units were the limit).
    pid = tl.program_id(0)
    tiles_w = tl.cdiv(OW, BLOCK_W)
    tiles = tl.cdiv(OH, BLOCK_H) * tiles_w
    plane = pid // tiles
    oh = ((pid % tiles) // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    ow = (pid % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    chan = plane % CO
    # Output channel `chan` reads input channel chan // (CO // CI), its filter (KH, KW) at chan.
    src = x_ptr + ((plane // CO) * CI + chan // (CO // CI)).to(tl.int64) * (H * W)
    taps = w_ptr + chan * (KH * KW)$pro_loads
    acc = tl.zeros((BLOCK_H, BLOCK_W), dtype=tl.float32)
    for i in tl.static_range(KH):
        ih = oh * SH - PH + i * DH
        row_ok = (oh < OH) & (ih >= 0) & (ih < H)
        for j in tl.static_range(KW):
            iw = ow * SW - PW + j * DW
            ok = row_ok[:, None] & ((ow < OW) & (iw >= 0) & (iw < W))[None, :]
            x = tl.load(src + (ih * W)[:, None] + iw[None, :], mask=ok, other=0.0)$prologue
            acc += x * tl.load(taps + (i * KW + j))
    mask = (oh < OH)[:, None] & (ow < OW)[None, :]
    offs = plane.to(tl.int64) * (OH * OW) + (oh * OW)[:, None] + ow[None, :]
    v = acc
$body
    tl.store(c_ptr + offs, $out, mask=mask)
    if BN_STATS:  # this tile's (count, mean, M2) for a BatchNorm after it (training)
        cnt = tl.sum(tl.sum(mask.to(tl.float32), axis=1), axis=0)
        mean = tl.sum(tl.sum(tl.where(mask, $out, 0.0), axis=1), axis=0) / cnt
        dev = tl.where(mask, $out - mean, 0.0)
        chunk = (plane // CO) * tiles + pid % tiles
        tl.store(st_mean_ptr + chunk * CO + chan, mean)
        tl.store(st_m2_ptr + chunk * CO + chan, tl.sum(tl.sum(dev * dev, axis=1), axis=0))
        tl.store(st_cnt_ptr + chunk, cnt)  # the same count from every channel's tile
''')


DWCONV_ROWS_HEAD = Template('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs$pro_ptrs st_mean_ptr, st_m2_ptr, st_cnt_ptr, CI: tl.constexpr, CO: tl.constexpr,
          H: tl.constexpr, W: tl.constexpr, OH: tl.constexpr, OW: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr,
          PW: tl.constexpr, DW: tl.constexpr, ROWS: tl.constexpr, BLOCK_W: tl.constexpr, BN_STATS: tl.constexpr):
    # Stride 1 down the rows: ROWS output rows of BLOCK_W columns of one plane per program, the last
    # KH input rows kept in registers at each of the KW tap offsets (x{i}_{j}), so that an output row
    # costs KW loads, not KH x KW (the tile kernel is bound by the load units: 99% L1 throughput).
    pid = tl.program_id(0)
    tiles_w = tl.cdiv(OW, BLOCK_W)
    tiles = tl.cdiv(OH, ROWS) * tiles_w
    plane = pid // tiles
    oh0 = ((pid % tiles) // tiles_w) * ROWS
    ow = (pid % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    chan = plane % CO
    src = x_ptr + ((plane // CO) * CI + chan // (CO // CI)).to(tl.int64) * (H * W)
    dst = plane.to(tl.int64) * (OH * OW)
    taps = w_ptr + chan * $taps$pro_loads
''')


def prologue_loads(prologue: Prologue | None) -> str:
    """The kernels' lines loading a producer's tail's operands at the program's input channel
    (scalars, loaded once), each after a newline."""
    if prologue is None:
        return ""
    return ("\n    ic = chan // (CO // CI)  # the input channel, whose tail this program applies"
            + "".join(f"\n    {q} = tl.load({q}_ptr + ic)" for q in prologue.names))


def rows_kernel(name: str, n_ptrs: int, kh: int, kw: int, body_lines: list[str], out: str,
                prologue: Prologue | None = None) -> str:
    """The sliding-window kernel for a KH x KW filter (unrolled: the window is KH x KW named values)."""
    i4, i8 = " " * 4, " " * 8

    def load_row(i: int, ih: str, indent: str) -> list[str]:
        # a row outside the input reads nothing: no column is below its limit (a scalar condition
        # in the mask itself would do on the GPU; Triton's interpreter rejects it)
        lines = [f"{indent}ih = {ih}", f"{indent}row = src + ih * W", f"{indent}lim = tl.where((ih >= 0) & (ih < H), W, 0)"]
        for j in range(kw):
            lines.append(f"{indent}x{i}_{j} = tl.load(row + iw{j}, mask=col_ok{j} & (iw{j} < lim), other=0.0)")
            lines += prologue_lines(prologue, f"col_ok{j} & (iw{j} < lim)", f"x{i}_{j}", indent, loaded=True)
        return lines

    lines = [DWCONV_ROWS_HEAD.substitute(name=name, ptrs=ptr_params(n_ptrs), taps=kh * kw,
                                         pro_ptrs=prologue_wiring(prologue)[0],
                                         pro_loads=prologue_loads(prologue)).rstrip("\n")]
    for j in range(kw):
        lines += [f"{i4}iw{j} = ow * SW - PW + {j} * DW", f"{i4}col_ok{j} = (ow < OW) & (iw{j} >= 0)"]
    lines += [f"{i4}w{i}_{j} = tl.load(taps + {i * kw + j})" for i in range(kh) for j in range(kw)]
    for i in range(kh - 1):  # the window before the first output row
        lines += load_row(i, f"oh0 - PH + {i}", i4)
    # A BatchNorm's statistics of the stored values: each row's (count, mean, M2), merged into the
    # program's with Chan's formula (stable whatever the mean), stored once after the loop.
    lines += [f"{i4}s_n = 0.0", f"{i4}s_mean = 0.0", f"{i4}s_m2 = 0.0"]
    lines += [f"{i4}for r in range(ROWS):", f"{i8}oh = oh0 + r"] + load_row(kh - 1, f"oh - PH + {kh - 1}", i8)
    lines.append(f"{i8}acc = tl.zeros((BLOCK_W,), dtype=tl.float32)")
    lines += [f"{i8}acc += x{i}_{j} * w{i}_{j}" for i in range(kh) for j in range(kw)]
    lines += [f"{i8}v = acc", f"{i8}mask = ow < tl.where(oh < OH, OW, 0)", f"{i8}offs = dst + oh * OW + ow"] + body_lines
    lines.append(f"{i8}tl.store(c_ptr + offs, {out}, mask=mask)")
    i12 = " " * 12
    lines += [f"{i8}if BN_STATS:",
              f"{i12}r_n = tl.sum(mask.to(tl.float32), axis=0)",
              f"{i12}r_mean = tl.sum(tl.where(mask, {out}, 0.0), axis=0) / tl.maximum(r_n, 1.0)",
              f"{i12}r_dev = tl.where(mask, {out} - r_mean, 0.0)",
              f"{i12}total = tl.maximum(s_n + r_n, 1.0)",
              f"{i12}delta = r_mean - s_mean",
              f"{i12}s_m2 = s_m2 + tl.sum(r_dev * r_dev, axis=0) + delta * delta * s_n * r_n / total",
              f"{i12}s_mean = s_mean + delta * r_n / total",
              f"{i12}s_n = s_n + r_n"]
    lines += [f"{i8}x{i}_{j} = x{i + 1}_{j}" for i in range(kh - 1) for j in range(kw)]  # slide down one row
    lines += [f"{i4}if BN_STATS:",
              f"{i8}chunk = (plane // CO) * tiles + pid % tiles",
              f"{i8}tl.store(st_mean_ptr + chunk * CO + chan, s_mean)",
              f"{i8}tl.store(st_m2_ptr + chunk * CO + chan, s_m2)",
              f"{i8}tl.store(st_cnt_ptr + chunk, s_n)  # the same count from every channel's program"]
    return "\n".join(lines) + "\n"


def depthwise_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """A depthwise Conv2d/Conv1d module: groups == in_channels (> 1), zero padding, integer padding."""
    mod = modules.get(node.target) if node.op == "call_module" else None
    if type(mod) not in (nn.Conv2d, nn.Conv1d) or mod.groups == 1 or mod.groups != mod.in_channels:
        return None
    if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
        return None
    return {"x": node.args[0], "module": node.target, "conv": mod}


def _emit(k: int, group: Group, t: AnchorTemplate, chain: Chain, defer: bool = False,
          prologue: Prologue | None = None) -> Emitted | None:
    a = conv_anchor(group, t)
    kh, kw, sh, sw, ph, pw, dh, dw = a.geometry
    name, ptrs = f"_dwconv_{k}", a.ptrs
    # The window where consecutive output rows read consecutive input rows, and it fits in registers
    # (it holds (KH - 1) x KW rows and KH x KW taps; measured up to 7 x 7).
    sliding = sh == 1 and dh == 1 and kh * kw <= 49
    lines, out = body(a.head, t.loads_for(a.kinds), indent=" " * (8 if sliding else 4))
    # A BatchNorm after it, training: the kernel stores each program's statistics of what it stored
    # (no pass of their own over y); otherwise (eval, or no BatchNorm) the pointers are y, never read.
    stats_lines, st_ptrs, flag = [], "y, y, y, ", "False"
    if a.bn is not None:
        stats_lines = [
            "    stats = bool(_bn_batch_stats(bn_mod.training, bn_rm))",
            "    st_cnt = st_mean = st_m2 = None",
            "    if stats:",
            "        st_mean = torch.empty((nb * tiles, co), device=x.device, dtype=torch.float32)",
            "        st_m2 = torch.empty_like(st_mean)",
            "        st_cnt = torch.empty((nb * tiles,), device=x.device, dtype=torch.float32)"]
        st_ptrs, flag = "*((st_mean, st_m2, st_cnt) if stats else (y, y, y)), ", "stats"
    # A producer's tail (prologue) is applied to each input element as it is loaded: KW times in the
    # sliding window, KH x KW times in the tile kernel (elementwise work on a memory-bound kernel, in
    # place of a pass of its own over the tensor).
    pro_ptrs, pro_args, unpack = prologue_wiring(prologue)
    ptrs += pro_args
    if sliding:
        kernels = [rows_kernel(name, len(a.kinds), kh, kw, lines, out, prologue)]
        launch = [
            "    # A program: DW_ROWS rows of up to 512 columns, DW_PER_THREAD columns a lane.",
            "    bw = min(_pow2(ow), 512)",
            "    rows = min(DW_ROWS, oh)",
            "    tiles = _cdiv(oh, rows) * _cdiv(ow, bw)"] + stats_lines + [
            f"    _launch({name}, (nb * co * tiles,), x, w, y, {ptrs}{st_ptrs}CI=ci, CO=co, H=h, W=w_, OH=oh, OW=ow, SW={sw}, "
            f"PH={ph}, PW={pw}, DW={dw}, ROWS=rows, BLOCK_W=bw, BN_STATS={flag}, "
            "num_warps=max(1, bw // (32 * DW_PER_THREAD)))"]
    else:
        kernels = [render(DWCONV, name, len(a.kinds), body="\n".join(lines), out=out,
                          prologue="".join("\n" + line for line in prologue_lines(prologue, "ok", "x", " " * 12,
                                                                                   loaded=True)),
                          pro_ptrs=pro_ptrs, pro_loads=prologue_loads(prologue))]
        launch = [
            "    # Tiles as wide as a row (up to DW_BLOCK), as many rows as make DW_BLOCK.",
            "    bw = min(_pow2(ow), DW_BLOCK)",
            "    bh = min(max(1, DW_BLOCK // bw), _pow2(oh))",
            "    tiles = _cdiv(oh, bh) * _cdiv(ow, bw)"] + stats_lines + [
            f"    _launch({name}, (nb * co * tiles,), x, w, y, {ptrs}{st_ptrs}CI=ci, CO=co, H=h, W=w_, OH=oh, OW=ow, KH={kh}, "
            f"KW={kw}, SH={sh}, SW={sw}, PH={ph}, PW={pw}, DH={dh}, DW={dw}, BLOCK_H=bh, BLOCK_W=bw, "
            f"BN_STATS={flag}, num_warps=DW_WARPS)"]
    code = [f"def _f{k}({a.params}):"] + operand_lines(a.kinds) + unpack + (
        ["    x = x.unsqueeze(2)"] if a.one_d else []) + [
        "    x, w = x.contiguous(), w.contiguous()",
        "    nb, ci, h, w_ = x.shape",
        "    co = w.shape[0]",
        output_size_line(a),
        "    y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)",
    ] + launch
    return finish(k, a, code, kernels, "depthwise", chain, group.shape, defer)


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(6, 12, 3, stride=2, padding=2, dilation=2, groups=6)
        self.bn = nn.BatchNorm2d(12)
    def forward(self, x):
        return torch.clamp(self.bn(self.dw(x) * 0.5), 0.0, 6.0)
def get_inputs():
    return [torch.randn(2, 6, 11, 13)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=DWCONV, example=EXAMPLE, example_rules=('triton_depthwise',), example_params={'DW_BLOCK': 64},
    name="depthwise", rule="triton_depthwise", prior=5.0, kind="conv", pattern=depthwise_source, emitter=_emit,
    defers=True, takes_prologue=True,
    # The sliding window's rows per program (16: 1.06x over 8 on level2/19's 112 columns and on
    # level3/10's 56, H200) and columns per lane (4: 1.12x over 1 on a 3x3 over 112 columns); the
    # tile kernel's (strided rows) elements per program and warps.
    params={"DW_ROWS": [16, 8, 32, 4], "DW_PER_THREAD": [4, 2, 8, 1], "DW_BLOCK": [1024, 512, 2048],
            "DW_WARPS": [4, 8, 2, 1]},
    loads={"chan": "tl.load({ptr} + chan)",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"})
