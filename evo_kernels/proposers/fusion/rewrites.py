"""Graph rewrites that swap a pattern of the traced forward for a library call (rules `sdpa`,
`avgpool_conv`): attention written out as matmul / softmax / matmul becomes
scaled_dot_product_attention (one fused kernel, no score matrix in memory); an AvgPool2d becomes a
depthwise convolution (cuDNN). Both work on a GraphModule in place, before emit.py matches groups.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..templates.gemm import gemm_source
from .graph import kind_of
from ..templates.ir import is_last, shape_of


def sdpa(gm: fx.GraphModule) -> int:
    """softmax(matmul(q, k.transpose(-2, -1)) * scale [masked_fill(mask, -inf)]) @ v -> SDPA."""
    n = 0
    modules = dict(gm.named_modules())
    for sm in list(gm.graph.nodes):
        if kind_of(sm, modules) != "softmax" or len(sm.users) != 1:
            continue
        shape = shape_of(sm)
        dim = sm.args[1] if len(sm.args) > 1 else sm.kwargs.get("dim")
        if shape is None or len(shape) < 3 or not is_last(dim, len(shape)):
            continue
        av = next(iter(sm.users))
        if gemm_source(av, modules) is None or av.args[0] is not sm:
            continue
        x, scale, mask = sm.args[0], 1.0, None
        if x.op == "call_method" and x.target == "masked_fill" and x.args[2] == float("-inf") and len(x.users) == 1:
            x, mask = x.args[0], x.args[1]
        if kind_of(x, modules) in ("mul", "div") and len(x.users) == 1 and isinstance(x.args[1], (int, float)):
            scale = float(x.args[1]) if kind_of(x, modules) == "mul" else 1.0 / float(x.args[1])
            x = x.args[0]
        src = gemm_source(x, modules)
        if src is None or len(x.users) != 1:
            continue
        kt = src["a"], src["b"]
        q, k_t = kt
        if not (isinstance(k_t, fx.Node) and k_t.op == "call_method" and k_t.target == "transpose"
                and {d % len(shape) for d in k_t.args[1:3]} == {len(shape) - 2, len(shape) - 1}):
            continue
        with gm.graph.inserting_before(av):
            kwargs: dict[str, Any] = {"scale": scale}
            if mask is not None:
                kwargs["attn_mask"] = gm.graph.call_function(torch.logical_not, (mask,))
            new = gm.graph.call_function(F.scaled_dot_product_attention, (q, k_t.args[0], av.args[1]), kwargs)
        av.replace_all_uses_with(new)
        for node in (av, sm, sm.args[0], x):
            if not node.users and node.op != "placeholder":
                gm.graph.erase_node(node)
        n += 1
    gm.graph.eliminate_dead_code()
    return n


def _avgpool_helper(name: str, mod: nn.AvgPool2d) -> str | None:
    """A helper computing the pooling as a depthwise convolution with a constant filter (same zero
    padding: AvgPool2d's default count_include_pad), or None for a variant it does not cover."""
    pair = lambda t: tuple(t) if isinstance(t, (tuple, list)) else (t, t)  # noqa: E731
    k, s, p = pair(mod.kernel_size), pair(mod.stride or mod.kernel_size), pair(mod.padding)
    if mod.ceil_mode or not mod.count_include_pad or mod.divisor_override is not None:
        return None
    return (f"def {name}(x):\n"
            f"    # AvgPool2d{k} as a depthwise convolution with a constant 1/{k[0] * k[1]} filter (cuDNN)\n"
            f"    w = torch.full((x.shape[1], 1, {k[0]}, {k[1]}), {1.0 / (k[0] * k[1])!r}, device=x.device, "
            f"dtype=x.dtype)\n"
            f"    return torch.nn.functional.conv2d(x, w, None, {s}, {p}, 1, x.shape[1])\n")


def avgpool_as_conv(gm: fx.GraphModule, placeholder: Callable[[int, nn.Module], Any]) -> list[str]:
    """Every AvgPool2d module call replaced by a call to a new helper `_avgpool_I` (the graph calls
    `placeholder(I, module)`, which fusion.py names back); the helpers' sources."""
    modules = dict(gm.named_modules())
    helpers: list[str] = []
    for node in list(gm.graph.nodes):
        mod = modules.get(node.target) if node.op == "call_module" else None
        if type(mod) is nn.AvgPool2d:
            helper = _avgpool_helper(f"_avgpool_{len(helpers)}", mod)
            if helper is not None:
                with gm.graph.inserting_before(node):
                    new = gm.graph.call_function(placeholder(len(helpers), mod), (node.args[0],))
                node.replace_all_uses_with(new)
                gm.graph.erase_node(node)
                helpers.append(helper)
    return helpers
