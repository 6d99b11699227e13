"""Find fusable patterns in a problem's forward: trace it with torch.fx, then match groups (templates/ir.py).

Anchors are the patterns of the anchor templates (a GEMM, a convolution); what follows an anchor, or
any other tensor, is lowered op by op into the group's IR until a node cannot be lowered.

Tracing never runs the model on real data: it is built and traced on the meta device, so matching a
model of gigabytes costs nothing. A model that does not trace gets no fusion candidates.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.meta_tracer import MetaTracer

from ..templates.ir import ROW_LIMIT, Group, Op, Operand, arg, index_shape, is_last, shape_of

Anchor = Callable[[fx.Node, dict[str, nn.Module]], "dict[str, Any] | None"]  # a pattern: node -> source, or None

# --- elementwise ops: canonical name per FX target (function, method name or module type) -------------
_UNARY = {
    "relu": (torch.relu, F.relu, "relu", nn.ReLU), "sigmoid": (torch.sigmoid, F.sigmoid, "sigmoid", nn.Sigmoid),
    "tanh": (torch.tanh, F.tanh, "tanh", nn.Tanh), "silu": (F.silu, "silu", nn.SiLU),
    "hardswish": (F.hardswish, "hardswish", nn.Hardswish), "relu6": (F.relu6, nn.ReLU6),
    "exp": (torch.exp, "exp"), "log": (torch.log, "log"), "abs": (torch.abs, "abs", operator.abs),
    "neg": (torch.neg, "neg", operator.neg), "sqrt": (torch.sqrt, "sqrt"), "rsqrt": (torch.rsqrt, "rsqrt"),
    "square": (torch.square, "square"),
}
_BINARY = {
    "add": (operator.add, torch.add, "add"), "sub": (operator.sub, torch.sub, "sub"),
    "mul": (operator.mul, torch.mul, "mul"), "div": (operator.truediv, torch.div, torch.true_divide, "div"),
    "max": (torch.maximum, "maximum"), "min": (torch.minimum, "minimum"),
}
_KIND: dict[Any, str] = {t: name for name, ts in (_UNARY | _BINARY).items() for t in ts}
for _name, _targets in {
    "gelu": (F.gelu, nn.GELU), "clamp": (torch.clamp, torch.clip, "clamp", "clip"),
    "hardtanh": (F.hardtanh, nn.Hardtanh), "leaky_relu": (F.leaky_relu, nn.LeakyReLU),
    "pow": (operator.pow, torch.pow, "pow"),
    "softmax": (torch.softmax, F.softmax, "softmax", nn.Softmax),
    "log_softmax": (torch.log_softmax, F.log_softmax, "log_softmax", nn.LogSoftmax),
    "layer_norm": (F.layer_norm, nn.LayerNorm), "sum": (torch.sum, "sum"), "mean": (torch.mean, "mean"),
    "amax": (torch.amax, "amax"), "norm": (torch.norm, "norm"),
    "max_pool1d": (F.max_pool1d, torch.max_pool1d, nn.MaxPool1d),
    "max_pool2d": (F.max_pool2d, torch.max_pool2d, nn.MaxPool2d),
    "max_pool3d": (F.max_pool3d, torch.max_pool3d, nn.MaxPool3d),
    "avg_pool1d": (F.avg_pool1d, nn.AvgPool1d), "avg_pool2d": (F.avg_pool2d, nn.AvgPool2d),
    "avg_pool3d": (F.avg_pool3d, nn.AvgPool3d),
    "batch_norm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
}.items():
    _KIND.update({t: _name for t in _targets})
# pooling kind -> (mode, number of pooled dims: the input is N, C and that many)
_POOLS = {f"{mode}_pool{rank}d": (mode, rank) for mode in ("max", "avg") for rank in (1, 2, 3)}


def kind_of(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    if node.op == "call_module":
        return _KIND.get(type(modules.get(node.target)))
    if node.op in ("call_function", "call_method"):
        try:
            return _KIND.get(node.target)
        except TypeError:  # unhashable target
            return None
    return None


# --- tracing ---------------------------------------------------------------------------------------------
class _ShapeTracer(MetaTracer):
    """Tracing with concrete shapes (x.shape[1] is an int), for forwards that slice by a size. Buffers
    are traced as graph attributes, not folded into constants the candidate would not have."""

    proxy_buffer_attributes = True


def trace(model_cls: type[nn.Module], init_inputs: list[Any], example_inputs: list[Any]) -> fx.GraphModule | None:
    """The model traced on the meta device, with shapes in `node.meta["tensor_meta"]`; None if it does
    not trace. Plain symbolic tracing first (no shapes baked in); concrete shapes when that fails."""
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        with torch.device("meta"):
            model = model_cls(*init_inputs)
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta is not matched
        return None
    gm = None
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - data-dependent Python in forward; try concrete shapes
        try:
            names = _placeholder_names(model)
            graph = _ShapeTracer().trace(model, meta_args=dict(zip(names, example_inputs)))
            gm = fx.GraphModule(model, graph)
        except Exception:  # noqa: BLE001
            return None
    try:
        ShapeProp(gm).propagate(*example_inputs)
    except Exception:  # noqa: BLE001 - an op without a meta kernel: no shapes, no matching
        return None
    return gm


def _placeholder_names(model: nn.Module) -> list[str]:
    import inspect
    params = list(inspect.signature(model.forward).parameters.values())
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


# --- growing a group -------------------------------------------------------------------------------------
class _Lowering:
    """Lowers FX nodes one at a time into the group's ops; a node that cannot be lowered ends the group."""

    def __init__(self, group: Group, modules: dict[str, nn.Module], banned: set[fx.Node]) -> None:
        self.g = group
        self.modules = modules
        self.banned = banned  # nodes downstream of the anchor: not usable as operands
        self.refs: dict[fx.Node, str] = {}
        self.row_refs: set[str] = set()  # refs holding per-row values (shape [..., 1])

    def emit(self, name: str, args: tuple[Any, ...], const: tuple[Any, ...] = ()) -> str:
        self.g.ops.append(Op(name, args, const))
        return f"t{len(self.g.ops) - 1}"

    def operand(self, x: Any, shape: tuple[int, ...]) -> Any:
        """A ref for an op argument: a group value, a float, or a new operand; None if unsupported."""
        if isinstance(x, fx.Node):
            if x in self.refs:
                return self.refs[x]
            if x in self.banned:
                return None
            xs = shape_of(x)
            kind = _broadcast_kind(xs, shape, self.g.kind)
            if kind is None:
                return None
            self.g.operands.append(Operand(x, kind))
            return f"p{len(self.g.operands) - 1}"
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return None
        return float(x)

    def lower(self, node: fx.Node) -> str | None:
        kind = kind_of(node, self.modules)
        if kind is None or self.g.kind == "reduce":  # (a reduction anchor fuses nothing after it)
            return None
        shape = self.g.shape
        mod = self.modules.get(node.target) if node.op == "call_module" else None
        x = node.args[0] if node.args else None
        ins = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
        if not any(a in self.refs for a in ins):
            return None
        if self.g.pool is not None and (kind in _POOLS or kind in ("softmax", "log_softmax", "layer_norm", "sum",
                                                                    "mean", "amax", "norm")):
            return None  # after the pooling only elementwise ops
        if self.g.pool is not None:
            shape = self.g.pool.const[-1]
        if kind in _UNARY:
            if len(ins) != 1 or x not in self.refs:
                return None
            return self.emit(kind, (self.refs[x],))
        if kind in _BINARY:
            if kind in ("add", "sub") and arg(node, 2, "alpha", 1) != 1:
                return None
            a = self.operand(node.args[0], shape) if len(node.args) > 0 else None
            b = self.operand(node.args[1], shape) if len(node.args) > 1 else None
            if a is None or b is None or (kind == "div" and node.kwargs.get("rounding_mode")):
                return None
            return self.emit(kind, (a, b))
        if x not in self.refs:
            return None
        v = self.refs[x]
        ndim = len(shape)
        if kind == "gelu":
            approx = mod.approximate if mod is not None else arg(node, 1, "approximate", "none")
            return self.emit("gelu_tanh" if approx == "tanh" else "gelu", (v,))
        if kind in ("clamp", "hardtanh"):
            if mod is not None:
                lo, hi = mod.min_val, mod.max_val
            elif kind == "hardtanh":
                lo, hi = arg(node, 1, "min_val", -1.0), arg(node, 2, "max_val", 1.0)
            else:
                lo, hi = arg(node, 1, "min"), arg(node, 2, "max")
            if any(b is not None and not isinstance(b, (int, float)) for b in (lo, hi)):
                return None
            return self.emit("clamp", (v,), (None if lo is None else float(lo), None if hi is None else float(hi)))
        if kind == "leaky_relu":
            slope = mod.negative_slope if mod is not None else arg(node, 1, "negative_slope", 0.01)
            return self.emit("leaky_relu", (v,), (float(slope),))
        if kind == "pow":
            e = arg(node, 1, "exponent")
            if e == 2:
                return self.emit("square", (v,))
            if e == 0.5:
                return self.emit("sqrt", (v,))
            return None
        if kind == "batch_norm":
            return self.lower_batch_norm(node, mod, v)
        if kind in _POOLS:
            mode, rank = _POOLS[kind]
            return self.lower_pool(node, mode, rank, mod, v) if self.g.kind != "gemm" and ndim == rank + 2 else None
        # --- row ops: over the last dim, with the row held whole (at most 64 Ki elements) ---
        if self.g.kind == "conv" or shape[-1] > ROW_LIMIT:
            return None
        if kind in ("softmax", "log_softmax"):
            dim = mod.dim if mod is not None else arg(node, 1, "dim")
            if not is_last(dim, ndim) or node.kwargs.get("dtype") is not None:
                return None
            m = self.emit("rmax", (v,))
            e = self.emit("exp", (self.emit("sub", (v, m)),))
            s = self.emit("rsum", (e,))
            if kind == "softmax":
                return self.emit("div", (e, s))
            return self.emit("sub", (self.emit("sub", (v, m)), self.emit("log", (s,))))
        if kind == "layer_norm":
            if mod is not None:
                nshape, w, b, eps = mod.normalized_shape, mod.weight, mod.bias, mod.eps
                w = f"attr:{node.target}.weight" if w is not None else None
                b = f"attr:{node.target}.bias" if b is not None else None
            else:
                nshape, w, b, eps = arg(node, 1, "normalized_shape"), arg(node, 2, "weight"), \
                    arg(node, 3, "bias"), arg(node, 4, "eps", 1e-5)
            if tuple(nshape) != (shape[-1],):
                return None
            mean = self.emit("rmean", (v,))
            d = self.emit("sub", (v, mean))
            var = self.emit("rmean", (self.emit("square", (d,)),))
            r = self.emit("mul", (d, self.emit("rsqrt", (self.emit("add", (var, float(eps))),))))
            for p, op in ((w, "mul"), (b, "add")):
                if p is not None:
                    self.g.operands.append(Operand(p, "col"))
                    r = self.emit(op, (r, f"p{len(self.g.operands) - 1}"))
            return r
        if kind in ("sum", "mean", "amax", "norm"):
            if kind == "norm":
                p, dim, keep = arg(node, 1, "p", "fro"), arg(node, 2, "dim"), arg(node, 3, "keepdim", False)
                if p not in (2, 2.0, "fro"):
                    return None
            else:
                dim, keep = arg(node, 1, "dim"), arg(node, 2, "keepdim", False)
            if not is_last(dim, ndim) or node.kwargs.get("dtype") is not None:
                return None
            if kind == "norm":
                r = self.emit("sqrt", (self.emit("rsum", (self.emit("square", (v,)),)),))
            else:
                r = self.emit({"sum": "rsum", "mean": "rmean", "amax": "rmax"}[kind], (v,))
            if not keep:
                self.g.ops[-1] = Op(self.g.ops[-1].name, self.g.ops[-1].args, ("squeeze",))
            return r
        return None

    def lower_batch_norm(self, node: fx.Node, mod: nn.Module, v: str) -> str | None:
        """Training-mode BatchNorm (batch statistics over all but the channel dim), first in its group:
        the anchor's epilogue (or a stats kernel) computes the statistics, one pass applies them."""
        shape = self.g.shape
        if self.g.ops or v != "v" or not mod.training or mod.momentum is None:
            return None
        # 5-D (BatchNorm3d) only where no anchor template would have to keep its statistics: after a
        # library op (a transposed 3D conv) or on an input. After a Conv3d it stays a module, so that
        # the Conv3d template keeps the conv (its store has no statistics).
        if not ((len(shape) == 2 and self.g.kind in ("gemm", "chain")) or (len(shape) == 4 and self.g.kind != "gemm")
                or (len(shape) == 5 and self.g.kind == "chain")):
            return None
        return self.emit("bn", (v,), (node.target, float(mod.eps), float(mod.momentum), mod.affine,
                                      mod.track_running_stats and mod.running_mean is not None))

    def lower_pool(self, node: fx.Node, mode: str, rank: int, mod: nn.Module | None, v: str) -> str | None:
        """Max or average pooling over the last `rank` dims of an (N, C, ...) input, a module or its
        function, as the pool template computes it: no dilation, ceil_mode, indices or divisor_override."""
        if mod is not None:
            k, s, p, ceil = mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode
            dilation, indices = getattr(mod, "dilation", 1), getattr(mod, "return_indices", False)
            count_pad, divisor = getattr(mod, "count_include_pad", True), getattr(mod, "divisor_override", None)
        elif mode == "max":  # F.max_poolNd, torch.max_poolNd
            k, s, p = arg(node, 1, "kernel_size"), arg(node, 2, "stride"), arg(node, 3, "padding", 0)
            dilation, ceil = arg(node, 4, "dilation", 1), arg(node, 5, "ceil_mode", False)
            indices, count_pad, divisor = arg(node, 6, "return_indices", False), True, None
        else:  # F.avg_poolNd (avg_pool1d has no divisor_override)
            k, s, p = arg(node, 1, "kernel_size"), arg(node, 2, "stride"), arg(node, 3, "padding", 0)
            ceil, count_pad = arg(node, 4, "ceil_mode", False), arg(node, 5, "count_include_pad", True)
            dilation, indices, divisor = 1, False, arg(node, 6, "divisor_override")

        def per_dim(t: Any) -> tuple[int, ...] | None:
            # an int, or a sequence of one or `rank` ints (PyTorch repeats a single one)
            t = tuple(t) if isinstance(t, (tuple, list)) else (t,)
            t = t * rank if len(t) == 1 else t
            ok = len(t) == rank and all(isinstance(x, int) and not isinstance(x, bool) for x in t)
            return t if ok else None
        k = per_dim(k)
        s = k if s is None or s == [] or s == () else per_dim(s)  # no stride: the window's size
        p, dilation = per_dim(p), per_dim(dilation)
        out = shape_of(node)
        if None in (k, s, p, dilation) or any(d != 1 for d in dilation) or ceil is not False or indices is not False \
                or divisor is not None or not isinstance(count_pad, bool) or out is None or len(out) != rank + 2:
            return None
        return self.emit("pool", (v,), (mode, k, s, p, count_pad, out))


