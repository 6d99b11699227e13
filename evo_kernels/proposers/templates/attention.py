"""scaled_dot_product_attention in fp32 as one flash-attention kernel: the scores never reach memory,
each query tile streams the keys and values once with an online softmax (running max and sum in
fp32), and both products go through `tl.dot(..., input_precision=ATTN_PRECISION)`: "tf32x3" (the
split-precision product on the tensor cores, about fp32's accuracy) or "ieee" (fp32 FMA). PyTorch has
no fp32 flash kernel: it runs the memory-efficient one on CUDA cores, so on long sequences the
bound moves from fp32 FMA's peak to a third of TF32's. The verifier, not this comment, decides
whether the accuracy holds: each precision is a value of the space.

Matched: F.scaled_dot_product_attention with fp32 q, k, v of rank 3 or 4 (k and v of q's batch and
heads), any scale, is_causal (top-left, as PyTorch), an attention mask (bool: where to attend; or
float: added to the scores) broadcastable to the scores, no dropout, no grouped-query heads, head
size up to 128. Hand-written attention reaches it through the `sdpa` rule.

ATTN_BLOCK_M: queries per program; ATTN_BLOCK_N: keys per step; ATTN_WARPS; ATTN_STAGES: software
pipelining depth of the key/value loads. Defaults from the H200 (causal, 2 x 16 x 8192 x 64): 128 x
64 tiles, 8 warps, 3 stages 5.88 ms; 2 stages 6.10; 64-query tiles 11.3; "ieee" products 215 ms.
"""
from __future__ import annotations

from string import Template
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .base import AnchorTemplate, Emitted
from .ir import arg, shape_of

