"""The reduce template's pattern: which node of a traced forward is a reduction or a normalization the
template takes (sum, mean, amax, amin, argmax, argmin over a run of dims; softmax and log-softmax
over a dim; LayerNorm, GroupNorm, InstanceNorm), and what it computes as the [A, R, B] view of its
input (templates/reduce.py emits the kernels)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .ir import ROW_LIMIT, arg, dims, shape_of

# STAT codes shared by the pattern, the kernels and the launcher.
SUM, MAX, MIN, ARGMAX, ARGMIN, NORM, SOFTMAX, LOG_SOFTMAX = range(8)

_REDUCTIONS = {torch.sum: SUM, "sum": SUM, torch.mean: SUM, "mean": SUM, torch.amax: MAX, "amax": MAX,
               torch.amin: MIN, "amin": MIN, torch.argmax: ARGMAX, "argmax": ARGMAX, torch.argmin: ARGMIN,
               "argmin": ARGMIN}
_SOFTMAX = {torch.softmax: SOFTMAX, F.softmax: SOFTMAX, "softmax": SOFTMAX, nn.Softmax: SOFTMAX,
            torch.log_softmax: LOG_SOFTMAX, F.log_softmax: LOG_SOFTMAX, "log_softmax": LOG_SOFTMAX,
            nn.LogSoftmax: LOG_SOFTMAX}
_INSTANCE = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def _target(node: fx.Node, modules: dict[str, nn.Module]) -> Any:
    if node.op == "call_module":
        return type(modules.get(node.target))
    return node.target if node.op in ("call_function", "call_method") else None


def _hashable_get(table: dict[Any, int], key: Any) -> int | None:
    try:
        return table.get(key)
    except TypeError:  # an unhashable target
        return None


def reduce_source(node: fx.Node, modules: dict[str, nn.Module]) -> dict[str, Any] | None:
    """What a reduction or normalization node computes, as the [A, R, B] view of its input: the
    dims reduced (d0..d1), the statistic, the affine parameters; None when it is not one."""
    target = _target(node, modules)
    x = node.args[0] if node.args else None
    xs = shape_of(x) if isinstance(x, fx.Node) else None
    if target is None or xs is None or not xs or shape_of(node) is None and target not in (torch.argmax, torch.argmin,
                                                                                          "argmax", "argmin"):
        return None
    ndim = len(xs)
    mod = modules.get(node.target) if node.op == "call_module" else None
    stat = _hashable_get(_REDUCTIONS, target)
    if stat is not None:
        if node.kwargs.get("dtype") is not None or node.kwargs.get("out") is not None:
            return None
        dim = arg(node, 1, "dim")
        run = tuple(range(ndim)) if dim is None else dims(dim, ndim)
        if not run or run != tuple(range(run[0], run[-1] + 1)) or (stat >= ARGMAX and dim is not None and len(run) > 1):
            return None
        keep = bool(arg(node, 2, "keepdim", False))
        return {"stat": stat, "mean": target in (torch.mean, "mean"), "x": x, "d0": run[0], "d1": run[-1],
                "keepdim": keep, "flat": dim is None}
    stat = _hashable_get(_SOFTMAX, target)
    if stat is not None:
        dim = mod.dim if mod is not None else arg(node, 1, "dim")
        if dim is None or not isinstance(dim, int) or node.kwargs.get("dtype") is not None:
            return None
        d = dim % ndim
        if d == ndim - 1 and xs[-1] <= ROW_LIMIT:
            return None  # a short last-dim row: the row template's
        return {"stat": stat, "x": x, "d0": d, "d1": d}
    if target in (F.layer_norm, nn.LayerNorm):
        if mod is not None:
            shape, w, b, eps = tuple(mod.normalized_shape), mod.weight, mod.bias, mod.eps
            w = f"attr:{node.target}.weight" if w is not None else None
            b = f"attr:{node.target}.bias" if b is not None else None
        else:
            shape, w, b, eps = tuple(arg(node, 1, "normalized_shape")), arg(node, 2, "weight"), \
                arg(node, 3, "bias"), arg(node, 4, "eps", 1e-5)
        k = len(shape)
        if not 0 < k <= ndim or tuple(xs[-k:]) != shape or (k == 1 and xs[-1] <= ROW_LIMIT):
            return None
        return {"stat": NORM, "x": x, "d0": ndim - k, "d1": ndim - 1, "w": w, "b": b, "eps": float(eps),
                "affine": "layer"}
    if target in (nn.GroupNorm, F.group_norm):
        if mod is not None:
            groups, w, b, eps = mod.num_groups, mod.weight, mod.bias, mod.eps
            w = f"attr:{node.target}.weight" if w is not None else None
            b = f"attr:{node.target}.bias" if b is not None else None
        else:
            groups, w, b, eps = arg(node, 1, "num_groups"), arg(node, 2, "weight"), arg(node, 3, "bias"), \
                arg(node, 4, "eps", 1e-5)
        if ndim < 2 or not isinstance(groups, int) or xs[1] % groups:
            return None
        return {"stat": NORM, "x": x, "d0": 1, "d1": ndim - 1, "w": w, "b": b, "eps": float(eps),
                "affine": "group", "groups": groups}
    if target in _INSTANCE:
        if mod.track_running_stats or ndim < 3:
            return None  # running statistics (used in eval mode) are not this template's
        w = f"attr:{node.target}.weight" if mod.affine else None
        b = f"attr:{node.target}.bias" if mod.affine else None
        return {"stat": NORM, "x": x, "d0": 2, "d1": ndim - 1, "w": w, "b": b, "eps": float(mod.eps),
                "affine": "instance"}
    return None
