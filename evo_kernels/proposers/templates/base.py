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


# Launch-time helpers every template candidate carries: shared-memory repair of a tuned config
# (so any combination of the merged spaces compiles), split-K choice, row-kernel shapes, a
# BatchNorm's scale and shift from its statistics (one kernel).
HELPERS = '''
def _cdiv(a, b):
    # Ceiling division on the host (triton.cdiv is a constexpr function: its wrapper cost a conv
    # draft's call about a fifth of its host time, H200, 2026-12-02).
    return -(-a // b)


def _pow2(n):
    # The least power of two >= n (0 for 0), as triton.next_power_of_2, without its wrapper.
    return 1 << (n - 1).bit_length() if n > 0 else 0


def _fit_stages(bm, bn, bk, stages, extra=0):
    # Shared memory holds `stages` A and B tiles of fp32 (and `extra` bytes); keep them under ~200 KB.
    while stages > 1 and (bm + bn) * bk * 4 * stages + extra > 200000:
        stages -= 1
    return stages


def _split_k(tiles, k, bk):
    # Few output tiles and a long K: split K so that every SM gets work.
    if tiles >= 64 or k < 8 * bk:
        return 1
    split = 1
    while split < 16 and tiles * split * 2 <= 256 and k // (split * 2) >= 4 * bk:
        split *= 2
    return split


def _bn_batch_stats(training, running_mean):
    # Whether a BatchNorm normalizes with the batch's statistics (training, or none kept), as torch does.
    return training or running_mean is None


@triton.jit
def _tf32_rn(x):
    # fp32 rounded to nearest (ties away from zero) at TF32's 10-bit mantissa; inf and NaN kept, the
    # largest finite values rounded to inf as the hardware's conversion does.
    bits = x.to(tl.uint32, bitcast=True)
    rounded = ((bits + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
    return tl.where((bits & 0x7F800000) == 0x7F800000, x, rounded)


@triton.jit
def _tf32_rn_copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, _tf32_rn(tl.load(x_ptr + i, mask=i < n, other=0.0)), mask=i < n)


# Triton's tensor descriptors exist from 3.3 on.
_TRITON_DESCRIPTORS = tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 3)


_DEVICES = {}


def _device_facts(x):
    # (compute capability, multiprocessors) of x's GPU, asked once a device: each query costs a call
    # microseconds of host time.
    d = x.get_device()
    facts = _DEVICES.get(d)
    if facts is None:
        props = torch.cuda.get_device_properties(d)
        facts = _DEVICES[d] = ((props.major, props.minor), props.multi_processor_count)
    return facts


def _tma_ok(x, *more):
    # Input tiles by TMA: tensor descriptors, on Hopper and later (Triton's interpreter runs them on the
    # CPU too), of tensors that start on 16 bytes as TMA needs (a view into a tensor may not);
    # otherwise the convolutions gather their input by pointers.
    return _TRITON_DESCRIPTORS and (not x.is_cuda or _device_facts(x)[0][0] >= 9) \
        and all(t.data_ptr() % 16 == 0 for t in (x, *more))


if _TRITON_DESCRIPTORS:
    from triton.tools.tensor_descriptor import TensorDescriptor as _TensorDescriptor
else:
    _TensorDescriptor = ()  # (isinstance against it is False)


def _descriptor(t, block):
    # A TMA descriptor of `t` in boxes of `block` (its class exists where _tma_ok holds).
    return _TensorDescriptor.from_tensor(t, block)


# A launch's compiled kernel, kept by _launch.
from triton.compiler import CompiledKernel as _CompiledKernel


def _launch_key_part(a):
    # What a launch's compiled kernel depends on in one argument: a tensor's dtype, device and
    # 16-byte alignment (what Triton specialises a pointer on), a tensor descriptor's geometry, any
    # other value itself with its type (True and 1 differ).
    if isinstance(a, torch.Tensor):
        return (a.dtype, a.get_device(), a.data_ptr() % 16 == 0)
    if isinstance(a, _TensorDescriptor):
        return (a.base.dtype, a.base.get_device(), tuple(a.shape), tuple(a.strides), tuple(a.block_shape), a.padding)
    return (type(a), a)


_LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg")
_LAUNCHES = {}


def _launch(kernel, grid, *args, **kwargs):
    # kernel[grid](*args, **kwargs), with the kernel Triton compiled for the first such call launched
    # directly after it: Triton's own dispatch re-derives the specialisation of every argument and
    # its cache key at each launch (16-55 us a launch on an H200's host, 2026-12-02), host time a
    # short conv's call is measured by. The key is a superset of Triton's: a tensor's alignment and
    # dtype, and every other argument's value; a new value of a size compiles nothing new, it only
    # takes Triton's path once.
    key = (kernel, tuple(kwargs), *[_launch_key_part(a) for a in args],
           *[_launch_key_part(a) for a in kwargs.values()])
    hit = _LAUNCHES.get(key)
    if hit is None:
        compiled = kernel[grid](*args, **kwargs)
        # (None under Triton's interpreter, which has no compiled kernel to keep)
        if isinstance(compiled, _CompiledKernel):
            if len(_LAUNCHES) >= 4096:  # sizes that change on every call: keep the table bounded
                _LAUNCHES.clear()
            _LAUNCHES[key] = (compiled, _launch_order(kernel, len(args), kwargs))
        return
    compiled, (order, defaults) = hit
    given = (*args, *kwargs.values(), *defaults)
    # (the compiled kernel's launcher reads three grid dimensions)
    compiled[grid if len(grid) == 3 else (*grid, 1, 1)[:3]](*[given[i] for i in order])


def _launch_order(kernel, n_args, kwargs):
    # Where each of the kernel's parameters, in its signature's order, is among (positional
    # arguments, keyword values, the defaults of parameters not given): the compiled kernel takes
    # them all positionally, constexprs included.
    names = list(kernel.arg_names)
    given = {name: i for i, name in enumerate(names[:n_args])}
    given.update({name: n_args + j for j, name in enumerate(kwargs) if name not in _LAUNCH_OPTIONS})
    missing = [p for p in kernel.params if p.name not in given]
    for j, p in enumerate(missing):
        given[p.name] = n_args + len(kwargs) + j
    return [given[name] for name in names], tuple(p.default for p in missing)


@triton.jit
def _nhwc_tile(x_ptr, y_ptr, C, H, W, n, cb, pb, PSH: tl.constexpr, PSW: tl.constexpr, ROUND: tl.constexpr,
               BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    # (n, c, h, w) -> (n, h, w, c), rounded to TF32 where asked: BLOCK_C channels x BLOCK_P pixels of
    # image n. Split by phases (PSH, PSW) for a strided conv: pixel (h, w) goes to plane
    # n * PSH * PSW + (h % PSH) * PSW + w % PSW at (h // PSH, w // PSW), so that the pixels one tap of
    # the conv reads for a tile of outputs are a box of one plane.
    HW = H * W
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = (c < C)[:, None] & (p < HW)[None, :]
    v = tl.load(x_ptr + n * C * HW + c[:, None] * HW + p[None, :], mask=ok, other=0.0)
    if ROUND:
        v = _tf32_rn(v)
    if PSH * PSW == 1:
        q = n * HW + p
    else:
        h = p // W
        w = p - h * W
        ph = tl.cdiv(H, PSH)
        pw = tl.cdiv(W, PSW)
        q = ((n * PSH * PSW + (h % PSH) * PSW + w % PSW) * ph + h // PSH) * pw + w // PSW
    tl.store(y_ptr + q[None, :] * C + c[:, None], v, mask=ok)


@triton.jit
def _filter_chunk(w_ptr, out_ptr, row, chunk, C, CO, KH, KW, s_c, s_co, s_kh, s_kw, SH, SW, TH, TW, CP,
                  ROUND: tl.constexpr, BLOCK: tl.constexpr):
    # Row (rh, rw, co) of the packed filters: taps (jh, jw) by channels padded to CP, tap (jh, jw)
    # being the filter's (jh * SH + rh, jw * SW + rw); zeros beyond the filter and its channels.
    co = row % CO
    rw = (row // CO) % SW
    rh = row // (CO * SW)
    i = chunk * BLOCK + tl.arange(0, BLOCK)
    tap = i // CP
    c = i % CP
    kh = (tap // TW) * SH + rh
    kw = (tap % TW) * SW + rw
    ok = (i < TH * TW * CP) & (c < C) & (kh < KH) & (kw < KW)
    v = tl.load(w_ptr + c * s_c + co * s_co + kh * s_kh + kw * s_kw, mask=ok, other=0.0)
    if ROUND:
        v = _tf32_rn(v)
    tl.store(out_ptr + row.to(tl.int64) * (TH * TW * CP) + i, v, mask=i < TH * TW * CP)


@triton.jit
def _conv_operands(x_ptr, xl_ptr, w_ptr, wk_ptr, C_IN, H_IN, W_IN, COPY_TILES, C, CO, KH, KW, s_c, s_co, s_kh,
                   s_kw, SH, SW, TH, TW, CP, PSH: tl.constexpr, PSW: tl.constexpr, ROUND: tl.constexpr,
                   BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK: tl.constexpr):
    # A conv's operands in one launch: the first COPY_TILES programs copy the input channels-last,
    # the others pack the filter rows (a launch fewer to issue a call: host time the hidden-work
    # check counts against a call whose kernels are short).
    pid = tl.program_id(0)
    if pid < COPY_TILES:
        tiles_p = tl.cdiv(H_IN * W_IN, BLOCK_P)
        tiles_c = tl.cdiv(C_IN, BLOCK_C)
        _nhwc_tile(x_ptr, xl_ptr, C_IN, H_IN, W_IN, (pid // (tiles_p * tiles_c)).to(tl.int64),
                   (pid // tiles_p) % tiles_c, pid % tiles_p, PSH, PSW, ROUND, BLOCK_C, BLOCK_P)
    else:
        q = pid - COPY_TILES
        chunks = tl.cdiv(TH * TW * CP, BLOCK)
        _filter_chunk(w_ptr, wk_ptr, q // chunks, q % chunks, C, CO, KH, KW, s_c, s_co, s_kh, s_kw, SH, SW, TH, TW,
                      CP, ROUND, BLOCK)


def _conv_operands_launch(x, w, transposed, sh, sw, cp, rounded, phases=(1, 1)):
    # The filters (c_out, c, kh, kw), or (c, c_out, kh, kw) transposed, as the K-major rows the conv
    # kernels read: a row per (phase, output channel) (an ordinary conv has one phase: sh = sw = 1),
    # its taps by channels padded to cp, rounded to TF32 where asked; with `x`, also x's channels-last
    # copy (rounded alike) split by `phases` (a strided conv's (stride_h, stride_w): planes of
    # ceil(h / stride_h) x ceil(w / stride_w) pixels, zeros past the input), made by the same launch.
    # Returns (that copy or None, the rows).
    c, co = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
    s_c, s_co = (w.stride(0), w.stride(1)) if transposed else (w.stride(1), w.stride(0))
    kh, kw = w.shape[2], w.shape[3]
    th, tw = _cdiv(kh, sh), _cdiv(kw, sw)
    wk = torch.empty((sh * sw * co, th * tw * cp), device=w.device, dtype=torch.float32)
    xl, c_in, h, w_, copy_tiles = None, 1, 1, 1, 0
    psh, psw = phases
    if x is not None:
        x = x.contiguous()
        n, c_in, h, w_ = x.shape
        shape = (n * psh * psw, _cdiv(h, psh), _cdiv(w_, psw), c_in)
        # (the planes' cells past the input are read as the conv's zero padding)
        xl = (torch.zeros if h % psh or w_ % psw else torch.empty)(shape, device=x.device, dtype=torch.float32)
        copy_tiles = n * _cdiv(c_in, 32) * _cdiv(h * w_, 64)
    _launch(_conv_operands, (copy_tiles + sh * sw * co * _cdiv(th * tw * cp, 1024),),
        x if x is not None else w, xl if xl is not None else wk, w, wk, c_in, h, w_, copy_tiles, c, co, kh, kw, s_c,
        s_co, w.stride(2), w.stride(3), sh, sw, th, tw, cp, PSH=psh, PSW=psw, ROUND=rounded, BLOCK_C=32, BLOCK_P=64,
        BLOCK=1024, num_warps=4)
    return xl, wk


def _pack_filters(w, transposed, sh, sw, cp, rounded):
    # A conv's filters as its kernels' K-major rows, in one launch (pad, permute and round as torch
    # ops took a launch each).
    return _conv_operands_launch(None, w, transposed, sh, sw, cp, rounded)[1]


def _tma_operands(x, w, transposed, sh, sw, cp, rounded, phases=(1, 1)):
    # Both operands of a TMA conv: x (n, c, h, w) as a contiguous (n, h, w, c) tensor (split by
    # `phases` for a strided conv: _conv_operands_launch), whose channels TMA reads as rows, and the
    # filters' rows; rounded to TF32 where asked. One launch where x must be copied (one read and one
    # write of x, at about the copy bandwidth); a view where it is channels-last already and unsplit.
    if x.is_contiguous(memory_format=torch.channels_last) and phases == (1, 1):
        xl = x.permute(0, 2, 3, 1)
        return (_round_tf32(xl) if rounded else xl), _pack_filters(w, transposed, sh, sw, cp, rounded)
    return _conv_operands_launch(x, w, transposed, sh, sw, cp, rounded, phases)


def _round_tf32(t):
    # A contiguous tensor's copy rounded to TF32 (a conv's weights, once a call: one launch; rounding
    # the weight tiles in the conv kernel instead cost its K loop 25%, 2026-12-01).
    out = torch.empty_like(t)
    _launch(_tf32_rn_copy, (_cdiv(t.numel(), 1024),), t, out, t.numel(), BLOCK=1024)
    return out


@triton.jit
def _bn_finalize(cnt_ptr, mean_ptr, m2_ptr, w_ptr, b_ptr, rm_ptr, rv_ptr, nbt_ptr, scale_ptr, shift_ptr, CHUNKS, C,
                 eps, momentum, BATCH: tl.constexpr, UPDATE: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # BLOCK_C channels a program. Batch statistics: the per-tile (count, mean, M2) merged in one pass,
    # BLOCK_R tiles at a time (each block's own mean and M2, then Chan's formula), the running
    # statistics updated as BatchNorm does; else the running statistics. Then the scale and shift.
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < C
    if BATCH:
        total = 0.0
        mean = tl.zeros((BLOCK_C,), dtype=tl.float32)
        m2 = tl.zeros((BLOCK_C,), dtype=tl.float32)
        for r0 in range(0, CHUNKS, BLOCK_R):
            r = r0 + tl.arange(0, BLOCK_R)
            ok = (r < CHUNKS)[:, None] & c_ok[None, :]
            cnt = tl.load(cnt_ptr + r, mask=r < CHUNKS, other=0.0)
            n_b = tl.sum(cnt, axis=0)
            mt = tl.load(mean_ptr + r[:, None] * C + c[None, :], mask=ok, other=0.0)
            mean_b = tl.sum(cnt[:, None] * mt, axis=0) / tl.maximum(n_b, 1.0)  # (no tile empty: a guard)
            d = tl.where(ok, mt - mean_b[None, :], 0.0)
            m2_b = tl.sum(tl.load(m2_ptr + r[:, None] * C + c[None, :], mask=ok, other=0.0) + cnt[:, None] * d * d,
                          axis=0)
            both = tl.maximum(total + n_b, 1.0)
            delta = mean_b - mean
            m2 = m2 + m2_b + delta * delta * (total * n_b / both)
            mean = mean + delta * (n_b / both)
            total = total + n_b
        var = m2 / total
        if UPDATE:
            rm = tl.load(rm_ptr + c, mask=c_ok, other=0.0)
            rv = tl.load(rv_ptr + c, mask=c_ok, other=0.0)
            tl.store(rm_ptr + c, rm * (1.0 - momentum) + mean * momentum, mask=c_ok)
            tl.store(rv_ptr + c, rv * (1.0 - momentum) + var * (total / (total - 1.0)) * momentum, mask=c_ok)
            if tl.program_id(0) == 0:
                tl.store(nbt_ptr, tl.load(nbt_ptr) + 1)
    else:
        mean = tl.load(rm_ptr + c, mask=c_ok, other=0.0)
        var = tl.load(rv_ptr + c, mask=c_ok, other=1.0)
    scale = 1.0 / tl.sqrt_rn(var + eps)
    if HAS_W:
        scale = scale * tl.load(w_ptr + c, mask=c_ok, other=0.0)
    shift = -mean * scale
    if HAS_B:
        shift = shift + tl.load(b_ptr + c, mask=c_ok, other=0.0)
    tl.store(scale_ptr + c, scale, mask=c_ok)
    tl.store(shift_ptr + c, shift, mask=c_ok)


def _bn_scale_shift(cnt, mean_t, m2_t, weight, bias, running_mean, running_var, tracked, training, eps, momentum):
    # A BatchNorm's per-channel scale and shift, its running statistics updated in training (as
    # BatchNorm does): one launch, where torch ops took about fifteen, each paid on the host.
    batch = _bn_batch_stats(training, running_mean)
    update = bool(batch and training and running_mean is not None)
    ref = mean_t if batch else running_mean
    c = ref.shape[-1]
    scale = torch.empty((c,), device=ref.device, dtype=torch.float32)
    shift = torch.empty_like(scale)
    some = lambda t: scale if t is None else t  # noqa: E731 - an unread pointer where there is no tensor
    # About 128 programs where there are channels for them (a wave of the SMs: at 16 channels a
    # program, level3/10's 64 channels ran on 4 programs, each merging 1600 tiles), up to 16 channels
    # (64-byte rows of the tiles' statistics); tiles merged in blocks of up to 4096 values.
    chunks = cnt.shape[0] if batch else 0
    block_c = min(16, max(1, _pow2(c // 128 + 1) // 2))
    block_r = min(max(16, _pow2(chunks)), 4096 // block_c, 1024)
    _launch(_bn_finalize, (_cdiv(c, block_c),),
        some(cnt), some(mean_t), some(m2_t), some(weight), some(bias), some(running_mean), some(running_var),
        tracked if update else scale, scale, shift, chunks, c, eps, momentum if update else 0.0,
        BATCH=batch, UPDATE=update, HAS_W=weight is not None, HAS_B=bias is not None, BLOCK_R=block_r, BLOCK_C=block_c,
        num_warps=4)
    return scale, shift


def _sms(x):
    # Multiprocessors of x's device (off a GPU, Triton's interpreter: 4)
    return _device_facts(x)[1] if x.is_cuda else 4


def _split_length(x, programs, length, block, waves, cap):
    # Cut `length` into chunks (of whole blocks, at least 4 each, at most `cap` chunks) when fewer
    # than `waves` programs per SM would run otherwise: (number of chunks, chunk length).
    split = max(1, min(cap, _cdiv(waves * _sms(x), programs), _cdiv(length, 4 * block)))
    ch = _cdiv(_cdiv(length, split), block) * block
    return _cdiv(length, ch), ch


def _row_config(n):
    block_n = _pow2(n)
    rows = max(1, min(64, ROW_TILE // block_n))
    warps = max(1, min(16, rows * block_n // (32 * ROW_PER_THREAD)))
    return block_n, rows, _pow2(warps)
'''