def _broadcast_kind(xs: tuple[int, ...] | None, shape: tuple[int, ...], group_kind: str) -> str | None:
    if xs is None:
        return None
    if tuple(xs) == tuple(shape):
        return "full"
    core = list(xs)
    while core and core[0] == 1:
        core.pop(0)
    if len(shape) >= 1 and core == [shape[-1]] and group_kind != "conv":
        return "col"
    if len(shape) in (3, 4) and core == [shape[1]] + [1] * (len(shape) - 2):
        return "chan"
    if len(shape) >= 2 and tuple(xs) == tuple(shape[:-1]) + (1,) and group_kind != "conv":
        return "row"
    return None


def _descendants(node: fx.Node) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    stack = [node]
    while stack:
        for u in stack.pop().users:
            if u not in seen:
                seen.add(u)
                stack.append(u)
    return seen


def grow(gm: fx.GraphModule, start: fx.Node, kind: str, source: Any, exclude: set[fx.Node] = frozenset()) -> Group | None:
    """The largest valid group from `start`: members whose every user but the last's is a member.
    A node reading nothing of the group but `start` opens another branch: it is left for a later
    group from the same start, as are the nodes in `exclude` (groups already made)."""
    modules = dict(gm.named_modules())
    shape = shape_of(start)
    if shape is None:
        return None
    group = Group(kind, start if kind != "chain" else None, source, shape=shape)
    low = _Lowering(group, modules, _descendants(start))
    low.refs[start] = "v"
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    members = [start]
    snapshots = [(0, 0)]  # (ops, operands) after each member
    for node in sorted(_descendants(start), key=order.__getitem__):
        if node.op == "output":
            break
        if node in exclude or not any(a in low.refs for a in node.all_input_nodes):
            continue
        if len(members) > 1 and all(a is start or a not in low.refs for a in node.all_input_nodes):
            continue
        ref = low.lower(node)
        if ref is None:
            break
        low.refs[node] = ref
        low.banned.discard(node)
        members.append(node)
        snapshots.append((len(group.ops), len(group.operands)))
    # The largest prefix where only its last member is used outside of it, and a non-keepdim
    # reduction is only ever the final value.
    inner = 0 if kind != "chain" else 1  # a chain's input stays in the graph: its users do not matter
    for k in range(len(members), 1, -1):
        prefix = set(members[:k])
        if all(set(m.users) <= prefix for m in members[inner:k - 1]):
            n_ops, n_operands = snapshots[k - 1]
            ops = group.ops[:n_ops]
            if any(op.const == ("squeeze",) for op in ops[:-1]):
                continue
            return Group(kind, group.anchor, source, ops, group.operands[:n_operands], members[:k], shape)
    return None


