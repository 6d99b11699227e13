"""A flat 1-D kernel over contiguous data: elementwise ops with per-column, per-channel and per-row
operands; after a split-K GEMM it also sums the partial products (SPLIT). A chain template: it
lowers any chain the pooling and row templates do not claim."""
from __future__ import annotations

from string import Template

from .ir import Op
from .base import ChainTemplate, Lowered, body, render

ELEMENTWISE = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs n, N, C, HW, SPLIT: tl.constexpr, BLOCK: tl.constexpr):
    # int32 offsets: `n` above 2**31 makes Triton pass it as int64 and the arithmetic follows.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK) + n * 0
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLIT):
        v += tl.load(x_ptr + s * n + offs, mask=mask, other=0.0)
$body
    tl.store(out_ptr + offs, $out, mask=mask)
''')


def _lower(t: ChainTemplate, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
           split: str = "1") -> Lowered | None:
    nptr = len(kinds)
    ptrs = "".join(f"p{j}, " for j in range(nptr))
    if not t.supports(ops, kinds):
        return None
    lines, out = body(ops, t.loads_for(kinds))
    kernel = render(ELEMENTWISE, name, nptr, body="\n".join(lines), out=out)
    chan = (f"{y}.shape[1], {y}[0, 0].numel()" if len(full_shape) >= 3 else "1, 1")
    launch = [
        f"    out = torch.empty({y}.shape[-{len(full_shape)}:], device={y}.device, dtype=torch.float32)",
        "    n = out.numel()",
        f"    _launch({name}, (_cdiv(n, EW_BLOCK),), {y}, out, {ptrs}n, out.shape[-1], {chan}, SPLIT={split}, "
        "BLOCK=EW_BLOCK, num_warps=EW_WARPS)",
    ]
    return Lowered(kernel, launch, "out")


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(6, 1, 1))
    def forward(self, x):
        return torch.tanh(x * 2.0 + self.bias) - x
def get_inputs():
    return [torch.randn(2, 6, 5, 7)]
def get_init_inputs():
    return []
'''


TEMPLATE = ChainTemplate(
    kernel=ELEMENTWISE, example=EXAMPLE, example_rules=('fuse_chains',), example_params={'EW_BLOCK': 512},
    name="elementwise",
    params={"EW_BLOCK": [1024, 2048, 4096, 512], "EW_WARPS": [4, 8, 2]},
    constraints=["EW_BLOCK >= 32 * EW_WARPS"],
    loads={"col": "tl.load({ptr} + offs % N, mask=mask, other=0.0)",
           "chan": "tl.load({ptr} + (offs // HW) % C, mask=mask, other=0.0)",
           "row": "tl.load({ptr} + offs // N, mask=mask, other=0.0)",
           "full": "tl.load({ptr} + offs, mask=mask, other=0.0)"},
    claims=lambda ops: True, lowerer=_lower)
