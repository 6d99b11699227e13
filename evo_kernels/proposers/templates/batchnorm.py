"""Training-mode BatchNorm of an (N, C, H, W) tensor made elsewhere (an input, cuDNN's convolution) in
one kernel, with the elementwise ops after it: one read and one write of the tensor.

Each channel's N x H x W elements are split among a group of SPLIT programs. A program holds its
chunk (BN_CHUNK elements: up to PL planes by SB pixels of one) in registers, publishes the chunk's
(mean, M2), waits for its group's, merges them with Chan's formula into the channel's mean and
variance, normalizes what it holds, applies the tail, and stores. The path it replaces (a statistics
pass, a finalize, an apply pass) reads the tensor twice, as compile's does: 66% of the read-and-write
bound for both on an H200 (level1/12).

A group must be on the device at once: SPLIT is at most the SM count (each SM holds at least one
program), and a program's (channel, chunk) comes from a ticket taken when it starts, so the programs a
group waits for have started or start as the groups before it finish (as in reduce.py's coop kernel).
Where a channel needs more programs than that, or off a GPU (Triton's interpreter runs programs one
after another) more than one, the launch takes the three-pass path instead. The running statistics
are updated by each group's first program, as BatchNorm does.
"""
from __future__ import annotations

from string import Template

from .base import REDUCE, TritonTemplate, body, render
from .elementwise import TEMPLATE as ELEMENTWISE
from .ir import Op

BN_HELD = Template('''
@triton.jit
def $name(x_ptr, out_ptr,$ptrs w_ptr, b_ptr, rm_ptr, rv_ptr, nbt_ptr, part_ptr, sync_ptr, R, C, HW, N, SPLIT, HSPLIT,
          eps, momentum, PL: tl.constexpr, SB: tl.constexpr, SPLIT_P2: tl.constexpr, HAS_W: tl.constexpr,
          HAS_B: tl.constexpr, UPDATE: tl.constexpr, I64: tl.constexpr):
    # A BatchNorm's channel split among SPLIT programs that hold their chunk across the group's wait.
    t = tl.atomic_add(sync_ptr, 1)
    c = t // SPLIT
    s = t - c * SPLIT
    r = (s // HSPLIT) * PL + tl.arange(0, PL)
    h = (s % HSPLIT) * SB + tl.arange(0, SB)
    mask = (r < R)[:, None] & (h < HW)[None, :]
    row = r * C + c
    if I64:
        row = row.to(tl.int64)
    offs = row[:, None] * HW + h[None, :]
    v = tl.load(x_ptr + offs, mask=mask, other=0.0)
    cnt = tl.sum(tl.sum(tl.where(mask, 1.0, 0.0), axis=1), axis=0)
    mean = tl.sum(tl.sum(v, axis=1), axis=0) / cnt
    d = tl.where(mask, v - mean, 0.0)
    tl.store(part_ptr + t, mean)
    tl.store(part_ptr + C * SPLIT + t, tl.sum(tl.sum(d * d, axis=1), axis=0))  # M2 from the chunk's own mean
    tl.debug_barrier()  # every thread's stores before the release below
    tl.atomic_add(sync_ptr + 1 + c, 1, sem="release")
    while tl.atomic_add(sync_ptr + 1 + c, 0, sem="acquire") < SPLIT:
        pass
    # The group's chunks merged: counts from their places, means and M2 from the partials.
    i = tl.arange(0, SPLIT_P2)
    ok = i < SPLIT
    rows_i = tl.minimum(R - (i // HSPLIT) * PL, PL)
    cols_i = tl.minimum(HW - (i % HSPLIT) * SB, SB)
    n_i = tl.where(ok, rows_i * cols_i, 0).to(tl.float32)
    m_i = tl.load(part_ptr + c * SPLIT + i, mask=ok, other=0.0)
    total = tl.sum(n_i, axis=0)
    mu = tl.sum(n_i * m_i, axis=0) / total
    dm = m_i - mu
    var = tl.sum(tl.load(part_ptr + C * SPLIT + c * SPLIT + i, mask=ok, other=0.0) + n_i * dm * dm, axis=0) / total
    scale = 1.0 / tl.sqrt_rn(var + eps)
    if HAS_W:
        scale = scale * tl.load(w_ptr + c)
    shift = -mu * scale
    if HAS_B:
        shift = shift + tl.load(b_ptr + c)
    if UPDATE:
        if s == 0:
            tl.store(rm_ptr + c, tl.load(rm_ptr + c) * (1.0 - momentum) + mu * momentum)
            tl.store(rv_ptr + c, tl.load(rv_ptr + c) * (1.0 - momentum) + var * (total / (total - 1.0)) * momentum)
            if c == 0:
                tl.store(nbt_ptr, tl.load(nbt_ptr) + 1)
$body
    tl.store(out_ptr + offs, $out, mask=mask)
''')


