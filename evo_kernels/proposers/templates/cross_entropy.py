"""Cross-entropy over class logits [N, C] with integer targets, the logits read once: each row's
log-sum-exp is folded online (a running max and sum of exp, one tile at a time) while the target's
logit is read on the side, and the loss per row is stored; the mean or sum over rows is a few
kilobytes more. Bytes moved: N x C x 4 once (a max pass then a sum-of-exp pass reads them twice).

When the rows are too few to fill the device (a large vocabulary, a few tokens), each row is split
into chunks whose (max, sum of exp) are combined after, by a few small torch ops on [N, chunks].
Matched: `F.cross_entropy` and `nn.CrossEntropyLoss` with 2-D fp32 logits, int64 targets, any
`ignore_index` and reduction, no class weights and no label smoothing (those stay PyTorch's).

CE_TILE: classes per tile; CE_WARPS; CE_WAVES: programs per SM aimed at when choosing the split.
"""
from __future__ import annotations

from string import Template
from typing import Any

import torch.nn.functional as F
from torch import fx, nn

from .base import AnchorTemplate, Emitted
from .ir import Group, arg, index_shape, shape_of

CROSS_ENTROPY = Template('''
@triton.jit
def ${name}_rows(x_ptr, t_ptr, loss_ptr, pm_ptr, ps_ptr, C, CH, SPLIT, IGNORE, FINAL: tl.constexpr,
                 BLOCK_C: tl.constexpr):
    # Program (row, s): classes [s * CH, s * CH + CH) of the row folded online into (max, sum of
    # exp), a tile at a time; FINAL (one chunk): the row's loss, log-sum-exp minus the target's logit.
    row = tl.program_id(0)
    s = tl.program_id(1)
    base = x_ptr + row.to(tl.int64) * C
    lo = s * CH
    hi = tl.minimum(lo + CH, C)
    zero = tl.sum(tl.zeros((BLOCK_C,), tl.float32), axis=0)  # fp32 scalars carried by the loop
    mx = zero + float('-inf')
    total = zero
    for c0 in range(lo, hi, BLOCK_C):
        cc = c0 + tl.arange(0, BLOCK_C)
        x = tl.load(base + cc, mask=cc < hi, other=float('-inf'))
        new = tl.maximum(mx, tl.max(x, axis=0))
        safe = tl.where(new == float('-inf'), 0.0, new)
        total = total * tl.exp(mx - safe) + tl.sum(tl.exp(x - safe), axis=0)
        mx = new
    if FINAL:
        t = tl.load(t_ptr + row)
        valid = t != IGNORE
        # (a target out of range is PyTorch's error; here it is clamped, never read out of bounds)
        xt = tl.load(base + tl.minimum(tl.maximum(t, 0), C - 1))
        loss = mx + tl.log(total) - xt
        tl.store(loss_ptr + row, tl.where(valid, loss, 0.0))
    else:
        o = row.to(tl.int64) * SPLIT + s
        tl.store(pm_ptr + o, mx)
        tl.store(ps_ptr + o, total)
''')

LAUNCH = Template('''
def ${name}_run(x, t, ignore):
    # The loss of each row (0 where the target is ignored), fp32 [N].
    n, c = x.shape
    block_c = min(CE_TILE, _pow2(c))
    # Split the rows into chunks when fewer than CE_WAVES programs per SM would run.
    split, ch = _split_length(x, n, c, block_c, CE_WAVES, 64)
    loss = torch.empty(n, device=x.device, dtype=torch.float32)
    if split == 1:
        _launch(${name}_rows, (n, 1),
                x, t, loss, loss, loss, c, ch, 1, ignore, FINAL=True, BLOCK_C=block_c, num_warps=CE_WARPS)
        return loss
    pm = torch.empty((n, split), device=x.device, dtype=torch.float32)
    ps = torch.empty((n, split), device=x.device, dtype=torch.float32)
    _launch(${name}_rows, (n, split),
            x, t, loss, pm, ps, c, ch, split, ignore, FINAL=False, BLOCK_C=block_c, num_warps=CE_WARPS)
    mx = pm.amax(dim=1, keepdim=True)
    safe = torch.where(mx == float('-inf'), 0.0, mx)
    lse = safe[:, 0] + torch.log((ps * torch.exp(pm - safe)).sum(dim=1))
    valid = t != ignore
    xt = x.gather(1, torch.where(valid, t, 0).clamp(0, c - 1)[:, None])[:, 0]
    return torch.where(valid, lse - xt, 0.0)
''')


def cross_entropy_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """The logits, targets, ignore_index and reduction of a cross-entropy this template computes
    exactly as PyTorch does; None for anything else."""
    mod = modules.get(node.target) if node.op == "call_module" else None
    if isinstance(mod, nn.CrossEntropyLoss):
        weight, ignore, reduction, smoothing = mod.weight, mod.ignore_index, mod.reduction, mod.label_smoothing
    elif node.op == "call_function" and node.target is F.cross_entropy:
        if arg(node, 3, "size_average") is not None or arg(node, 5, "reduce") is not None:
            return None  # the deprecated spelling of the reduction
        weight, ignore = arg(node, 2, "weight"), arg(node, 4, "ignore_index", -100)
        reduction, smoothing = arg(node, 6, "reduction", "mean"), arg(node, 7, "label_smoothing", 0.0)
    else:
        return None
    x, t = arg(node, 0, "input"), arg(node, 1, "target")
    xs = shape_of(x)
    if (weight is not None or smoothing or reduction not in ("mean", "sum", "none") or not isinstance(ignore, int)
            or xs is None or len(xs) != 2 or index_shape(t) != (xs[0],)):
        return None
    return {"x": x, "t": t, "ignore": ignore, "reduction": reduction}


def _emit(k: int, group: Group, t: Any, chain: Any) -> Emitted | None:
    """The helper `_fK`: the loss per row, then the reduction over rows (mean: over the rows whose
    target is not ignored, NaN when there are none, as in PyTorch)."""
    if group.ops:
        return None
    src = group.source
    name = f"_ce_{k}"
    code = [f"def _f{k}(x, t):", f"    loss = {name}_run(x.contiguous(), t.contiguous(), {src['ignore']})"]
    if src["reduction"] == "mean":
        code.append(f"    return loss.sum() / (t != {src['ignore']}).sum()")
    elif src["reduction"] == "sum":
        code.append("    return loss.sum()")
    else:
        code.append("    return loss")
    kernels = [CROSS_ENTROPY.substitute(name=name), LAUNCH.substitute(name=name)]
    return Emitted([src["x"], src["t"]], kernels, "\n".join(code) + "\n", {"cross_entropy"})


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.loss = nn.CrossEntropyLoss(ignore_index=3)
    def forward(self, logits, target):
        return self.loss(logits * 2.0, target)
def get_inputs():
    return [torch.randn(9, 37), torch.randint(0, 37, (9,))]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=CROSS_ENTROPY, example=EXAMPLE, example_rules=("triton_cross_entropy",), example_params={},
    name="cross_entropy", rule="triton_cross_entropy", prior=4.0, kind="reduce", pattern=cross_entropy_source,
    emitter=_emit, params={"CE_TILE": [4096, 2048, 8192, 1024], "CE_WARPS": [8, 4, 16], "CE_WAVES": [4, 2, 8]})
