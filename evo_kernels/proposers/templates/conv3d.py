"""Implicit-GEMM Conv3d over NCDHW input: M = output voxels (n, od, oh, ow), N = output channels, K =
(kd, kh, kw, c), with the elementwise epilogue (the bias, the ops after it) in the store; what follows
goes to a chain template. Groups 1, zero padding. Its launch constants are the conv template's (its
space, seeds and alternatives): CONV_PRECISION's "tf32rn" where cuDNN runs TF32, the tiles, CONV_TMA.

On Hopper, an undilated stride-1 conv reads its input by TMA from a channels-last copy (n, d, h, w, c)
(the 2-D conv's copy over the input's d x h rows: one read and one write of the input), a box of BH x
BW pixels of one depth slice by BLOCK_K channels a tap, the padding zero-filled by the copy engine;
the filter rows by TMA too. Elsewhere (strides, dilation, before Hopper, channels not in 16-byte rows)
the pointer-gathered kernel.
"""
from __future__ import annotations

from string import Template
from typing import Any

from torch import fx, nn

from .ir import Group
from .base import AnchorTemplate, Chain, Emitted, _with_grouped_tiles, body, operand_lines, render
from .conv import PRODUCTS, SETTLE, TMA_PRODUCTS, TMA_TILE, conv_anchor, finish, run_time_choice, tma_tile_lines

CONV3D = _with_grouped_tiles('''
@triton.jit
def $name(x_ptr, w_ptr, c_ptr,$ptrs NB, C, D, H, W, CO, OD, OH, OW, s_xn, s_xc, s_xd, s_xh, s_xw,
          SD: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PD: tl.constexpr, PH: tl.constexpr,
          PW: tl.constexpr, DD: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, KD: tl.constexpr,
          KH: tl.constexpr, KW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
          BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PRECISION: tl.constexpr):
    # K = (kd, kh, kw, c) with c padded to a multiple of BLOCK_K, so that a K block never spans two
    # taps; the filter rows are (kd, kh, kw, c) unpadded.
    pid = tl.program_id(0)
    ohw = OH * OW
    odhw = OD * ohw
    M = NB * odhw
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(CO, BLOCK_N)
$grouped_tiles
    m_ok = rm < M
    n_ok = rn < CO
    img = rm // odhw
    vox = rm % odhw
    od = vox // ohw
    oh = (vox % ohw) // OW
    ow = vox % OW
    x_img = x_ptr + img.to(tl.int64) * s_xn
    w_rows = w_ptr + tl.where(n_ok, rn, 0)[None, :] * (KD * KH * KW * C)
    cp = tl.cdiv(C, BLOCK_K) * BLOCK_K
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kk in range(0, KD * KH * KW * cp, BLOCK_K):
        tap = kk // cp
        c = kk - tap * cp + rk
        kd = tap // (KH * KW)
        kh = (tap // KW) % KH
        kw = tap % KW
        i_d = od * SD - PD + kd * DD
        ih = oh * SH - PH + kh * DH
        iw = ow * SW - PW + kw * DW
        ok = m_ok & (i_d >= 0) & (i_d < D) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        c_ok = c < C
        a = tl.load(x_img[:, None] + (i_d * s_xd + ih * s_xh + iw * s_xw)[:, None] + c[None, :] * s_xc,
                    mask=ok[:, None] & c_ok[None, :], other=0.0)
        b = tl.load(w_rows + (tap * C + c)[:, None], mask=c_ok[:, None], other=0.0)
$products
    mask = m_ok[:, None] & n_ok[None, :]
    offs = (img.to(tl.int64) * CO * odhw + vox)[:, None] + rn[None, :] * odhw
    v = acc
$body
    tl.store(c_ptr + offs, $out, mask=mask)
'''.replace("$products", PRODUCTS + SETTLE))


CONV3D_TMA = Template('''
@triton.jit
def $name(x_desc, w_desc, c_ptr,$ptrs CO, OD, OH, OW, CP, KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
          PD: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    # A tile of BH x BW output pixels of one depth slice of one image by BLOCK_N channels.
    BLOCK_M: tl.constexpr = BH * BW
    grid_n = tl.cdiv(CO, BLOCK_N)
    tiles_w = tl.cdiv(OW, BW)
    tiles_h = tl.cdiv(OH, BH)
    pid_n = tl.program_id(0) % grid_n
    tile = tl.program_id(0) // grid_n
    slab = tile // (tiles_h * tiles_w)  # (image, output slice)
    img = slab // OD
    od = slab % OD
    oh0 = ((tile // tiles_w) % tiles_h) * BH
    ow0 = (tile % tiles_w) * BW
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    steps = CP // BLOCK_K
    for it in range(KD * KH * KW * steps):
        tap = it // steps
        c0 = (it - tap * steps) * BLOCK_K
        kd = tap // (KH * KW)
        kh = (tap // KW) % KH
        kw = tap % KW
        a = x_desc.load([img, od - PD + kd, oh0 - PH + kh, ow0 - PW + kw, c0]).reshape(BLOCK_M, BLOCK_K)
        b = w_desc.load([pid_n * BLOCK_N, tap * CP + c0])
$products
$tile
    odhw = OD * OH * OW
    offs = (img.to(tl.int64) * CO * odhw + od * (OH * OW) + oh * OW + ow)[:, None] + rn[None, :] * odhw
    v = acc
$body
    tl.store(c_ptr + offs, $out, mask=mask)
'''.replace("$products", TMA_PRODUCTS).replace("$tile", TMA_TILE))


