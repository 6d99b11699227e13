"""The fusion IR: a group of FX nodes lowered to ops on one tensor, and the graph helpers its anchors use.

A group is an anchor (a GEMM, a convolution: whatever an anchor template's pattern matches), or no
anchor (a plain input: a "chain"), followed by a DAG of elementwise ops, row reductions over the last
dim, a training-mode BatchNorm right after the anchor, and at most one 1-, 2- or 3-D pooling (all fp32),
lowered to `Op(name, args, const)` where an arg is "v" (the anchor's value), "tK" (the K-th op's result),
"pJ" (the J-th operand: a tensor from outside the group) or a float. Templates turn ops into Triton lines.
A pooling's const is (mode "max" or "avg", kernel, stride, padding, count_include_pad, output shape),
kernel, stride and padding each a tuple with one int per pooled dim (the last 1, 2 or 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx


@dataclass(frozen=True)
class Op:
    name: str
    args: tuple[Any, ...]  # "v", "tK", "pJ" or float
    const: tuple[Any, ...] = ()  # per-op constants (clamp bounds, slope, pool geometry)


@dataclass
class Operand:
    node: fx.Node | str  # a graph node, or "attr:linear.bias" for a module parameter not in the graph
    kind: str  # "col" (along the last dim), "chan" (along dim 1 of an NC... output), "row", "full"


@dataclass
class Group:
    kind: str  # "gemm", "conv" or "chain" (no anchor: the input is loaded as is)
    anchor: fx.Node | None
    source: Any  # gemm: dict(a, b, b_nk); conv: dict(x, module); chain: the input node
    ops: list[Op] = field(default_factory=list)
    operands: list[Operand] = field(default_factory=list)
    members: list[fx.Node] = field(default_factory=list)
    shape: tuple[int, ...] = ()  # the anchor's (or input's) shape: "full" operands have it
    template: str = ""  # the anchor template whose pattern matched (empty for a chain)

    @property
    def output(self) -> fx.Node:
        return self.members[-1]

    @property
    def reductions(self) -> int:
        return sum(op.name.startswith("r") for op in self.ops)

    @property
    def pool(self) -> Op | None:
        return next((op for op in self.ops if op.name == "pool"), None)


# Rows up to this length are held whole in registers by the row template; longer ones, and reductions
# over other dims, are the reduce template's.
ROW_LIMIT = 65536


def index_shape(node: Any) -> tuple[int, ...] | None:
    """The traced shape of an int64 tensor node (indices, class targets); None for anything else."""
    tm = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if tm is None or not hasattr(tm, "shape") or getattr(tm, "dtype", None) != torch.int64:
        return None
    return tuple(tm.shape)


def shape_of(node: Any) -> tuple[int, ...] | None:
    """The traced shape of a float32 tensor node; None for anything else (the templates are fp32)."""
    tm = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if tm is None or not hasattr(tm, "shape") or getattr(tm, "dtype", None) != torch.float32:
        return None
    return tuple(tm.shape)


def arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else default


def dims(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if not all(isinstance(d, int) for d in dims):
        return None
    return tuple(sorted(d % ndim for d in dims))


def is_last(dim: Any, ndim: int) -> bool:
    return dims(dim, ndim) == (ndim - 1,)
