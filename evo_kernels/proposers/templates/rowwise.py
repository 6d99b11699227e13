"""Rows of the last dim held whole in registers (one read, one write): softmax, log-softmax,
layer/RMS/L2 norm, mean subtraction, row sums, with elementwise ops before and after. A chain
template: it lowers a chain holding a row reduction (rows of at most 64 Ki elements).

ROW_TILE: elements per program (rows = ROW_TILE // the row length, at least 1); ROW_PER_THREAD:
elements per thread, which sets num_warps.
"""
from __future__ import annotations

from string import Template

from .ir import ROW_LIMIT, Op
from .base import REDUCE, ChainTemplate, Lowered, body, render, row_valued

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


def _lower(t: ChainTemplate, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> Lowered | None:
    nptr = len(kinds)
    ptrs = "".join(f"p{j}, " for j in range(nptr))
    if not t.supports(ops, kinds) or full_shape[-1] > ROW_LIMIT:
        return None  # (a row is held whole in registers: at most 64 Ki elements)
    lines, out = body(ops, t.loads_for(kinds))
    per_row = out in row_valued(ops, kinds)
    if not per_row and out != "v" and any(op.const == ("squeeze",) for op in ops):
        return None
    store = (ROW_STORE_ROW if per_row else ROW_STORE_FULL).format(out=out)
    kernel = render(ROWWISE, name, nptr, body="\n".join(lines), store=store)
    squeeze = ops[-1].const == ("squeeze",)
    shape = (f"{y}.shape[:-1]" if squeeze else f"(*{y}.shape[:-1], 1)") if per_row else f"{y}.shape"
    launch = [
        f"    n = {y}.shape[-1]",
        f"    r = {y}.numel() // n",
        f"    out = torch.empty({shape}, device={y}.device, dtype=torch.float32)",
        "    block_n, rows, warps = _row_config(n)",
        f"    _launch({name}, (_cdiv(r, rows),), {y}, out, {ptrs}r, n, n, SPLIT=1, ROWS=rows, BLOCK_N=block_n, "
        "num_warps=warps)",
    ]
    return Lowered(kernel, launch, "out")


EXAMPLE = '''
class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x * 0.5, dim=-1)
def get_inputs():
    return [torch.randn(5, 7, 33)]
def get_init_inputs():
    return []
'''


TEMPLATE = ChainTemplate(
    kernel=ROWWISE, example=EXAMPLE, example_rules=('fuse_chains',), example_params={},
    name="rowwise", rows=True,
    params={"ROW_TILE": [4096, 2048, 8192, 16384], "ROW_PER_THREAD": [16, 8, 32, 4]},
    loads={"col": "tl.load({ptr} + rn, mask=cmask, other=0.0)[None, :]",
           "row": "tl.load({ptr} + rm, mask=rmask, other=0.0)[:, None]",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
    claims=lambda ops: any(op.name in REDUCE for op in ops), lowerer=_lower)