def conv3d_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """A Conv3d module the template covers: groups 1, zero padding, integer padding."""
    mod = modules.get(node.target) if node.op == "call_module" else None
    if type(mod) is not nn.Conv3d or mod.groups != 1 or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
        return None
    return {"x": node.args[0], "module": node.target, "conv": mod}


def _emit(k: int, group: Group, t: AnchorTemplate, chain: Chain) -> Emitted | None:
    if group.source["conv"].in_channels < 16:  # tiny K per tap: a tensor-core block of C would waste most work
        return None
    a = conv_anchor(group, t)
    if a.bn is not None:  # (no statistics in this store; the graph leaves a BatchNorm3d after a Conv3d a module)
        return None
    kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw = a.geometry
    name = f"_conv3d_{k}"
    lines, out = body(a.head, t.loads_for(a.kinds))
    kernels = [render(CONV3D, name, len(a.kinds), body="\n".join(lines), out=out)]
    size = ", ".join(f"({n} + {2 * p} - {dl * (kk - 1) + 1}) // {s} + 1" for n, p, dl, kk, s in
                     (("d", pd, dd, kd, sd), ("h", ph, dh, kh, sh), ("w_", pw, dw, kw, sw)))
    code = [f"def _f{k}({a.params}):"] + operand_lines(a.kinds) + [
        "    nb, c, d, h, w_ = x.shape",
        "    co = w.shape[0]",
        f"    od, oh, ow = {size}",
        "    y = torch.empty((nb, co, od, oh, ow), device=x.device, dtype=torch.float32)",
        "    bn = min(CONV_BLOCK_N, max(16, _pow2(co)))  # no wider than the channels",
        "    bk = min(CONV_BLOCK_K, max(16, _pow2(c)))  # no deeper than them (K padded to it)"]
    pointers = [
        "# Filters as rows of (kd, kh, kw, c): K-major, as the tensor cores read them.",
        f"wk = _pack_filters(w.reshape(co, c, {kd * kh}, {kw}), False, 1, 1, c, CONV_PRECISION == 'tf32rn')",
        "bm = CONV_BLOCK_M",
        f"_launch({name}, (_cdiv(nb * od * oh * ow, bm) * _cdiv(co, bn),), x, wk, y, {a.ptrs}nb, c, d, h, w_, co, "
        f"od, oh, ow, *x.stride(), SD={sd}, SH={sh}, SW={sw}, PD={pd}, PH={ph}, PW={pw}, DD={dd}, DH={dh}, DW={dw}, "
        f"KD={kd}, KH={kh}, KW={kw}, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, PRECISION=CONV_PRECISION, "
        "num_warps=CONV_WARPS, num_stages=_fit_stages(bm, bn, bk, CONV_STAGES))"]
    # (channels in 16-byte rows, as a tensor descriptor's strides must be)
    if (sd, sh, sw, dd, dh, dw) != (1,) * 6 or group.source["conv"].in_channels % 4:
        code += ["    " + line for line in pointers]
        return finish(k, a, code, kernels, "conv", chain, group.shape)
    kernels.append(render(CONV3D_TMA, f"{name}_tma", len(a.kinds), body="\n".join(lines), out=out))
    tma = [
        "cp = _cdiv(c, bk) * bk",
        "# The input's channels-last copy (over its d x h rows) and the filters as rows of (kd, kh, kw, c), c",
        "# padded to cp with zeros (a TMA box never spans two taps), by one launch.",
        f"xl, wk = _tma_operands(x.reshape(nb, c, d * h, w_), w.reshape(co, c, {kd * kh}, {kw}), False, 1, 1, cp, "
        "CONV_PRECISION == 'tf32rn')",
        "# A tile: bh rows of bw pixels of one depth slice (no taller than the output)."] + tma_tile_lines(
        "CONV", "oh", "ow") + [
        f"_launch({name}_tma, (nb * od * _cdiv(oh, bh) * _cdiv(ow, bw) * _cdiv(co, bn),), "
        "_descriptor(xl.reshape(nb, d, h, w_, c), [1, 1, bh, bw, bk]), _descriptor(wk, [bn, bk]), "
        f"y, {a.ptrs}co, od, oh, ow, cp, KD={kd}, KH={kh}, KW={kw}, PD={pd}, PH={ph}, PW={pw}, BH=bh, BW=bw, "
        "BLOCK_N=bn, BLOCK_K=bk, PRECISION=CONV_PRECISION, num_warps=CONV_WARPS, "
        "num_stages=_fit_stages(bh * bw, bn, bk, CONV_STAGES))"]
    code += run_time_choice("CONV_TMA and _tma_ok(x)", tma, pointers)
    return finish(k, a, code, kernels, "conv", chain, group.shape)


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(16, 8, 3, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x)) * 2.0
def get_inputs():
    return [torch.randn(2, 16, 3, 5, 6)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=CONV3D, example=EXAMPLE, example_rules=("triton_conv3d",),
    example_params={"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_BLOCK_W": 8},
    name="conv3d", space="conv", rule="triton_conv3d", prior=5.0, kind="conv", pattern=conv3d_source, emitter=_emit,
    loads={"chan": "tl.load({ptr} + rn, mask=n_ok, other=0.0)[None, :]",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"})
