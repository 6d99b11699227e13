"""Register hazards of Hopper's asynchronous matrix products (wgmma), read from a kernel's SASS.

A wgmma whose A operand comes from registers reads them while it runs, after it was issued; PTX
leaves it undefined to write those registers before a `wgmma.wait_group` that covers the product.
Triton 3.6 breaks that rule in one pipelined shape: a K loop whose A tile reaches the tensor cores
through registers (a tensor-descriptor box reshaped to the product's shape, for one) and is split
into several products per step, each followed by `wait_group(steps - 1)`. The next step's shared
memory loads then overwrite the A registers of products still in flight, and one warp's rows of a
tile come out wrong now and then (on an H200, level2/17's transposed conv: about 1 call in 130;
experiments/RESULTS.md). Nothing at the Triton level shows it; the SASS does:

    LDSM.16.M88.4 R92, [...]                         <- next step: overwrites R92..R95
    HGMMA.64x64x8.F32.TF32 R56, R92, gdesc[...], R56  <- still in flight from the last step
    WARPGROUP.DEPBAR.LE gsb0, 0x3                     <- leaves three groups in flight

`hazards(sass)` walks each loop of the SASS twice (its end runs into its start), keeping the
products in flight as the `gsb0` group markers and `WARPGROUP.DEPBAR.LE` waits say, and reports
every instruction that writes an A register of a product still in flight (accumulators are not
followed: the products of one chain write them in order, and Triton waits before other uses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from inspect import getattr_static

_LABEL = re.compile(r"^\s*([A-Za-z_.$][\w.$]*):\s*$")
_CONTROL = re.compile(r"^\s*(?:[0-9a-fA-F-]{2}:[\w-]:[\w-]:[\w-]:\w+\s+)?(?:/\*[0-9a-fA-F]+\*/\s*)?")
_REG = re.compile(r"^-?\|?R(\d+)\|?(?:\.\w+)*$")
_BRANCH = re.compile(r"\bBRA\b(?:\.\w+)*\s+(?:`\()?([A-Za-z_.$][\w.$]*)")
# Instructions whose first operand is not a register they write.
_NO_DEST = ("ST", "RED", "BAR", "BRA", "EXIT", "RET", "CALL", "SYNCS", "UTMA", "WARPGROUP", "MEMBAR", "FENCE",
            "ARRIVES", "DEPBAR", "NOP", "YIELD", "BSYNC", "BSSY", "WARPSYNC", "ERRBAR", "CCTL")  # (prefixes)
A_REGS = 4  # a wgmma's A fragment: 4 registers a thread, whatever the type (64 x K of 32-bit words / 128)


@dataclass
class Hazard:
    line: int  # 1-based line of the writing instruction in the SASS text
    writer: str
    register: int
    product: str  # the wgmma in flight that reads it

    def __str__(self) -> str:
        return f"line {self.line}: `{self.writer}` writes R{self.register}, read by `{self.product}` still in flight"


@dataclass
class _Instr:
    line: int
    text: str
    opcode: str
    operands: list[str]


def _parse(sass: str) -> tuple[list[_Instr], dict[str, int]]:
    instrs: list[_Instr] = []
    labels: dict[str, int] = {}
    for n, raw in enumerate(sass.splitlines(), 1):
        m = _LABEL.match(raw)
        if m:
            labels[m.group(1)] = len(instrs)
            continue
        text = _CONTROL.sub("", raw, count=1).strip().rstrip(";").strip()
        if not text or text.startswith(("//", ".", "#")):
            continue
        body = re.sub(r"^@!?U?P\w+\s+", "", text)  # the guard predicate
        parts = body.split(None, 1)
        opcode = parts[0]
        if not re.match(r"^[A-Z][A-Za-z0-9_.]*$", opcode):
            continue
        operands = [o.strip() for o in parts[1].split(",")] if len(parts) > 1 else []
        instrs.append(_Instr(n, text, opcode, operands))
    return instrs, labels


def _width(opcode: str) -> int:
    """Registers an instruction writes from its destination on."""
    if opcode.startswith("LDSM"):
        m = re.search(r"\.(\d)$", opcode) or re.search(r"\.X(\d)", opcode)
        return int(m.group(1)) if m else 1
    m = re.search(r"\.(64|128)\b", opcode)
    if m and opcode.split(".")[0] in ("LDS", "LDG", "LD", "LDL", "LDC"):
        return int(m.group(1)) // 32
    return 2 if opcode.split(".")[0] in ("DADD", "DMUL", "DFMA") or opcode.startswith("F2F.F64") else 1


def _reg(operand: str) -> int | None:
    m = _REG.match(operand.strip())
    return int(m.group(1)) if m else None


def _writes(ins: _Instr) -> list[int]:
    base = ins.opcode.split(".")[0]
    if not ins.operands or base.startswith(_NO_DEST) or base == "HGMMA":
        return []
    r = _reg(ins.operands[0])
    return [] if r is None else list(range(r, r + _width(ins.opcode)))


def _walk(body: list[_Instr], out: list[Hazard]) -> None:
    """The loop body twice: the second pass sees the products the first left in flight."""
    groups: list[list[tuple[_Instr, set[int]]]] = []  # committed groups, oldest first
    current: list[tuple[_Instr, set[int]]] = []
    seen: set[tuple[int, int]] = set()
    for ins in body + body:
        base = ins.opcode.split(".")[0]
        if base == "HGMMA":
            a = _reg(ins.operands[1]) if len(ins.operands) > 1 else None  # None: A from shared memory
            current.append((ins, set(range(a, a + A_REGS)) if a is not None else set()))
            if any(o.strip() == "gsb0" for o in ins.operands):
                groups.append(current)
                current = []
            continue
        if ins.opcode.startswith("WARPGROUP.DEPBAR"):
            m = re.search(r"0x([0-9a-fA-F]+)|\b(\d+)\s*$", ins.operands[-1] if ins.operands else "")
            keep = int(m.group(1), 16) if m and m.group(1) else int(m.group(2)) if m else 0
            groups = groups[max(len(groups) - keep, 0):] if keep else []
            continue
        written = set(_writes(ins))
        if not written:
            continue
        for group in groups:
            for product, regs in group:
                for r in sorted(written & regs):
                    if (ins.line, r) not in seen:
                        seen.add((ins.line, r))
                        out.append(Hazard(ins.line, ins.text, r, product.text))


def hazards(sass: str) -> list[Hazard]:
    """Every write to an A register of a wgmma still in flight, in each loop of `sass` (SASS text as
    nvdisasm or Triton's `asm["sass"]` prints it)."""
    instrs, labels = _parse(sass)
    found: list[Hazard] = []
    for i, ins in enumerate(instrs):
        m = _BRANCH.search(ins.text)
        if m and m.group(1) in labels and labels[m.group(1)] <= i:
            body = instrs[labels[m.group(1)]:i + 1]
            if any(b.opcode.startswith("HGMMA") for b in body):
                _walk(body, found)
    return found


def compiled_kernels(module: object) -> list[tuple[str, object]]:
    """(name, compiled kernel) of every kernel the Triton functions defined in `module` (or held by its
    classes) compiled so far: a JITFunction's `device_caches` maps each device to (its kernels by key,
    ...). Static lookups only, as in `_jit_functions`."""
    out = []
    for name, fn in _jit_functions(module):
        caches = getattr_static(fn, "device_caches")
        for entry in caches.values() if isinstance(caches, dict) else ():
            compiled = entry[0] if isinstance(entry, tuple) else entry
            out += [(name, kernel) for kernel in (compiled.values() if isinstance(compiled, dict) else ())]
    return out


def module_sass(module: object) -> list[tuple[str, str]]:
    """(name, SASS) of every kernel `module` compiled so far (Triton disassembles each cubin with its
    nvdisasm when asked)."""
    return [(name, asm["sass"]) for name, kernel in compiled_kernels(module)
            if isinstance(asm := getattr_static(kernel, "asm", None), dict)]


def module_hazards(module: object) -> dict[str, list[Hazard]]:
    """The register hazards of each kernel `module` compiled that has any."""
    return {name: found for name, sass in module_sass(module) if (found := hazards(sass))}


def _jit_functions(module: object) -> list[tuple[str, object]]:
    """The module's Triton functions, through the wrappers that hold one as `.fn` (autotune, heuristics),
    and those its classes hold (a kernel defined in ModelNew's body, as a static method or not), named
    `Class.attribute`."""
    found, seen = [], set()
    names = sorted(vars(module).items())
    for cls_name, cls in list(names):
        if isinstance(cls, type) and getattr_static(cls, "__module__", None) == getattr_static(module, "__name__", 0):
            names += sorted((f"{cls_name}.{n}", v.__func__ if isinstance(v, (staticmethod, classmethod)) else v)
                            for n, v in vars(cls).items())
    for name, value in names:
        for _ in range(4):  # (static lookups: no property or __getattr__ of a candidate's runs here)
            if getattr_static(value, "device_caches", None) is not None:
                if id(value) not in seen:
                    seen.add(id(value))
                    found.append((name, value))
                break
            value = getattr_static(value, "fn", None)
            if value is None:
                break
    return found


def describe(module: object, limit: int = 3) -> str | None:
    """A rejection reason naming the kernels of `module` (a candidate, after its calls compiled them)
    whose SASS reloads registers of products still in flight, or None where none does."""
    found = module_hazards(module)
    if not found:
        return None
    parts = [f"{name} ({len(hs)} writes; {hs[0]})" for name, hs in list(found.items())[:limit]]
    return ("wgmma_hazard: a kernel overwrites the A registers of matrix products still in flight (undefined in "
            "PTX; Triton 3.6 does it in some pipelined K loops, and such a kernel writes wrong tiles now and then): "
            + "; ".join(parts))
