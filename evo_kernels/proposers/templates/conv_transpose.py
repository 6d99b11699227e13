"""Transposed Conv2d (ConvTranspose2d) as implicit GEMMs, one per output phase, NCHW, groups 1, zero
padding, dilation 1, any stride, padding and output padding; the same epilogue as the conv template
(bias, elementwise ops, BatchNorm statistics).

An output pixel (oh, ow) is reached by the taps kh = (oh + PH) mod SH + SH * j (likewise kw): every
output phase (oh mod SH, ow mod SW) is an ordinary stride-1 convolution of the input with a
sub-filter of at most ceil(KH / SH) x ceil(KW / SW) taps, so nothing is multiplied by the zeros a
transposed convolution's scattered input would hold. The launcher packs each phase's sub-filter as
K-major rows (padded to that size with zero taps, which the kernel skips); the kernel runs the phases
of one tile next to each other, so that the strided stores of one phase meet the others' in L2.

On Hopper the phase's input boxes come by TMA from a channels-last copy of the input (CONVT_TMA);
elsewhere the pointer-gathered kernel runs. Where cuDNN runs TF32 (PyTorch's default; on an H200 its
transposed convolutions are `sm90_xmma_dgrad_implicit_gemm_..._tf32` kernels) a draft starts from
TF32 products of rounded operands, which the accuracy contract checks like any other.
"""
from __future__ import annotations

from string import Template
from typing import Any

from torch import fx, nn

from .ir import Group
from .base import AnchorTemplate, Chain, Emitted, _with_grouped_tiles, body, operand_lines, render
from .conv import PRODUCTS, SETTLE, TMA_PRODUCTS, conv_anchor, finish, run_time_choice, tma_tile_lines
from .stats import stats_alloc, stats_in_store


def _phase_stats(tile: str) -> str:
    """A tile's BatchNorm statistics in training only, a row per (M tile, phase)."""
    return stats_in_store("    ", "$out", "CO", f"({tile} * SH * SW + phase)", "m_ok")


CONVT = _with_grouped_tiles('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs st_mean_ptr, st_m2_ptr, st_cnt_ptr, NB, C, H, W, CO, OH, OW, QH, QW, CP,
          s_xn, s_xc, s_xh, s_xw, KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
          PH: tl.constexpr, PW: tl.constexpr, TH: tl.constexpr, TW: tl.constexpr, BLOCK_M: tl.constexpr,
          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PRECISION: tl.constexpr,
          BN_STATS: tl.constexpr):
    # One output phase (oh % SH, ow % SW) of one tile per program, the phases of a tile adjacent:
    # M = the phase's pixels (n, qh, qw), N = output channels, K = (jh, jw, c), c padded to CP.
    phase = tl.program_id(0) % (SH * SW)
    pid = tl.program_id(0) // (SH * SW)
    py = phase // SW
    px = phase % SW
    M = NB * QH * QW
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(CO, BLOCK_N)
$grouped_tiles
    qhw = QH * QW
    img = rm // qhw
    qh = (rm % qhw) // QW
    qw = rm % QW
    oh = qh * SH + py
    ow = qw * SW + px
    m_ok = (rm < M) & (oh < OH) & (ow < OW)
    n_ok = rn < CO
    # Tap j of the phase (kh = rh + SH * j) reads input row qh + (py + PH) // SH - j; the phase has
    # ceil((KH - rh) / SH) taps down (fewer than TH where SH does not divide KH: no zero taps are run).
    rh = (py + PH) % SH
    rw = (px + PW) % SW
    nth = (KH - rh + SH - 1) // SH
    ntw = (KW - rw + SW - 1) // SW
    ih0 = qh + (py + PH) // SH
    iw0 = qw + (px + PW) // SW
    x_img = x_ptr + img.to(tl.int64) * s_xn
    w_rows = w_ptr + (rh * SW + rw) * (CO * TH * TW * C) + tl.where(n_ok, rn, 0)[None, :] * (TH * TW * C)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kk in range(0, nth * ntw * CP, BLOCK_K):
        tap = kk // CP
        c = kk - tap * CP + rk
        jh = tap // ntw
        jw = tap - jh * ntw
        ih = ih0 - jh
        iw = iw0 - jw
        ok = m_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        c_ok = c < C
        a = tl.load(x_img[:, None] + (ih * s_xh + iw * s_xw)[:, None] + c[None, :] * s_xc,
                    mask=ok[:, None] & c_ok[None, :], other=0.0)
        b = tl.load(w_rows + ((jh * TW + jw) * C + c)[:, None], mask=c_ok[:, None], other=0.0)
