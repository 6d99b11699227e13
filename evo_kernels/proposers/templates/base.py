"""What every Triton template is built from: the template classes, and the IR-to-Triton helpers.

A template is one file in this folder (registered by one line in __init__.py) holding its kernel
text (string.Template: `$name`, `$ptrs`, `$body`), the pattern it lowers, its parameter space with
its constraints, and its emitter. Two kinds:

- `AnchorTemplate`: replaces a library call its pattern matches (a GEMM, a convolution) by a kernel
  that also takes the elementwise epilogue after it (`emit`); what needs whole rows or a pooling
  window goes to a chain template after it. Each has a graph rule of its own (`rule`).
- `ChainTemplate`: one kernel for a list of ops on a tensor made elsewhere (`lower`), after an anchor
  template, after a library call (rule fuse_chains) or on a plain input.

Ops are ir.py's; `body` turns them into Triton lines, loading each operand (a tensor from
outside the group) with the template's `loads` for its broadcast kind.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from string import Template
from typing import Any, Callable, Iterable, NamedTuple

from .ir import Group, Op

# Elementwise ops as Triton expressions. tanh, sigmoid and friends go through tl.exp (no libdevice:
# its module path differs across Triton versions); their absolute error is ~1e-7. Maximum and minimum
# pass NaN on, as torch's relu, clamp, maximum and minimum do (Triton's default drops it: relu(NaN) 0).
NAN = ", propagate_nan=tl.PropagateNan.ALL"
EXPR = {
    "relu": f"tl.maximum({{0}}, 0.0{NAN})", "sigmoid": "1.0 / (1.0 + tl.exp(-{0}))",
    "tanh": "1.0 - 2.0 / (tl.exp(2.0 * {0}) + 1.0)", "silu": "{0} / (1.0 + tl.exp(-{0}))",
    "hardswish": f"{{0}} * tl.minimum(tl.maximum({{0}} + 3.0, 0.0{NAN}), 6.0{NAN}) / 6.0",
    "relu6": f"tl.minimum(tl.maximum({{0}}, 0.0{NAN}), 6.0{NAN})",
    "gelu": "0.5 * {0} * (1.0 + tl.erf({0} * 0.7071067811865476))",
    "exp": "tl.exp({0})", "log": "tl.log({0})", "abs": "tl.abs({0})", "neg": "-{0}", "sqrt": "tl.sqrt({0})",
    "rsqrt": "tl.rsqrt({0})", "square": "{0} * {0}",
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "max": f"tl.maximum({{0}}, {{1}}{NAN})", "min": f"tl.minimum({{0}}, {{1}}{NAN})",
}
REDUCE = {"rsum": "tl.sum(tl.where(mask, {0}, 0.0), axis=1)[:, None]",
          "rmean": "(tl.sum(tl.where(mask, {0}, 0.0), axis=1) / N)[:, None]",
          "rmax": "tl.max(tl.where(mask, {0}, float('-inf')), axis=1)[:, None]"}


def _lit(x: Any) -> str:
    if isinstance(x, float):
        if math.isinf(x):
            return "float('inf')" if x > 0 else "float('-inf')"
        return repr(x)
    return str(x)


def shift(ops: list[Op], k: int) -> list[Op]:
    """ops[k:] as a group of its own: the value of ops[k-1] becomes "v", tK becomes t(K-k)."""
    def ref(a: Any) -> Any:
        if isinstance(a, str) and a.startswith("t"):
            i = int(a[1:])
            return "v" if i == k - 1 else f"t{i - k}"
        return a
    return [Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops[k:]]


def with_bias(ops: list[Op], bias: str) -> list[Op]:
    """A bias add as the first op (`bias` is an operand ref), the others' refs moved up by one."""
    def ref(a: Any) -> Any:
        if a == "v":
            return "t0"
        if isinstance(a, str) and a.startswith("t"):
            return f"t{int(a[1:]) + 1}"
        return a
    return [Op("add", ("v", bias))] + [Op(op.name, tuple(ref(a) for a in op.args), op.const) for op in ops]


def uses(ops: list[Op]) -> set[str]:
    return {a for op in ops for a in op.args if isinstance(a, str)}