def find_groups(gm: fx.GraphModule, anchors: list[tuple[str, str, Anchor]]) -> list[Group]:
    """Non-overlapping groups in graph order: every node an anchor pattern matches, with the chain
    after it, then chains from any other tensor (a group's output too) into at least a reduction, a
    pooling or two elementwise ops. `anchors` are (template name, group kind, pattern), tried in order."""
    modules = dict(gm.named_modules())
    taken: set[fx.Node] = set()
    # The groups' last members: the values their helpers return, from which chains may start too
    # (what an anchor's group does not fuse, e.g. a pooling after a softmax over channels).
    outputs: set[fx.Node] = set()
    groups: list[Group] = []

    def add(g: Group) -> None:
        groups.append(g)
        taken.update(g.members)
        outputs.add(g.members[-1])

    def chains_from(node: fx.Node) -> None:
        if node.op == "output" or shape_of(node) is None or not any(kind_of(u, modules) for u in node.users):
            return
        while True:  # one chain per branch from this node
            c = grow(gm, node, "chain", node, taken)
            if c is None or not (c.reductions or c.pool or len(c.ops) >= 2 or c.ops[0].name == "bn"):
                return
            c.members = c.members[1:]  # the input itself stays where it is
            add(c)

    for node in gm.graph.nodes:
        if node in taken:
            if node in outputs:
                chains_from(node)
            continue
        matched = None
        # (an int64 tensor, argmax's, may be an anchor's output; no chain goes through it)
        if shape_of(node) is not None or index_shape(node) is not None:
            matched = next(((name, kind, src) for name, kind, pattern in anchors
                            if (src := pattern(node, modules)) is not None), None)
        if matched is None:
            chains_from(node)
            continue
        name, kind, src = matched
        g = grow(gm, node, kind, src, taken) or Group(kind, node, src, members=[node], shape=shape_of(node))
        g.template = name
        if not (set(g.members) & taken):
            add(g)
            if g.members[-1] is node:  # (a later output is visited in its turn)
                chains_from(node)
    return groups