ATTENTION = Template('''
@triton.jit
def ${name}_step(acc, m_i, l_i, q, k_base, v_base, mask_base, start, rm, rd, SQ, SK, s_ks, s_vs, s_mq, s_mk,
                 qk_scale, D: tl.constexpr, EDGE: tl.constexpr, CAUSAL: tl.constexpr, MASK: tl.constexpr,
                 BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    # One tile of keys folded into the running (max, sum, output) of each query row. EDGE: the tile
    # crosses the sequence's end or the causal diagonal (masks needed); interior tiles skip them.
    rn = start + tl.arange(0, BLOCK_N)
    d_ok = rd < D
    if EDGE:
        k = tl.load(k_base + rn[None, :] * s_ks + rd[:, None], mask=(rn[None, :] < SK) & d_ok[:, None], other=0.0)
    else:
        k = tl.load(k_base + rn[None, :] * s_ks + rd[:, None], mask=d_ok[:, None], other=0.0)
    s = tl.dot(q, k, input_precision=PRECISION) * qk_scale
    if MASK == 1:
        keep = tl.load(mask_base + rm[:, None] * s_mq + rn[None, :] * s_mk,
                       mask=(rm[:, None] < SQ) & (rn[None, :] < SK), other=0)
        s = tl.where(keep != 0, s, float('-inf'))
    elif MASK == 2:
        s += tl.load(mask_base + rm[:, None] * s_mq + rn[None, :] * s_mk,
                     mask=(rm[:, None] < SQ) & (rn[None, :] < SK), other=0.0)
    if EDGE:
        ok = rn[None, :] < SK
        if CAUSAL:
            ok = ok & (rn[None, :] <= rm[:, None])
        s = tl.where(ok, s, float('-inf'))
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    # A row with nothing to attend to yet keeps a max of -inf: exp against 0 then, never NaN here.
    m_safe = tl.where(m_new == float('-inf'), 0.0, m_new)
    p = tl.exp(s - m_safe[:, None])
    alpha = tl.exp(m_i - m_safe)
    l_i = l_i * alpha + tl.sum(p, axis=1)
    if EDGE:
        v = tl.load(v_base + rn[:, None] * s_vs + rd[None, :], mask=(rn[:, None] < SK) & d_ok[None, :], other=0.0)
    else:
        v = tl.load(v_base + rn[:, None] * s_vs + rd[None, :], mask=d_ok[None, :], other=0.0)
    acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit
def ${name}(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr, SQ, SK, H, qk_scale,
            s_qb, s_qh, s_qs, s_kb, s_kh, s_ks, s_vb, s_vh, s_vs, s_mb, s_mh, s_mq, s_mk,
            D: tl.constexpr, CAUSAL: tl.constexpr, MASK: tl.constexpr, BLOCK_M: tl.constexpr,
            BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PRECISION: tl.constexpr):
    # Flash attention, one BLOCK_M tile of queries of one (batch, head) per program, keys and values
    # streamed in BLOCK_N tiles; the output is [B, H, SQ, D] contiguous.
    # Causal: the query tiles with the most keys start first (a shorter tail of the grid).
    n_m = tl.cdiv(SQ, BLOCK_M)
    pid_m = tl.program_id(0)
    if CAUSAL:
        pid_m = n_m - 1 - pid_m
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    m0 = pid_m * BLOCK_M
    rm = m0 + tl.arange(0, BLOCK_M)
    rd = tl.arange(0, BLOCK_D)
    q = tl.load(q_ptr + b * s_qb + h * s_qh + rm[:, None] * s_qs + rd[None, :],
                mask=(rm[:, None] < SQ) & (rd[None, :] < D), other=0.0)
    k_base = k_ptr + b * s_kb + h * s_kh
    v_base = v_ptr + b * s_vb + h * s_vh
    mask_base = mask_ptr + b * s_mb + h * s_mh
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    m_i = tl.full((BLOCK_M,), float('-inf'), tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    # Key tiles wholly inside the sequence (and, causal, wholly at or left of every row's diagonal)
    # need no masks; the rest, up to the last key any row sees, do.
    interior = (SK // BLOCK_N) * BLOCK_N
    end = SK
    if CAUSAL:
        interior = tl.minimum(interior, ((m0 + 1) // BLOCK_N) * BLOCK_N)
        end = tl.minimum(SK, m0 + BLOCK_M)
    for start in range(0, interior, BLOCK_N):
        acc, m_i, l_i = ${name}_step(acc, m_i, l_i, q, k_base, v_base, mask_base, start, rm, rd, SQ, SK, s_ks, s_vs,
                                     s_mq, s_mk, qk_scale, D, EDGE=False, CAUSAL=CAUSAL, MASK=MASK,
                                     BLOCK_N=BLOCK_N, PRECISION=PRECISION)
    for start in range(interior, end, BLOCK_N):
        acc, m_i, l_i = ${name}_step(acc, m_i, l_i, q, k_base, v_base, mask_base, start, rm, rd, SQ, SK, s_ks, s_vs,
                                     s_mq, s_mk, qk_scale, D, EDGE=True, CAUSAL=CAUSAL, MASK=MASK,
                                     BLOCK_N=BLOCK_N, PRECISION=PRECISION)
    # A row with no key to attend to (a mask of all False) is NaN, as in PyTorch's math path.
    out = acc / l_i[:, None]
    o_rows = (bh.to(tl.int64) * SQ + rm) * D
    tl.store(o_ptr + o_rows[:, None] + rd[None, :], out, mask=(rm[:, None] < SQ) & (rd[None, :] < D))
''')

LAUNCH = Template('''
def ${name}_run(q, k, v, mask, scale, causal):
    # q [.., SQ, D], k and v [.., SK, D] of q's leading dims (rank 3 or 4); mask None, bool or float,
    # broadcastable to [.., SQ, SK]. The leading dims go in as (batch, heads) strides: no copies
    # unless the last dim is strided.
    squeeze = q.dim() == 3
    if squeeze:
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
    q, k, v = [t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v)]
    nb, nh, sq, d = q.shape
    sk = k.shape[2]
    out = torch.empty((nb, nh, sq, d), device=q.device, dtype=torch.float32)
    kind = 0
    ms = (0, 0, 0, 0)
    if mask is not None:
        kind = 1 if mask.dtype == torch.bool else 2
        if mask.dim() < 4:
            mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
        mask = mask.expand(nb, nh, sq, sk)
        ms = tuple(mask.stride())
    block_m = max(16, min(ATTN_BLOCK_M, _pow2(sq)))
    block_n = max(16, min(ATTN_BLOCK_N, _pow2(sk)))
    block_d = max(16, _pow2(d))
    qk_scale = scale if scale is not None else d ** -0.5
    _launch(${name}, (_cdiv(sq, block_m), nb * nh),
        q, k, v, out, mask if mask is not None else q, sq, sk, nh, qk_scale,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), *ms, D=d, CAUSAL=causal, MASK=kind, BLOCK_M=block_m, BLOCK_N=block_n,
        BLOCK_D=block_d, PRECISION=ATTN_PRECISION, num_warps=ATTN_WARPS, num_stages=ATTN_STAGES)
    return out[:, 0] if squeeze else out
''')


