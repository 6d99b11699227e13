"""Training-mode BatchNorm after an anchor: per-channel statistics (count, mean, M2) computed in the
anchor's epilogue (STATS) or by a kernel of their own for a tensor made elsewhere (CHAN_STATS), then
combined on the host (`_bn_scale_shift` in helpers.HELPERS) into a scale and a shift that one more pass
applies, updating the running statistics as BatchNorm does. In eval mode (running statistics) the
scale and shift are known before the anchor runs: its store applies them (`fold_lines`)."""
from __future__ import annotations

from string import Template
from typing import Any

from .base import body, prefix
from .ir import Op

# Per-tile column statistics of an anchor's output for a BatchNorm after it: (count, mean, M2) per
# BLOCK_M rows, combined later with Chan's formula (stable whatever the mean). `chunk`: the tile's row
# of the statistics (pid_m where the M tiles are global); `valid`: the tile's rows that are pixels
# (a transposed conv's tile may hold none: an uneven phase's missing last row).
STATS_PTRS = " st_mean_ptr, st_m2_ptr, st_cnt_ptr, BN_STATS: tl.constexpr,"
STATS_ARGS = "st_mean, st_m2, st_cnt, stats, "  # the launch's, in STATS_PTRS's places
STATS = """{i}sv = tl.where(mask, {out}, 0.0)
{i}cnt = tl.sum(tl.where({valid}, 1.0, 0.0), axis=0)
{i}tmean = tl.sum(sv, axis=0) / tl.maximum(cnt, 1.0)
{i}dv = tl.where(mask, {out} - tmean[None, :], 0.0)
{i}tl.store(st_mean_ptr + {chunk} * {ncols} + rn, tmean, mask=rn < {ncols})
{i}tl.store(st_m2_ptr + {chunk} * {ncols} + rn, tl.sum(dv * dv, axis=0), mask=rn < {ncols})
{i}tl.store(st_cnt_ptr + {chunk}, cnt)"""


def stats_in_store(i: str, out: str, ncols: str, chunk: str, valid: str) -> str:
    """STATS under the kernel's BN_STATS flag: only where the batch's statistics are used (training,
    or no running statistics); in eval mode the running ones are, and the column reductions would
    cost the store for nothing (0.07 ms of level2/11's 0.555 ms conv on an H200)."""
    return f"{i}if BN_STATS:\n" + STATS.format(i=i + "    ", out=out, ncols=ncols, chunk=chunk, valid=valid)


def stats_alloc(rows: str, cols: str, device: str, i: str = "    ") -> list[str]:
    """The helper's lines before the anchor's launch: whether the batch's statistics are wanted
    (`stats`, the BN_STATS flag) and their buffers, a row per tile (one unread row where not)."""
    return [f"{i}stats = bool(_bn_batch_stats(bn_mod.training, bn_rm))  # (the names bn_args gives the helper)",
            f"{i}st_mean = torch.empty(({rows} if stats else 1, {cols}), device={device}, dtype=torch.float32)",
            f"{i}st_m2, st_cnt = torch.empty_like(st_mean), torch.empty((st_mean.shape[0],), device={device}, "
            "dtype=torch.float32)"]


# The same statistics for a tensor made elsewhere (cuDNN, cuBLAS, an input), viewed as [R, C, S].
CHAN_STATS = Template('''
@triton.jit
def $name(x_ptr, mean_ptr, m2_ptr, cnt_ptr, R, C, S: tl.constexpr, BLOCK: tl.constexpr):
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    j = chunk * BLOCK + tl.arange(0, BLOCK)
    ok = j < R * S
    r = j // S
    x = tl.load(x_ptr + (r * C + c).to(tl.int64) * S + (j - r * S), mask=ok, other=0.0)
    cnt = tl.sum(tl.where(ok, 1.0, 0.0), axis=0)
    mean = tl.sum(x, axis=0) / cnt
    d = tl.where(ok, x - mean, 0.0)
    tl.store(mean_ptr + chunk * C + c, mean)
    tl.store(m2_ptr + chunk * C + c, tl.sum(d * d, axis=0))
    tl.store(cnt_ptr + chunk, cnt)
''')