def row_valued(ops: list[Op], operand_kinds: list[str]) -> set[str]:
    """Refs whose value is one per row (reductions and what is computed from them alone)."""
    rows: set[str] = set()
    for i, op in enumerate(ops):
        refs = [a for a in op.args if isinstance(a, str)]
        per_row = [a in rows or (a.startswith("p") and operand_kinds[int(a[1:])] == "row") for a in refs]
        if op.name in REDUCE or (refs and all(per_row)):
            rows.add(f"t{i}")
    return rows


def body(ops: list[Op], loads: dict[str, str], indent: str = "    ", temp: str = "",
         given: Iterable[str] = ()) -> tuple[list[str], str]:
    """Triton lines computing `ops` (operands loaded on first use with `loads[kind]`, apart from the
    `given` ones, already in scope), and the ref of the result ("v" when there are no ops). `temp`
    prefixes its temporaries' names (tK, uK), apart from another body's in the same kernel."""
    lines: list[str] = []
    loaded: set[str] = set(given)

    def val(a: Any) -> str:
        if isinstance(a, str):
            if a.startswith("p") and a not in loaded:
                loaded.add(a)
                lines.append(f"{indent}{a} = {loads[a].format(ptr=a + '_ptr')}")
            return temp + a if a.startswith("t") else a
        return _lit(float(a))

    for i, op in enumerate(ops):
        args = [val(a) for a in op.args]
        if op.name in REDUCE:
            expr = REDUCE[op.name].format(*args)
        elif op.name == "clamp":
            lo, hi = op.const
            expr = args[0]
            expr = expr if lo is None else f"tl.maximum({expr}, {_lit(lo)}{NAN})"
            expr = expr if hi is None else f"tl.minimum({expr}, {_lit(hi)}{NAN})"
        elif op.name == "leaky_relu":
            expr = f"tl.where({args[0]} >= 0.0, {args[0]}, {args[0]} * {_lit(op.const[0])})"
        elif op.name == "gelu_tanh":
            lines.append(f"{indent}{temp}u{i} = 0.7978845608028654 * ({args[0]} + 0.044715 * {args[0]} * {args[0]} * {args[0]})")
            expr = f"0.5 * {args[0]} * (1.0 + {EXPR['tanh'].format(f'{temp}u{i}')})"
        elif op.name == "pool":
            raise ValueError("pool ops are lowered by the pool template")
        else:
            expr = EXPR[op.name].format(*args)
        lines.append(f"{indent}{temp}t{i} = {expr}")
    return lines, (f"{temp}t{len(ops) - 1}" if ops else "v")


def ptr_params(n: int) -> str:
    return "".join(f" p{j}_ptr," for j in range(n))


# --- kernel texts ------------------------------------------------------------------------------------------
# The tile of one program in grouped order, shared by the GEMM and conv kernels: tiles run in groups
# of GROUP_M rows so that the A rows stay in L2 while the columns sweep.
_GROUPED_TILES = """\
    per_group = GROUP_M * grid_n
    first_m = (pid // per_group) * GROUP_M
    size_m = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % size_m
    pid_n = (pid % per_group) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)"""


def _with_grouped_tiles(text: str) -> Template:
    return Template(Template(text).safe_substitute(grouped_tiles=_GROUPED_TILES))


def render(template: Template, name: str, n_ptrs: int, **holes: str) -> str:
    holes.setdefault("stats", "")
    holes.setdefault("stats_ptrs", "")
    return template.substitute(name=name, ptrs=ptr_params(n_ptrs), **holes)



@dataclass
class Emitted:
    """What an emitter adds to the candidate for one group."""

    args: list[Any]  # graph nodes or "attr:..." strings, in the helper's parameter order
    kernels: list[str]
    helper: str
    spaces: set[str]  # the template spaces the helper's launches read (tuned together)
    # Ops left to the consumer's loads (a Prologue): the helper then returns its raw output and the
    # per-channel operands they read, as a tuple.
    deferred: Any = None


class Lowered(NamedTuple):
    """A chain template's lowering of ops on one tensor."""

    kernel: str  # the kernel's source
    launch: list[str]  # the helper's lines that launch it
    out: str  # the name the result is bound to
    space: str = ""  # the space its launch reads (set by the dispatch)