def attention_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """q, k, v, the mask, the scale and causality of an SDPA this template computes; None otherwise."""
    if node.op != "call_function" or node.target is not F.scaled_dot_product_attention:
        return None
    q, k, v = arg(node, 0, "query"), arg(node, 1, "key"), arg(node, 2, "value")
    mask, dropout = arg(node, 3, "attn_mask"), arg(node, 4, "dropout_p", 0.0)
    causal, scale, gqa = arg(node, 5, "is_causal", False), arg(node, 6, "scale"), arg(node, 7, "enable_gqa", False)
    sq, sk, sv = shape_of(q), shape_of(k), shape_of(v)
    if sq is None or sk is None or sv is None or len(sq) not in (3, 4) or not (len(sq) == len(sk) == len(sv)):
        return None
    if sq[:-2] != sk[:-2] or sk != sv or sq[-1] != sk[-1] or sq[-1] > 128 or dropout != 0.0 or gqa:
        return None
    if not isinstance(causal, bool) or not (scale is None or isinstance(scale, (int, float))):
        return None
    if mask is not None:
        if causal or not isinstance(mask, fx.Node):
            return None  # PyTorch refuses both together
        tm = mask.meta.get("tensor_meta")
        ms = tuple(getattr(tm, "shape", ())) if tm is not None else None
        if ms is None or getattr(tm, "dtype", None) not in (torch.bool, torch.float32) or len(ms) > len(sq):
            return None
        scores = tuple(sq[:-1]) + (sk[-2],)
        padded = (1,) * (len(scores) - len(ms)) + ms
        if any(m not in (1, s) for m, s in zip(padded, scores)):
            return None
    return {"q": q, "k": k, "v": v, "mask": mask, "causal": causal,
            "scale": None if scale is None else float(scale)}


def _emit(k: int, group: Any, t: AnchorTemplate, chain: Any) -> Emitted | None:
    if group.ops:
        return None
    src = group.source
    name = f"_attn_{k}"
    args = [src["q"], src["k"], src["v"]] + ([src["mask"]] if src["mask"] is not None else [])
    params = "q, k, v" + (", mask" if src["mask"] is not None else "")
    helper = (f"def _f{k}({params}):\n"
              f"    return {name}_run(q, k, v, {'mask' if src['mask'] is not None else 'None'}, {src['scale']!r}, "
              f"{src['causal']})\n")
    return Emitted(args, [ATTENTION.substitute(name=name), LAUNCH.substitute(name=name)], helper, {"attention"})


EXAMPLE = '''
class Model(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
def get_inputs():
    return [torch.randn(1, 2, 40, 24), torch.randn(1, 2, 40, 24), torch.randn(1, 2, 40, 24)]
def get_init_inputs():
    return []
'''


TEMPLATE = AnchorTemplate(
    kernel=ATTENTION, example=EXAMPLE, example_rules=("triton_attention",),
    example_params={"ATTN_BLOCK_M": 16, "ATTN_BLOCK_N": 16},
    name="attention", rule="triton_attention", prior=5.0, kind="reduce", pattern=attention_source, emitter=_emit,
    params={"ATTN_BLOCK_M": [128, 64], "ATTN_BLOCK_N": [64, 32, 128], "ATTN_WARPS": [8, 4],
            "ATTN_STAGES": [3, 2, 1], "ATTN_PRECISION": ["tf32x3", "ieee"]},
    constraints=["ATTN_BLOCK_M * ATTN_BLOCK_N <= 8192"])
