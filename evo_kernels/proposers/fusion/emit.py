"""Fusion candidates: the traced forward, rewritten so that each matched group is one generated call.

`build(problem, rules)` traces the reference (graph.py), applies the graph rewrites the rules ask for
(rewrites.py: SDPA for hand-written attention, average pooling as a convolution), matches the groups,
and replaces each group it can emit by a call to a helper `_fK` that launches one to three Triton
kernels: an anchor template's (its rule, e.g. triton_gemm), or the library call followed by one chain
template's kernel (fuse_chains), or a bias add folded into torch.addmm (addmm). The candidate is the
problem's code plus `ModelNew(Model)` whose forward is the rewritten graph's code: it keeps the
reference's modules and parameter names, so it receives the reference's weights.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from torch import fx, nn

from ..templates import ANCHORS, BY_NAME, HELPERS, Emitted, defaults, lower_chain
from ..templates.base import operand_lines, render
from ..templates.gemm import fold_bias
from ..templates.stats import CHAN_STATS, bn_apply, bn_args, stats_kernel_lines
from . import rewrites
from .graph import find_groups, trace
from ..templates.ir import Group, shape_of

# Graph rules of this module's own; every anchor template adds its rule (e.g. triton_gemm).
GRAPH_RULES = ("sdpa", "fuse_chains", "addmm", "avgpool_conv")


def rule_names() -> list[str]:
    """Every graph rule: the anchor templates' first, in their order, then this module's."""
    return [t.rule for t in ANCHORS] + list(GRAPH_RULES)


def _emit_library(k: int, group: Group, chains: bool) -> Emitted | None:
    """The anchor by the library (cuBLAS/cuDNN), the chain after it in one Triton kernel."""
    kinds = [o.kind for o in group.operands]
    ops = group.ops
    if group.kind == "chain":
        args: list[Any] = [group.source] + [o.node for o in group.operands]
        pre = ["    y = x.contiguous()"]
    elif group.kind == "conv":
        conv: nn.Conv2d = group.source["conv"]
        mod = group.source["module"]
        args = [group.source["x"], f"attr:{mod}.weight", f"attr:{mod}.bias" if conv.bias is not None else None]
        args += [o.node for o in group.operands]
        if isinstance(conv, nn.ConvTranspose2d):
            pre = [f"    y = torch.nn.functional.conv_transpose2d(x, w, bias, {tuple(conv.stride)}, {tuple(conv.padding)}, "
                   f"{tuple(conv.output_padding)}, {conv.groups}, {tuple(conv.dilation)})"]
        else:
            fn = {nn.Conv1d: "conv1d", nn.Conv3d: "conv3d"}.get(type(conv), "conv2d")
            pre = [f"    y = torch.nn.functional.{fn}(x, w, bias, {tuple(conv.stride)}, {tuple(conv.padding)}, "
                   f"{tuple(conv.dilation)}, {conv.groups})"]
    else:
        bias, ops, _ = fold_bias(group)
        src = group.source
        args = [src["a"], src["b"], bias] + [o.node for o in group.operands]
        sa = shape_of(src["a"]) if isinstance(src["a"], fx.Node) else None
        bmat = "b.t()" if src["b_nk"] else "b"
        b2d = src["b_nk"] or isinstance(src["b"], str) or len(shape_of(src["b"]) or ()) == 2
        if sa is None or (not b2d and bias is not None):
            return None
        if b2d:
            mm = f"torch.addmm(bias, a2, {bmat})" if bias is not None else f"torch.mm(a2, {bmat})"
            pre = ["    a2 = a.reshape(-1, a.shape[-1])", f"    y = {mm}", "    y = y.view(*a.shape[:-1], y.shape[-1])"]
        else:
            pre = ["    y = torch.matmul(a, b)"]
        if not chains:  # addmm only: the bias add is the whole group
            ops = []
    nptr = len(kinds)
    params = ", ".join((["x"] if group.kind == "chain" else ["x", "w", "bias"] if group.kind == "conv"
                        else ["a", "b", "bias"]) + [f"p{j}" for j in range(nptr)])
    kernels: list[str] = []
    post: list[str] = []
    if ops and ops[0].name == "bn":
        if len(group.shape) not in (2, 4, 5):
            return None
        bn, ops, kinds = bn_apply(ops, kinds, "col" if len(group.shape) == 2 else "chan")
        bn_arg_list, bn_params, bn_finish = bn_args(bn)
        args += bn_arg_list
        params += ", " + bn_params
        kernels.append(render(CHAN_STATS, f"_stats_{k}", 0))
        post = stats_kernel_lines(f"_stats_{k}", "y", len(group.shape)) + [f"    p{nptr}, p{nptr + 1} = {bn_finish}"]
    code = [f"def _f{k}({params}):"] + operand_lines(kinds[:nptr]) + pre + post
    if not ops:
        return Emitted(args, [], "\n".join(code + ["    return y"]) + "\n", set())
    chained = lower_chain(f"_chain_{k}", ops, kinds, "y", group.shape)
    if chained is None:
        return None
    return Emitted(args, kernels + [chained.kernel], "\n".join(code + chained.launch + ["    return out"]) + "\n",
                   {chained.space})


def _emit(k: int, group: Group, rules: set[str]) -> tuple[Emitted, int] | None:
    """The helper for a group under the rules, and how many of its members it replaces."""
    template = BY_NAME.get(group.template)
    if template is not None and template.rule in rules:
        e = template.emit(k, group, lower_chain)
        if e is not None:
            return e, len(group.members)
    if "fuse_chains" in rules and (group.ops or group.kind == "chain"):
        e = _emit_library(k, group, chains=True)
        return (e, len(group.members)) if e is not None else None
    if "addmm" in rules and group.kind == "gemm" and group.source.get("bias") is None:
        bias, _, folded = fold_bias(group)
        if folded is not None and len(group.members) >= 2 and len(group.ops) >= 1:
            trimmed = Group(group.kind, group.anchor, group.source, group.ops[:1], group.operands,
                            group.members[:2], group.shape)
            e = _emit_library(k, trimmed, chains=False)
            return (e, 2) if e is not None else None
    return None


def _prologues(emitted: list[tuple[int, Group, Emitted, int]], rules: set[str]) -> list[tuple[int, Group, Emitted, int]]:
    """A template conv whose input is another template group's output, read by nothing else, applies
    that group's elementwise tail (a BatchNorm's scale and shift, an activation) as it loads its
    input: the producer returns its raw output and the tail's per-channel operands, and the chain
    kernel's pass over the tensor (a write and a read of it) is gone. A group can be both: a consumer
    of the group before it and a producer for the one after."""
    out = list(emitted)
    options: dict[int, dict[str, Any]] = {}  # by position: what each re-emitted group was given
    producer_of = {group.output: i for i, (_, group, _, n) in enumerate(emitted) if n == len(group.members)}
    for j, (k, group, _, n) in enumerate(emitted):
        consumer = BY_NAME.get(group.template)
        if consumer is None or not consumer.takes_prologue or consumer.rule not in rules:
            continue
        x = group.source["x"]
        i = producer_of.get(x)
        if i is None or len(x.users) != 1:
            continue
        kp, producer_group, _, np_ = out[i]
        producer = BY_NAME.get(producer_group.template)
        if producer is None or not producer.defers or producer.rule not in rules:
            continue
        given = {**options.get(i, {}), "defer": True}
        deferred = producer.emit(kp, producer_group, lower_chain, **given)
        if deferred is None:
            continue
        taken = {**options.get(j, {}), "prologue": deferred.deferred}
        fused = consumer.emit(k, group, lower_chain, **taken)
        if fused is None:
            continue
        out[i], out[j] = (kp, producer_group, deferred, np_), (k, group, fused, n)
        options[i], options[j] = given, taken
    return out


# --- assembling the candidate -------------------------------------------------------------------------------
def _placeholder(k: int, impl: Any = None) -> Any:
    """A call target standing for helper `_fK` in the graph; `impl` computes its value where the
    rewritten graph is run again (shape propagation on meta tensors)."""
    def fn(*args: Any) -> Any:
        if impl is None:
            raise RuntimeError("a fused group's placeholder is not meant to run")
        return impl(*args)
    fn.__name__ = fn.__qualname__ = f"_evo_fused_{k}"
    return fn


def build(problem: Any, rules: Iterable[str], prologues: bool = True) -> tuple[str, list[str]] | None:
    """(source, search spaces used) of a candidate with the graph rules applied (a template's rule, or
    one of GRAPH_RULES), or None when they change nothing for this problem or the forward does not
    trace. `prologues=False` leaves every producer's tail to its own chain kernel (a comparison)."""
    rules = set(rules)
    unknown = rules - set(rule_names())
    if unknown:
        raise ValueError(f"unknown graph rule(s) {sorted(unknown)}; known: {rule_names()}")
    example = problem.make_inputs(0, "meta")
    gm = trace(problem.Model, problem.init_inputs(), example)
    if gm is None:
        return None
    extra: list[str] = []
    changed = 0
    if "sdpa" in rules:
        changed += rewrites.sdpa(gm)
    if "avgpool_conv" in rules:
        extra = rewrites.avgpool_as_conv(gm, lambda i, mod: _placeholder(1000 + i, mod))
        changed += len(extra)
    if changed:
        gm.recompile()
        from torch.fx.passes.shape_prop import ShapeProp
        try:
            ShapeProp(gm).propagate(*example)
        except Exception:  # noqa: BLE001 - a rewrite the meta device cannot run: no candidate
            return None
    anchors = [(t.name, t.kind, t.pattern) for t in ANCHORS]
    groups = find_groups(gm, anchors) if rules - {"sdpa", "avgpool_conv"} else []
    emitted: list[tuple[int, Group, Emitted, int]] = []
    for group in groups:
        got = _emit(len(emitted), group, rules)
        if got is not None:
            emitted.append((len(emitted), group, got[0], got[1]))
    if prologues:
        emitted = _prologues(emitted, rules)
    if not emitted and not changed:
        return None
    graph = gm.graph
    replaced: dict[fx.Node, fx.Node] = {}  # a group's output -> its call (later groups may read it)
    for k, group, e, n_members in emitted:
        members = group.members[:n_members]
        out = members[-1]
        with graph.inserting_after(out):
            args = []
            for a in e.args:
                if isinstance(a, str) and a.startswith("attr:"):
                    with graph.inserting_before(out):
                        a = graph.get_attr(a[len("attr:"):])
                args.append(replaced.get(a, a) if isinstance(a, fx.Node) else a)
            call = graph.call_function(_placeholder(k), tuple(args))
        out.replace_all_uses_with(call)
        replaced[out] = call
        for m in reversed(members):
            if not m.users and m.op != "placeholder":
                graph.erase_node(m)
    graph.eliminate_dead_code()
    if any(n.op == "get_attr" and n.target.startswith("_tensor_constant") for n in graph.nodes):
        return None  # a tensor the tracer computed from a buffer: ModelNew would not have it
    code = graph.python_code("self")
    # SDPA is a builtin whose qualified name is torch._C._nn's; name it by its public path.
    src = code.src.replace("torch._C._nn.scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention")
    for gname, obj in code.globals.items():
        qual = getattr(obj, "__name__", "")
        if qual.startswith("_evo_fused_"):
            k = int(qual[len("_evo_fused_"):])
            target = f"_f{k}" if k < 1000 else f"_avgpool_{k - 1000}"
            src = re.sub(rf"\b{re.escape(gname)}\b", target, src)
        elif gname not in ("torch", "inf", "nan") and re.search(rf"\b{re.escape(gname)}\b", src):
            return None  # a global the candidate module would not have
    spaces = sorted(set().union(*(e.spaces for _, _, e, _ in emitted)) if emitted else set())
    # (a kernel several helpers share, the GEMMs' operand copy, is defined once)
    kernels = list(dict.fromkeys(kern for _, _, e, _ in emitted for kern in e.kernels))
    helpers = [e.helper for _, _, e, _ in emitted] + extra
    return _module(problem.source, src, kernels, helpers, spaces), spaces