def lower(name: str, bn: Op, ops: list[Op], kinds: list[str], y: str) -> tuple[str, list[str]] | None:
    """The kernel and the helper's lines that run it where it applies (returning `out` there), for
    `ops` on `y` after BatchNorm `bn` (stats.bn_apply's: its scale and shift are the last two operands,
    computed in the kernel), or None where the tail is not elementwise over loadable operands."""
    n = len(kinds) - 2
    if any(op.name in REDUCE or op.name in ("pool", "bn") for op in ops) or not ELEMENTWISE.supports(ops, kinds[:n] + ["chan"] * 2):
        return None
    # The elementwise template's loads, but a per-channel operand is one value: the program's channel's.
    loads = {p: ("tl.load({ptr} + c)" if k == "chan" else ELEMENTWISE.loads[k]) for p, k in
             zip((f"p{j}" for j in range(n)), kinds[:n])}
    lines, out = body(ops, loads, given=(f"p{n}", f"p{n + 1}"))
    kernel = render(BN_HELD, name, n, body=f"    p{n}, p{n + 1} = scale, shift\n" + "\n".join(lines), out=out)
    _, eps, momentum, _, _ = bn.const
    ptrs = "".join(f"p{j}, " for j in range(n))
    some = lambda t: f"{t} if {t} is not None else {y}"  # noqa: E731 - an unread pointer where there is no tensor
    launch = [
        "    if _bn_batch_stats(bn_mod.training, bn_rm):  # (the names bn_args gives the helper)",
        f"        bn_r, bn_c, bn_hw = {y}.shape[0], {y}.shape[1], {y}[0, 0].numel()",
        "        bn_sb = min(BN_CHUNK, triton.next_power_of_2(bn_hw))",
        "        bn_pl = min(BN_CHUNK // bn_sb, triton.next_power_of_2(bn_r))",
        "        bn_hsplit = triton.cdiv(bn_hw, bn_sb)",
        "        bn_split = triton.cdiv(bn_r, bn_pl) * bn_hsplit",
        f"        if bn_split <= (torch.cuda.get_device_properties({y}.device).multi_processor_count if {y}.is_cuda else 1):",
        f"            out = torch.empty({y}.shape, device={y}.device, dtype=torch.float32)",
        f"            bn_part = torch.empty((2 * bn_c * bn_split,), device={y}.device, dtype=torch.float32)",
        f"            bn_sync = torch.zeros((1 + bn_c,), device={y}.device, dtype=torch.int32)",
        "            bn_up = bool(bn_mod.training and bn_rm is not None)",
        f"            {name}[(bn_c * bn_split,)]({y}, out, {ptrs}{some('bn_w')}, {some('bn_b')}, {some('bn_rm')}, "
        f"{some('bn_rv')}, {some('bn_nbt')}, bn_part, bn_sync, bn_r, bn_c, bn_hw, {y}.shape[-1], bn_split, bn_hsplit, "
        f"{eps!r}, {momentum!r}, PL=bn_pl, SB=bn_sb, SPLIT_P2=max(2, triton.next_power_of_2(bn_split)), "
        "HAS_W=bn_w is not None, HAS_B=bn_b is not None, UPDATE=bn_up, "
        f"I64={y}.numel() >= 2 ** 31, num_warps=max(1, min(BN_WARPS, bn_pl * bn_sb // 256)))",
        "            return out",
    ]
    return kernel, launch


EXAMPLE = '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(6)
        self.bias = nn.Parameter(torch.randn(6, 1, 1))
    def forward(self, x):
        return torch.relu(self.bn(x)) + self.bias
def get_inputs():
    return [torch.randn(3, 6, 5, 7) * 3.0 + 1.0]
def get_init_inputs():
    return []
'''

TEMPLATE = TritonTemplate(
    kernel=BN_HELD, example=EXAMPLE, example_rules=("fuse_chains",), name="batchnorm",
    # 32768 over 16 warps: 64 values a thread, a program per SM, 128 programs for level1/12's channels
    # of 4 Mi elements (the SM count bounds a group).
    params={"BN_CHUNK": [32768, 16384, 8192], "BN_WARPS": [16, 8]})