# The chain dispatch an anchor template hands what follows its epilogue to:
# chain(kernel name, ops, operand kinds, input name, full shape, split) -> Lowered | None.
Chain = Callable[..., "Lowered | None"]


@dataclass
class TritonTemplate:
    """Common to both kinds: the name (also its space's: `TUNABLE = "name"`), the space, the loads."""

    name: str
    params: dict[str, list[Any]] = field(default_factory=dict)  # first value: the default
    constraints: list[str] = field(default_factory=list)
    # A baseline precision switch (a key of the baselines' flags, e.g. cudnn.allow_tf32) -> values a
    # draft starts its tuning from where that switch is on (measured fastest within the contract).
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The same switch -> other configurations (changes from the seeded values) that were fastest on
    # some problems where the seeds were not: a draft's screen tries them right after its seeds.
    alternatives: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    loads: dict[str, str] = field(default_factory=dict)  # operand broadcast kind -> load expression
    space: str = ""  # the space its launch constants come from ("" = its own name)
    rows: bool = False  # holds rows whole: row reductions are possible
    kernel: Template | None = None  # the kernel text
    # A small KernelBench problem it lowers, the graph rules that build it, and the values it is run
    # with there (tests/conformance/test_templates.py checks the numerics under Triton's interpreter).
    example: str = ""
    example_rules: tuple[str, ...] = ()
    example_params: dict[str, Any] = field(default_factory=dict)

    @property
    def space_name(self) -> str:
        return self.space or self.name

    def loads_for(self, kinds: list[str]) -> dict[str, str]:
        """How each operand (p0, p1, ...) is loaded, by its broadcast kind."""
        return {f"p{j}": self.loads[k] for j, k in enumerate(kinds) if k in self.loads}

    def supports(self, ops: list[Op], kinds: list[str]) -> bool:
        """Every operand the ops read is loadable here; reductions only in a row template."""
        loads = self.loads_for(kinds)
        if any(r.startswith("p") and r not in loads for r in uses(ops)):
            return False
        return not any(op.name in REDUCE for op in ops) or self.rows


@dataclass
class AnchorTemplate(TritonTemplate):
    rule: str = ""  # the graph rule that turns it on (e.g. triton_gemm)
    prior: float = 5.0  # how early mutation tries the rule
    kind: str = ""  # the group kind its pattern makes ("gemm": rows of the last dim; "conv": NCHW)
    pattern: Callable[..., "dict[str, Any] | None"] | None = None  # FX node -> source dict
    emitter: Callable[..., "Emitted | None"] | None = None  # (k, group, template, chain) -> Emitted
    # Whether its emitter can leave its elementwise tail to a consumer (`defer=True`), and whether it
    # can apply a producer's tail to its own input as it loads it (`prologue=...`).
    defers: bool = False
    takes_prologue: bool = False

    def emit(self, k: int, group: Group, chain: Chain, **options: Any) -> Emitted | None:
        assert self.emitter is not None
        return self.emitter(k, group, self, chain, **options)


@dataclass
class ChainTemplate(TritonTemplate):
    claims: Callable[[list[Op]], bool] | None = None  # whether these ops are this template's to lower
    lowerer: Callable[..., "Lowered | None"] | None = None

    def lower(self, name: str, ops: list[Op], kinds: list[str], y: str, full_shape: tuple[int, ...],
              split: str = "1") -> Lowered | None:
        assert self.lowerer is not None
        return self.lowerer(self, name, ops, kinds, y, full_shape, split)


# --- epilogue composition, shared by the anchor templates --------------------------------------------------
def operand_lines(kinds: list[str]) -> list[str]:
    return [f"    p{j} = p{j}.contiguous()" for j in range(len(kinds))]


def prefix(ops: list[Op], template: TritonTemplate, kinds: list[str]) -> int:
    """The longest head of `ops` an anchor's epilogue can take: elementwise, its operands loadable
    there, and nothing after it reading any of its values but the last."""
    for k in range(len(ops), -1, -1):
        head, rest = ops[:k], ops[k:]
        if any(op.name in REDUCE or op.name in ("pool", "bn") for op in head) or not template.supports(head, kinds):
            continue
        inner = {"v"} | {f"t{i}" for i in range(k - 1)} if k else set()
        if not (uses(rest) & inner):
            return k
    return 0
