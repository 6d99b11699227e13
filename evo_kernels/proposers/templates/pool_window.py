"""Max/avg pooling over 2 dims (NCHW) at stride 1 down the rows, as a sliding window: each program
holds ROWS output rows of BLOCK_W columns of one plane. Each input row is reduced across the
window's KW columns once (its KW loads), and the last KH such rows are kept in registers, so an
output row costs KW loads, where a lane per output (templates/pool.py) costs KH x KW: that kernel is
bound by the load units, not by memory. On an H200, level1/23's 3x3 average pool: the lane kernel at
63% of the bytes bound, compile at 61%, this one at 83% (experiments/RESULTS.md). Elementwise ops
before the pool (per-channel operands) run on each loaded element, those after it on each output.

A chain template: it claims the chains whose pool op is 2-D with a row stride of 1 (box filters,
SPP's 5x5 max pools); any other pool goes to templates/pool.py. POOL_ROWS: output rows a program;
POOL_PER_THREAD: columns a lane.
"""
from __future__ import annotations

from string import Template

from .ir import Op
from .base import ChainTemplate, Lowered, body, ptr_params, uses
from .pool import around_pool

MAX_WINDOW = 16  # rows or columns: the window's rows live in registers
PAD_MAX = "float('-inf')"

HEAD = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs C: tl.constexpr, H: tl.constexpr, W: tl.constexpr, OH: tl.constexpr,
          OW: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr, ROWS: tl.constexpr,
          BLOCK_W: tl.constexpr):
    # A sliding window down the rows, each input row reduced across the window's KW columns once
    # (h0, h1, ...: the window's rows); an output row loads one new input row at KW column offsets.
    pid = tl.program_id(0)
    tiles_w = tl.cdiv(OW, BLOCK_W)
    tiles = tl.cdiv(OH, ROWS) * tiles_w
    plane = pid // tiles
    oh0 = ((pid % tiles) // tiles_w) * ROWS
    ow = (pid % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    chan = plane % C
    src = x_ptr + plane.to(tl.int64) * (H * W)
    dst = plane.to(tl.int64) * (OH * OW)
''')


def _window(op: Op) -> bool:
    mode, k, s, p, count_pad, _ = op.const
    return len(k) == 2 and s[0] == 1 and max(k) <= MAX_WINDOW


def claims(ops: list[Op]) -> bool:
    return any(op.name == "pool" and _window(op) for op in ops)


def window_kernel(name: str, n_ptrs: int, pool: Op, pre: list[Op], post: list[Op], kinds: list[str]) -> str:
    """The kernel's source for a pool op `pool` with ops `pre` before it (on input elements) and
    `post` after it (on outputs)."""
    mode, (kh, kw), _, _, count_pad, _ = pool.const
    is_max = mode == "max"
    pad = PAD_MAX if is_max else "0.0"
    i4, i8 = " " * 4, " " * 8
    lines = [HEAD.substitute(name=name, ptrs=ptr_params(n_ptrs)).rstrip("\n")]
    # The per-channel operands of the ops before the pool: scalars of the program's channel, loaded once.
    pre_operands = sorted(r for r in uses(pre) if r.startswith("p"))
    lines += [f"{i4}{r} = tl.load({r}_ptr + chan)" for r in pre_operands]
    for j in range(kw):
        lines += [f"{i4}iw{j} = ow * SW - PW + {j}", f"{i4}col_ok{j} = (ow < OW) & (iw{j} >= 0)"]
    if not is_max and not count_pad:  # the window's columns inside the input (the divisor's column factor)
        lines.append(f"{i4}ncol = " + " + ".join(f"((iw{j} >= 0) & (iw{j} < W)).to(tl.float32)" for j in range(kw)))

    def input_row(i: int, ih: str, indent: str) -> list[str]:
        # A row outside the input reads nothing (no column is below its limit) and is padding: -inf
        # for max, zeros for avg, as PyTorch pads the pre-pool values.
        out = [f"{indent}ih = {ih}", f"{indent}row = src + ih * W", f"{indent}lim = tl.where((ih >= 0) & (ih < H), W, 0)"]
        terms = []
        for j in range(kw):
            pre_lines, pre_out = body(pre, {}, indent=indent, temp=f"e{j}_", given=pre_operands)
            out.append(f"{indent}ok{j} = col_ok{j} & (iw{j} < lim)")
            if pre:  # the ops run on the loaded values; the padding is theirs
                out += [f"{indent}v = tl.load(row + iw{j}, mask=ok{j}, other=0.0)"] + pre_lines
                out.append(f"{indent}m{j} = tl.where(ok{j}, {pre_out}, {pad})")
            else:
                out.append(f"{indent}m{j} = tl.load(row + iw{j}, mask=ok{j}, other={pad})")
            terms.append(f"m{j}")
        out.append(f"{indent}h{i} = {_combine(terms, is_max)}")
        return out

    for i in range(kh - 1):  # the window's rows before the first output row
        lines += input_row(i, f"oh0 - PH + {i}", i4)
    lines += [f"{i4}for r in range(ROWS):", f"{i8}oh = oh0 + r"] + input_row(kh - 1, f"oh - PH + {kh - 1}", i8)
    window = _combine([f"h{i}" for i in range(kh)], is_max)
    if is_max:
        lines.append(f"{i8}v = {window}")
    elif count_pad:  # the window never passes the padded input's edge (no ceil_mode): always KH x KW
        lines.append(f"{i8}v = ({window}) / {float(kh * kw)!r}")
    else:
        lines += [f"{i8}nrow = (tl.minimum(oh - PH + {kh}, H) - tl.maximum(oh - PH, 0)).to(tl.float32)",
                  f"{i8}v = ({window}) / tl.maximum(nrow * ncol, 1.0)"]
    post_lines, out = body(post, {f"p{j}": LOADS[k] for j, k in enumerate(kinds) if k in LOADS}, indent=i8)
    lines += [f"{i8}mask = ow < tl.where(oh < OH, OW, 0)", f"{i8}offs = dst + oh * OW + ow"] + post_lines
    lines.append(f"{i8}tl.store(out_ptr + offs, {out}, mask=mask)")
    lines += [f"{i8}h{i} = h{i + 1}" for i in range(kh - 1)]  # slide down one row
    return "\n".join(lines) + "\n"


def _combine(terms: list[str], is_max: bool) -> str:
    # Left to right, as written: max(max(a, b), c) or a + b + c.
    if not is_max:
        return " + ".join(terms)
    expr = terms[0]
    for t in terms[1:]:
        expr = f"tl.maximum({expr}, {t})"
    return expr


LOADS = {"chan": "tl.load({ptr} + chan)", "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"}


def _lower(t: ChainTemplate, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> Lowered | None:
    parts = around_pool(t, ops, kinds)
    if parts is None:
        return None
    pre, pool, post = parts
    kernel = window_kernel(name, len(kinds), pool, pre, post, kinds)
    _, (kh, kw), (_, sw), (ph, pw), _, _ = pool.const
    ptrs = "".join(f"p{j}, " for j in range(len(kinds)))
    launch = [
        f"    nb, c, h, w = {y}.shape",
        f"    oh, ow = h + {2 * ph - kh + 1}, (w + {2 * pw} - {kw}) // {sw} + 1",
        f"    out = torch.empty((nb, c, oh, ow), device={y}.device, dtype=torch.float32)",
        "    # A program: POOL_ROWS rows of up to 512 columns, POOL_PER_THREAD columns a lane.",
        "    bw = min(_pow2(ow), 512)",
        "    rows = min(POOL_ROWS, oh)",
        "    tiles = _cdiv(oh, rows) * _cdiv(ow, bw)",
        f"    _launch({name}, (nb * c * tiles,), {y}, out, {ptrs}C=c, H=h, W=w, OH=oh, OW=ow, SW={sw}, PH={ph}, PW={pw}, "
        "ROWS=rows, BLOCK_W=bw, num_warps=max(1, min(8, bw // (32 * POOL_PER_THREAD))))",
    ]
    return Lowered(kernel, launch, "out")


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=(1, 2), padding=1, count_include_pad=False)
    def forward(self, x):
        return torch.sigmoid(self.pool(torch.tanh(x))) * 2.0
def get_inputs():
    return [torch.randn(2, 3, 9, 13)]
def get_init_inputs():
    return []
'''


TEMPLATE = ChainTemplate(
    kernel=HEAD, example=EXAMPLE, example_rules=('fuse_chains',), example_params={'POOL_ROWS': 4},
    name="pool_window",
    # 16 rows a program and 4 columns a lane were the depthwise sliding window's best on an H200
    # (experiments/RESULTS.md), the same loop over the same rows.
    params={"POOL_ROWS": [16, 8, 32, 4], "POOL_PER_THREAD": [4, 2, 8, 1]},
    loads=LOADS, claims=claims, lowerer=_lower)