def space_params(spaces: list[str]) -> tuple[dict[str, list[Any]], str]:
    """Defaults for every tunable the templates read, and the TUNABLE declaration: the space's name
    when there is one, else the merged parameters (each candidate repairs invalid combinations)."""
    merged = defaults()
    if len(spaces) == 1:
        return merged, repr(spaces[0])
    if not spaces:
        return merged, ""
    own: dict[str, list[Any]] = {}
    for s in spaces:
        own.update(BY_NAME[s].params)
    return merged, repr(own)


def _module(problem_source: str, forward_src: str, kernels: list[str], helpers: list[str], spaces: list[str]) -> str:
    params, tunable = space_params(spaces)
    lines = [problem_source.rstrip(), "", "", "# evo_kernels fusion: Triton templates around the traced forward",
             "import torch", "import triton", "import triton.language as tl", "", "inf = float('inf')",
             "nan = float('nan')"]
    lines += [f"{k} = {v[0]!r}" for k, v in params.items()]
    if tunable:
        lines.append(f"TUNABLE = {tunable}")
    lines += [HELPERS] + kernels + [""] + helpers
    body = forward_src.strip("\n")
    lines += ["", "class ModelNew(Model):"] + ["    " + line if line else "" for line in body.splitlines()] + [""]
    return "\n".join(lines)