def bn_apply(ops: list[Op], kinds: list[str], chan: str) -> tuple[Op, list[Op], list[str]]:
    """A leading BatchNorm as two more operands (per-channel scale and shift) and two ops on them."""
    n = len(kinds)

    def ref(a: Any) -> Any:
        return f"t{int(a[1:]) + 1}" if isinstance(a, str) and a.startswith("t") else a
    apply = [Op("mul", ("v", f"p{n}")), Op("add", ("t0", f"p{n + 1}"))]
    apply += [Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops[1:]]
    return ops[0], apply, kinds + [chan, chan]


def fold_lines(rest: list[Op], kinds: list[str], template: Any, out: str, kind: str, indent: str) -> str | None:
    """Eval mode, a BatchNorm with running statistics first in `rest`: it is a per-channel scale and
    shift (operands of `kind`), so the anchor's store applies it and what follows (elementwise, its
    operands loadable there) under the kernel's FOLD flag, and the pass over the anchor's output that
    would apply them is not made. The store's lines at `indent`, or None where it cannot."""
    _, apply, kinds = bn_apply(rest, kinds, kind)
    if prefix(apply, template, kinds) != len(apply):
        return None
    inner = indent + "    "
    lines, fout = body(apply, template.loads_for(kinds), indent=inner, temp="f")
    return "\n".join([f"{indent}if FOLD:", f"{inner}v = {out}"] + lines + [f"{inner}{out} = {fout}"])


def bn_args(bn: Op) -> tuple[list[Any], str, str]:
    """The BatchNorm's tensors as helper arguments, their parameter names, and the finishing line.
    The module itself comes too: its `training` flag decides, at each call, between batch statistics
    (updating the running ones) and the running statistics, as BatchNorm does after `.eval()`."""
    target, eps, momentum, affine, track = bn.const
    names = ["bn_w", "bn_b", "bn_rm", "bn_rv", "bn_nbt"]
    attrs = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    args = [f"attr:{target}.{a}" if (affine if i < 2 else track) else None for i, a in enumerate(attrs)]
    args.append(f"attr:{target}")
    finish = f"_bn_scale_shift(st_cnt, st_mean, st_m2, {', '.join(names)}, bn_mod.training, {eps!r}, {momentum!r})"
    return args, ", ".join(names + ["bn_mod"]), finish


def stats_kernel_lines(name: str, y: str, ndim: int) -> list[str]:
    """The statistics pass over `y` for a BatchNorm's helper; only where the batch's statistics are
    used (training, or no running statistics): in eval mode the running ones are, and reading `y`
    for nothing would cost a third of the pass over it."""
    r, c = f"{y}.shape[0]", f"{y}.shape[1]"
    sz = f"{y}[0, 0].numel()" if ndim >= 3 else "1"  # (N, C, spatial...) or (N, C)
    return ["    st_cnt = st_mean = st_m2 = None",
            "    if _bn_batch_stats(bn_mod.training, bn_rm):  # (the names bn_args gives the helper)",
            f"        st_r, st_c, st_s = {r}, {c}, {sz}",
            "        chunks = _cdiv(st_r * st_s, 4096)",
            f"        st_mean = torch.empty((chunks, st_c), device={y}.device, dtype=torch.float32)",
            "        st_m2 = torch.empty_like(st_mean)",
            f"        st_cnt = torch.empty((chunks,), device={y}.device, dtype=torch.float32)",
            f"        _launch({name}, (st_c, chunks), {y}, st_mean, st_m2, st_cnt, st_r, st_c, S=st_s, BLOCK=4096, "
            "num_warps=8)"]