$products
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * OH * OW + oh * OW + ow)[:, None] + rn[None, :] * (OH * OW)
    v = acc
$body
    tl.store(c_ptr + offs, $out, mask=mask)
$stats_pm
'''.replace("$products", PRODUCTS + SETTLE).replace("$stats_pm", _phase_stats("pid_m")))


# On Hopper: the phase's input boxes by TMA from a channels-last copy of the input (zero-filled
# beyond its edges), filter rows by TMA, both fed to the tensor cores from shared memory (templates/
# conv.py's CONV_TMA; experiments/tma_conv_probe.py). "tf32rn": the copy and the filters are rounded.
CONVT_TMA = Template('''
@triton.jit
def $name(x_desc, w_desc, c_ptr,$ptrs st_mean_ptr, st_m2_ptr, st_cnt_ptr, CO, OH, OW, QH, QW, CP, KH: tl.constexpr,
          KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, TW: tl.constexpr,
          BH: tl.constexpr, BW: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr,
          BN_STATS: tl.constexpr):
    # One output phase of a tile of BH x BW of the phase's pixels (qh, qw) of one image, the phases of a
    # tile adjacent; K = (jh, jw, c), c padded to CP.
    BLOCK_M: tl.constexpr = BH * BW
    phase = tl.program_id(0) % (SH * SW)
    pid = tl.program_id(0) // (SH * SW)
    grid_n = tl.cdiv(CO, BLOCK_N)
    pid_n = pid % grid_n
    tile = pid // grid_n
    tiles_w = tl.cdiv(QW, BW)
    tiles_h = tl.cdiv(QH, BH)
    img = tile // (tiles_h * tiles_w)
    qh0 = ((tile // tiles_w) % tiles_h) * BH
    qw0 = (tile % tiles_w) * BW
    py = phase // SW
    px = phase % SW
    rh = (py + PH) % SH
    rw = (px + PW) % SW
    ntw = (KW - rw + SW - 1) // SW
    h0 = qh0 + (py + PH) // SH
    w0 = qw0 + (px + PW) // SW
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    steps = CP // BLOCK_K
    for it in range((KH - rh + SH - 1) // SH * ntw * steps):
        tap = it // steps
        c0 = (it - tap * steps) * BLOCK_K
        jh = tap // ntw
        jw = tap - jh * ntw
        a = x_desc.load([img, h0 - jh, w0 - jw, c0]).reshape(BLOCK_M, BLOCK_K)
        b = w_desc.load([(rh * SW + rw) * CO + pid_n * BLOCK_N, (jh * TW + jw) * CP + c0])
$products
    rm = tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    qh = qh0 + rm // BW
    qw = qw0 + rm % BW
    oh = qh * SH + py
    ow = qw * SW + px
    m_ok = (qh < QH) & (qw < QW) & (oh < OH) & (ow < OW)
    n_ok = rn < CO
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * OH * OW + oh * OW + ow)[:, None] + rn[None, :] * (OH * OW)
    v = acc
$body
    tl.store(c_ptr + offs, $out, mask=mask)
$stats_tile
'''.replace("$products", TMA_PRODUCTS + SETTLE).replace("$stats_tile", _phase_stats("tile")))


def conv_transpose_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """A ConvTranspose2d module the template covers: groups 1, dilation 1, zero padding, called on its
    input alone (an `output_size` at the call would change the output padding)."""
    mod = modules.get(node.target) if node.op == "call_module" else None
    if type(mod) is not nn.ConvTranspose2d or mod.groups != 1 or tuple(mod.dilation) != (1, 1):
        return None
    if mod.padding_mode != "zeros" or len(node.args) != 1 or node.kwargs:
        return None
    return {"x": node.args[0], "module": node.target, "conv": mod}


def _emit(k: int, group: Group, t: AnchorTemplate, chain: Chain) -> Emitted | None:
    mod = group.source["conv"]
    if mod.in_channels < 16:  # tiny K per tap: a tensor-core block of C would waste most work
        return None
    a = conv_anchor(group, t)
    kh, kw, sh, sw, ph, pw, _, _ = a.geometry
    oph, opw = mod.output_padding
    th, tw = -(-kh // sh), -(-kw // sw)  # taps per phase
    name = f"_convt_{k}"
    lines, out = body(a.head, t.loads_for(a.kinds))
    kernels = [render(CONVT, name, len(a.kinds), body="\n".join(lines), out=out)]
    tma_possible = mod.in_channels % 4 == 0  # a tensor descriptor's rows must be 16-byte multiples
    code = [f"def _f{k}({a.params}):"] + operand_lines(a.kinds) + [
        "    nb, c, h, w_ = x.shape"] + ([
        "    tma = CONVT_TMA and _tma_ok(x)",
        "    if tma:",
        "        # The input's channels-last copy and the filters' rows (the pointer kernel's, c padded to cp with zeros:",
        "        # a TMA box never spans two taps), by one launch, first: the device makes them while the",
        "        # host prepares the rest.",
        "        cp = _cdiv(c, CONVT_BLOCK_K) * CONVT_BLOCK_K",
        f"        xl, wt = _tma_operands(x, w, True, {sh}, {sw}, cp, CONVT_PRECISION == 'tf32rn')"]
        if tma_possible else []) + [
        "    co = w.shape[1]",
        f"    oh, ow = (h - 1) * {sh} - {2 * ph} + {kh + oph}, (w_ - 1) * {sw} - {2 * pw} + {kw + opw}",
        f"    qh, qw = _cdiv(oh, {sh}), _cdiv(ow, {sw})  # the phases' sizes (the first's)",
        "    y = torch.empty((nb, co, oh, ow), device=x.device, dtype=torch.float32)",
        "    bn = min(CONVT_BLOCK_N, max(16, _pow2(co)))  # no wider than the channels"]
    stats = "False"
    if a.bn is not None:  # per (tile, phase) statistics, in training (the names bn_args gives the helper)
        stats_ptrs, stats = "st_mean, st_m2, st_cnt, ", "stats"
        alloc = stats_alloc(f"tiles_m * {sh * sw}", "co", "x.device", "")
    else:
        stats_ptrs, alloc = "y, y, y, ", []  # never read
    pointers = [
        "# Filters (c, co, kh, kw) as one block of rows per phase (rh, rw, co, jh, jw, c), kh = rh + SH * jh;",
        "# taps beyond the filter are zeros.",
        f"wk = _pack_filters(w, True, {sh}, {sw}, c, CONVT_PRECISION == 'tf32rn')",
        "bm = CONVT_BLOCK_M",
        "tiles_m = _cdiv(nb * qh * qw, bm)"] + alloc + [
        f"_launch({name}, ({sh * sw} * tiles_m * _cdiv(co, bn),), x, wk, y, {a.ptrs}{stats_ptrs}nb, c, h, w_, co, oh, ow, "
        f"qh, qw, _cdiv(c, CONVT_BLOCK_K) * CONVT_BLOCK_K, *x.stride(), KH={kh}, KW={kw}, SH={sh}, SW={sw}, "
        f"PH={ph}, PW={pw}, TH={th}, TW={tw}, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=CONVT_BLOCK_K, GROUP_M=8, "
        f"PRECISION=CONVT_PRECISION, BN_STATS={stats}, num_warps=CONVT_WARPS, "
        "num_stages=_fit_stages(bm, bn, CONVT_BLOCK_K, CONVT_STAGES))"]
    if not tma_possible:
        code += ["    " + line for line in pointers]
        return finish(k, a, code, kernels, "conv_transpose", chain, group.shape)
    kernels.append(render(CONVT_TMA, f"{name}_tma", len(a.kinds), body="\n".join(lines), out=out))
    tma = [
        "# A tile: bh rows of bw of a phase's pixels (no taller than the phase)."] + tma_tile_lines(
        "CONVT", "qh", "qw") + [
        "tiles_m = nb * _cdiv(qh, bh) * _cdiv(qw, bw)"] + alloc + [
        f"_launch({name}_tma, ({sh * sw} * tiles_m * _cdiv(co, bn),), _descriptor(xl, [1, bh, bw, CONVT_BLOCK_K]), "
        f"_descriptor(wt, [bn, CONVT_BLOCK_K]), y, {a.ptrs}{stats_ptrs}co, oh, ow, qh, qw, cp, KH={kh}, KW={kw}, "
        f"SH={sh}, SW={sw}, PH={ph}, PW={pw}, TW={tw}, BH=bh, BW=bw, BLOCK_N=bn, BLOCK_K=CONVT_BLOCK_K, "
        f"PRECISION=CONVT_PRECISION, BN_STATS={stats}, num_warps=CONVT_WARPS, "
        "num_stages=_fit_stages(bh * bw, bn, CONVT_BLOCK_K, CONVT_STAGES))"]
    code += run_time_choice("tma", tma, pointers)
    return finish(k, a, code, kernels, "conv_transpose", chain, group.shape)


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
    def forward(self, x):
        return torch.relu(self.up(x)) * 2.0
def get_inputs():
    return [torch.randn(2, 16, 5, 6)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=CONVT, example=EXAMPLE, example_rules=("triton_conv_transpose",),
    example_params={"CONVT_BLOCK_M": 32, "CONVT_BLOCK_N": 16, "CONVT_BLOCK_K": 16},
    name="conv_transpose", rule="triton_conv_transpose", prior=5.0, kind="conv", pattern=conv_transpose_source,
    emitter=_emit,
    params={"CONVT_PRECISION": ["tf32x3", "tf32rn", "ieee"], "CONVT_BLOCK_M": [128, 64, 256],
            "CONVT_BLOCK_N": [64, 128, 32], "CONVT_BLOCK_K": [32, 64, 16], "CONVT_WARPS": [4, 8],
            "CONVT_STAGES": [3, 2, 4], "CONVT_TMA": [True, False], "CONVT_BLOCK_W": [16, 32, 8]},
    # The TMA kernel wrote one warp's rows of a tile wrong in about 1 call of 130 (level2/17, 3 stages)
    # until its K loop waited for each step's products (SETTLE in templates/conv.py; none in 1500
    # calls after, experiments/RESULTS.md).
    # The rounded TF32 products where cuDNN's run TF32: level1/36's error against float64 equalled
    # eager's (3.01e-04, H200), and tf32x3 ran 1.7x slower (experiments/RESULTS.md).
    seeds={"cudnn.allow_tf32": {"CONVT_PRECISION": "tf32rn"}},
    constraints=["CONVT_BLOCK_M * CONVT_BLOCK_N <= 128 * 32 * CONVT_WARPS",
                 "(CONVT_BLOCK_M + CONVT_BLOCK_N) * CONVT_BLOCK_K * 4 * CONVT_STAGES <= 200000"],
    loads={"chan": "tl.load({ptr} + rn, mask=n_ok, other=0.0)[None, :]",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"})
