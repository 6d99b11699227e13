"""Max/avg pooling over 1, 2 or 3 spatial dims (NCL, NCHW, NCDHW) with elementwise ops before it (per
input element) and after it, one output element per lane. A chain template: it lowers a chain holding
one `pool` op. POOL_BLOCK: outputs per program, POOL_WARPS (both scaled for wide windows, below)."""
from __future__ import annotations

import math
from string import Template

from .ir import Op
from .base import REDUCE, ChainTemplate, Lowered, body, render, shift, uses

POOL = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs total, n_in, C: tl.constexpr, D: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
          OD: tl.constexpr, OH: tl.constexpr, OW: tl.constexpr, KD: tl.constexpr, KH: tl.constexpr,
          KW: tl.constexpr, SD: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PD: tl.constexpr,
          PH: tl.constexpr, PW: tl.constexpr, IS_MAX: tl.constexpr, COUNT_PAD: tl.constexpr, BLOCK: tl.constexpr):
    # One output element per lane; the window's elements go through the pre-pool ops one by one.
    # The sizes are compile-time constants: the index divisions become multiplications, and the dims
    # a 1-D or 2-D pooling does not have (size 1, window 1, no padding) fold away.
    # int32 offsets unless either tensor passes 2**31 elements: then `total` or `n_in` is int64.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK) + total * 0 + n_in * 0
    mask = offs < total
    ow = offs % OW
    oh = (offs // OW) % OH
    od = (offs // (OW * OH)) % OD
    nc = offs // (OW * OH * OD)
    chan = nc % C
    base = x_ptr + nc * (D * H * W)
    if IS_MAX:
        acc = tl.full((BLOCK,), float('-inf'), tl.float32)
    else:
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
    cnt = tl.zeros((BLOCK,), dtype=tl.float32)
    for a in tl.static_range(KD):
        for i in tl.static_range(KH):
            for j in tl.static_range(KW):
                id_ = od * SD - PD + a
                ih = oh * SH - PH + i
                iw = ow * SW - PW + j
                ok = mask & (id_ >= 0) & (id_ < D) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
                v = tl.load(base + (id_ * H + ih) * W + iw, mask=ok, other=0.0)
$pre
                # Padding as PyTorch's: -inf for max; for avg zeros, counted unless not COUNT_PAD.
                if IS_MAX:
                    acc = tl.maximum(acc, tl.where(ok, $pre_out, float('-inf')))
                else:
                    acc += tl.where(ok, $pre_out, 0.0)
                    cnt += tl.where(ok, 1.0, 0.0)
    if IS_MAX:
        v = acc
    elif COUNT_PAD:
        v = acc / (KD * KH * KW)
    else:
        v = acc / cnt
$post
    tl.store(out_ptr + offs, $out, mask=mask)
''')


def around_pool(t: ChainTemplate, ops: list[Op], kinds: list[str]) -> tuple[list[Op], Op, list[Op]] | None:
    """`ops` as (the ops before the pool, the pool, the ops after it as a group of their own, on the
    pool's output "v"), or None where a pool kernel cannot compute them. Before it: per-element ops
    with per-channel operands ending in the pool's input (they run on input elements, where "full"
    operands, loaded at an output index, would be wrong). After it: ops `t` can load the operands
    of, reading no value from before the pool (`pool(x) + x`: x lives on the input's elements)."""
    at = next(i for i, op in enumerate(ops) if op.name == "pool")
    pre, post, before = ops[:at], shift(ops, at + 1), {"v"} | {f"t{i}" for i in range(at)}
    if ops[at].args[0] != (f"t{at - 1}" if at else "v") or any(op.name in REDUCE for op in pre) or any(
            kinds[int(r[1:])] != "chan" for r in uses(pre) if r.startswith("p")) or uses(ops[at + 1:]) & before:
        return None
    return (pre, ops[at], post) if t.supports(post, kinds) else None


def _lower(t: ChainTemplate, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> Lowered | None:
    nptr = len(kinds)
    ptrs = "".join(f"p{j}, " for j in range(nptr))
    parts = around_pool(t, ops, kinds)
    if parts is None:
        return None
    pre, pool, post = parts
    pre_lines, pre_out = body(pre, t.loads_for(kinds), indent=" " * 16)
    post_lines, out = body(post, t.loads_for(kinds))
    kernel = render(POOL, name, nptr, pre="\n".join(pre_lines), pre_out=pre_out,
                    post="\n".join(post_lines), out=out)
    mode, k, s, p, count_pad, _ = pool.const
    # The spatial dims this pooling has are the last len(k) of (d, h, w); the others are size 1,
    # window 1, stride 1, no padding.
    dims = ("d", "h", "w")[3 - len(k):]
    ones = ["1"] * (3 - len(k))
    outs = ", ".join(f"o{d}" for d in dims)
    sizes = ", ".join(ones + list(dims) + ones + [f"o{d}" for d in dims])
    geometry = ", ".join(f"{g}{d}={v}" for g, fill, values in (("K", 1, k), ("S", 1, s), ("P", 0, p))
                         for d, v in zip("DHW", (fill,) * len(ones) + tuple(values)))
    # A window of 8 or more elements: fewer outputs per program (a half, a quarter from 16) and twice
    # the warps (more loads in flight per output). On an H200: a 3x3x3 max pool 1.31 ms at (1024, 4),
    # 0.68 ms at (512, 8), 0.51 ms at (256, 8); a 3x3 average pool 1.71 ms at (256, 8), 1.24 ms at
    # (256, 4), 1.22 ms at (512, 8); a 3-wide 1-D average pool 0.51 ms at (1024, 4), 0.85 ms at (256, 8).
    window = math.prod(k)
    cut = 4 if window >= 16 else 2 if window >= 8 else 1
    block = f"max(32, POOL_BLOCK // {cut})" if cut > 1 else "POOL_BLOCK"
    warps = "min(8, 2 * POOL_WARPS)" if cut > 1 else "POOL_WARPS"
    launch = [
        f"    nb, c, {', '.join(dims)} = {y}.shape",
        f"    {outs} = " + ", ".join(f"({d} + {2 * pi} - {ki}) // {si} + 1" for d, ki, si, pi in zip(dims, k, s, p)),
        f"    out = torch.empty((nb, c, {outs}), device={y}.device, dtype=torch.float32)",
        f"    _launch({name}, (_cdiv(out.numel(), {block}),), {y}, out, {ptrs}out.numel(), {y}.numel(), c, {sizes}, "
        f"{geometry}, IS_MAX={mode == 'max'}, COUNT_PAD={count_pad}, BLOCK={block}, num_warps={warps})",
    ]
    return Lowered(kernel, launch, "out")


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
    def forward(self, x):
        return torch.sigmoid(self.pool(torch.tanh(x)))
def get_inputs():
    return [torch.randn(2, 3, 9, 8)]
def get_init_inputs():
    return []
'''


TEMPLATE = ChainTemplate(
    kernel=POOL, example=EXAMPLE, example_rules=('fuse_chains',), example_params={},
    name="pool", params={"POOL_BLOCK": [1024, 512, 2048, 256], "POOL_WARPS": [4, 8, 2]},
    constraints=["POOL_BLOCK >= 32 * POOL_WARPS"],
    loads={"chan": "tl.load({ptr} + chan, mask=mask, other=0.0)",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
    claims=lambda ops: any(op.name == "pool" for op in ops), lowerer=_lower)
