"""2-D max/avg pooling with elementwise ops before it (per input element) and after it, one output
element per lane. A chain template: it lowers a chain holding one `pool` op; its launch reads the
elementwise template's space (EW_BLOCK, EW_WARPS)."""
from __future__ import annotations

from string import Template

from .ir import Op
from .base import ChainTemplate, Lowered, body, render, shift, uses

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


def _lower(t: ChainTemplate, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> Lowered | None:
    nptr = len(kinds)
    ptrs = "".join(f"p{j}, " for j in range(nptr))
    pool_at = next(i for i, op in enumerate(ops) if op.name == "pool")
    pre, post = ops[:pool_at], shift(ops, pool_at + 1)
    pool = ops[pool_at]
    if pool.args[0] != (f"t{pool_at - 1}" if pool_at else "v") or any(
            kinds[int(r[1:])] != "chan" for r in uses(pre) if r.startswith("p")):
        return None
    if not t.supports(post, kinds):
        return None
    pre_lines, pre_out = body(pre, t.loads_for(kinds), indent=" " * 12)
    post_lines, out = body(post, t.loads_for(kinds))
    kernel = render(POOL, name, nptr, pre="\n".join(pre_lines), pre_out=pre_out,
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
    name="pool", space="elementwise",
    loads={"chan": "tl.load({ptr} + chan, mask=mask, other=0.0)",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
    claims=lambda ops: any(op.name == "pool" for op in ops), lowerer=_lower)
