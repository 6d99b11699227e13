"""Static checks on candidate source: what a candidate may not do (driver side, before any GPU time).

A candidate may use any PyTorch operator, Triton, or a custom kernel; it may not reach outside the
computation: no other threads, processes or streams, no files, network or environment, no patching
of torch or the harness, no introspection that could find the reference's results, no global
precision switches unless the run allows reduced precision, and no try/except that could fall back
to a slower path when a fast one fails. Each violation is `policy:<rule>: line N: what`.

Attribute chains on imported modules are resolved here, in the checker's own process (no call is
made): a chain that lands on a module outside the allowed packages (`collections._sys`,
`enum.bltns`), on a reflective builtin or on a private name of a module is refused, so the
allow-list of imports cannot be walked around. `import os` is allowed (generated code often carries
it unused), but any use of the name `os` is refused as `environment`.
"""
from __future__ import annotations

import ast
import importlib
import types
from dataclasses import dataclass
from typing import Any

from ..model.candidate import ALLOWED_IMPORTS

# Sub-modules of allowed packages that still reach outside the computation.
FORBIDDEN_MODULES = {
    "torch.multiprocessing": "threads", "torch.distributed": "threads", "torch.utils.data": "threads",
    "torch.futures": "threads",
    "torch.hub": "network", "torch.testing": "patching", "torch._dynamo.config": "patching",
}
# Names of modules outside the allow-list, mapped to the rule their import breaks.
_IMPORT_RULES = {
    "threading": "threads", "_thread": "threads", "multiprocessing": "threads", "concurrent": "threads",
    "asyncio": "threads", "subprocess": "threads", "signal": "threads",
    "socket": "network", "urllib": "network", "http": "network", "requests": "network", "httpx": "network",
    "ftplib": "network", "smtplib": "network", "ssl": "network",
    "os": "environment", "sys": "introspection", "gc": "introspection", "inspect": "introspection",
    "ctypes": "introspection", "weakref": "introspection", "importlib": "introspection",
    "builtins": "patching", "time": "patching", "evo_kernels": "patching", "unittest": "patching",
    "io": "io", "pathlib": "io", "shutil": "io", "tempfile": "io", "pickle": "io", "glob": "io",
}
_FORBIDDEN_CALLS = {"open": "io", "exec": "introspection", "eval": "introspection", "compile": "introspection",
                    "__import__": "introspection", "globals": "introspection", "locals": "introspection",
                    "vars": "introspection", "breakpoint": "introspection", "input": "io"}
_FORBIDDEN_ATTRS = {
    "Stream": "streams", "ExternalStream": "streams", "stream": "streams", "set_stream": "streams",
    "wait_stream": "streams", "record_stream": "streams", "Event": "streams", "current_stream": "streams",
    "default_stream": "streams", "StreamContext": "streams", "get_stream_from_external": "streams",
    "_sleep": "streams",
    "allow_tf32": "precision", "set_float32_matmul_precision": "precision",
    "allow_fp16_reduced_precision_reduction": "precision", "allow_bf16_reduced_precision_reduction": "precision",
    "__subclasses__": "introspection", "__globals__": "introspection", "__code__": "introspection",
    "__closure__": "introspection", "__dict__": "introspection", "__builtins__": "introspection",
    "f_back": "introspection", "f_globals": "introspection", "f_locals": "introspection",
    "_getframe": "introspection", "get_objects": "introspection", "memory_snapshot": "introspection",
    # More ways to frames, builtins and code from strings.
    "gi_frame": "introspection", "cr_frame": "introspection", "ag_frame": "introspection",
    "tb_frame": "introspection", "f_builtins": "introspection", "__self__": "introspection",
    "__import__": "introspection", "__getattribute__": "introspection", "attrgetter": "introspection",
    "methodcaller": "introspection", "get_type_hints": "introspection", "ForwardRef": "introspection",
    "_eval_type": "introspection", "_evaluate": "introspection", "settrace": "introspection",
    "setprofile": "introspection", "set_eval_frame": "introspection",
    # Process-wide state that changes other modules' behaviour (the reference's included).
    "__setattr__": "patching", "__delattr__": "patching", "set_default_device": "patching",
    "_push_on_torch_function_stack": "patching", "_push_on_torch_dispatch_stack": "patching",
    "_set_torch_function_mode": "patching", "_set_dispatch_mode": "patching", "_dispatch_library": "patching",
    "py_impl": "patching", "set_num_threads": "threads", "set_num_interop_threads": "threads",
    "fp32_precision": "precision", "_set_fp32_precision_setter": "precision", "set_default_dtype": "precision",
    "set_default_tensor_type": "precision", "set_autocast_enabled": "precision", "set_autocast_dtype": "precision",
    "set_autocast_cpu_enabled": "precision", "set_autocast_gpu_dtype": "precision",
    "set_flush_denormal": "precision", "allow_fp16_bf16_reduction_math_sdp": "precision",
    "_global_forward_hooks": "patching", "_global_forward_pre_hooks": "patching",
    "_global_forward_hooks_with_kwargs": "patching", "_global_forward_hooks_always_called": "patching",
    "_global_backward_hooks": "patching", "_global_backward_pre_hooks": "patching",
}
# torch.backends.cudnn.flags(...) / mkldnn.flags(...): context managers that set the backend's flags
# for the calls inside them, TF32 included (cudnn.flags' allow_tf32 defaults to True), and put them
# back after, where the post-call integrity check cannot see them. Reached from a module only (a
# NumPy array's .flags is data).
_BACKEND_FLAGS = {"flags"}
# Reached through a module only (torch.jit.fork; an Event's own .wait is its business): TorchScript's
# fork runs the function on a native thread of the inter-op pool, after the call has returned.
_THREAD_ATTRS = {"fork": "threads", "_fork": "threads", "wait": "threads", "_wait": "threads",
                 "collect_all": "threads", "wait_all": "threads", "Future": "threads"}
# Modules a candidate may import but not use: generated code often carries them unused.
_IMPORT_ONLY = {"os": "environment"}
# Private names of modules that candidates may reach: operator namespaces (torch.ops.aten._softmax, and
# torch._C._nn.linear, which torch.fx writes for F.linear).
_PRIVATE_OK_UNDER = ("torch.ops.", "torch._C._nn.", "torch._C._linalg.", "torch._C._fft.", "torch._C._special.")
# Module names reached as attributes of other modules (typing.sys, torch.os, numpy.ctypeslib.ctypes)
# break the rule their import would.
_MODULE_ATTRS = {name: rule for name, rule in _IMPORT_RULES.items() if name not in ("time", "io")}
# Global module hooks (torch.nn.modules.module.register_module_forward_hook and kin) see and may
# replace every module's output, the reference's included.
_GLOBAL_HOOK_PREFIX = "register_module_"
# torch.library calls that register kernels; with a built-in namespace they override PyTorch's own
# operators for every caller (the reference and the harness's comparisons included).
_LIBRARY_CALLS = {"Library", "impl", "register_kernel", "register_fake", "register_autograd",
                  "register_torch_dispatch", "register_vmap", "impl_abstract", "_impl", "fallback"}
_BUILTIN_NAMESPACES = {"aten", "prims", "prim", "quantized", "_quantized", "c10d", "_c10d_functional",
                       "inductor", "profiler", "mkldnn", "onednn", "cuda", "triton", "_test", "sparse", "xla"}
# Builtins that reach attributes by computed names or run code from strings: called by name only.
_REFLECTIVE = {"getattr", "setattr", "delattr", "hasattr", "vars", "eval", "exec", "compile", "globals",
               "locals", "__import__", "breakpoint", "open"}
# File access when reached through a module (torch.load, cpp_extension.load from source files);
# building from strings with load_inline is fine.
_FILE_ATTRS = {"load", "save", "from_file"}


_MISSING = object()


def _import_quietly(name: str) -> Any:
    """The module of that name when it is importable and allowed, else None (nothing else is imported)."""
    if name.split(".")[0] not in ALLOWED_IMPORTS:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - not a module: an attribute, or absent here
        return None


def _public_prefix(node: ast.AST) -> bool:
    """A computed name that starts with constant text not starting with "_": f"layer{i}", "w" + str(i)."""
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        return isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value[:1].isalpha()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _public_prefix(node.left) or (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
                                            and node.left.value[:1].isalpha())
    return False


@dataclass
class Violation:
    rule: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"policy:{self.rule}: line {self.line}: {self.what}"


class _Checker(ast.NodeVisitor):
    def __init__(self, allow_reduced_precision: bool) -> None:
        self.allow_precision = allow_reduced_precision
        self.modules: set[str] = set()  # local names bound to imported modules (and simple aliases)
        self.imported: dict[str, str] = {}  # local name -> module, for `import x` / `import x as y`
        self.triton: set[str] = set()  # those of them bound to Triton (tl.load is a memory access)
        self.called: set[int] = set()  # ids of Name nodes in call position
        self.unusable: dict[str, str] = {}  # names bound by an import-only module -> the rule using them breaks
        self.from_names: dict[str, str] = {}  # local name -> "module.name", for `from module import name`
        self.checked: set[str] = set()  # attribute chains already resolved
        self.inner: set[int] = set()  # ids of Attribute nodes that are the value of another Attribute
        self.found: list[Violation] = []

    def flag(self, rule: str, node: ast.AST, what: str) -> None:
        if rule == "precision" and self.allow_precision:
            return
        self.found.append(Violation(rule, getattr(node, "lineno", 0), what))

    def _check_module(self, name: str, node: ast.AST) -> None:
        top = name.split(".")[0]
        for forbidden, rule in FORBIDDEN_MODULES.items():
            if name == forbidden or name.startswith(forbidden + "."):
                self.flag(rule, node, f"import of {name}")
                return
        if top not in ALLOWED_IMPORTS:
            self.flag(_IMPORT_RULES.get(top, "import"), node, f"import of {name} (not an allowed module)")

    def _import_only(self, alias: ast.alias) -> bool:
        """`import os` (or `import os.path`): allowed; the name it binds may not be used."""
        top = alias.name.split(".")[0]
        if top in _IMPORT_ONLY:
            self.unusable[alias.asname or top] = _IMPORT_ONLY[top]
            return True
        return False

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._import_only(alias):
                continue
            self._check_module(alias.name, node)
            self.modules.add(alias.asname or alias.name.split(".")[0])
            self.imported[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            if alias.name.split(".")[0] == "triton":
                self.triton.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag("import", node, "relative import")
            return
        mod = node.module or ""
        self._check_module(mod, node)
        for alias in node.names:
            self._check_module(f"{mod}.{alias.name}", node)
            if alias.name in _FORBIDDEN_ATTRS:
                self.flag(_FORBIDDEN_ATTRS[alias.name], node, f"import of {mod}.{alias.name}")
            elif alias.name in _BACKEND_FLAGS and mod.startswith("torch.backends"):
                self.flag("precision", node, f"import of {mod}.{alias.name} (switches backend precision flags)")
            elif alias.name.startswith(_GLOBAL_HOOK_PREFIX):
                self.flag("patching", node, f"import of {mod}.{alias.name} (a hook on every module)")
            self.modules.add(alias.asname or alias.name)
            self.from_names[alias.asname or alias.name] = f"{mod}.{alias.name}"
            if mod.split(".")[0] == "triton":
                self.triton.add(alias.asname or alias.name)

    def visit_Try(self, node: ast.AST) -> None:
        self.flag("try_except", node, "try/except (a candidate must not fall back or hide failures)")
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            self.called.add(id(func))
            name = func.id
            if name in _FORBIDDEN_CALLS:
                self.flag(_FORBIDDEN_CALLS[name], node, f"call of {name}()")
            if name in ("setattr", "delattr") and node.args and self._rooted_in_module(node.args[0]):
                self.flag("patching", node, f"{name}() on a module")
            if name in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) > 1:
                self._check_reflective(name, node)
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called in _LIBRARY_CALLS:
            self._check_library(called, node)
        self.generic_visit(node)

    def _check_reflective(self, name: str, node: ast.Call) -> None:
        """getattr and kin: the attribute name must be a constant the other rules can check."""
        target, attr = node.args[0], node.args[1]
        if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            rule = _FORBIDDEN_ATTRS.get(attr.value) or _MODULE_ATTRS.get(attr.value) \
                or ("patching" if attr.value.startswith(_GLOBAL_HOOK_PREFIX) else None) \
                or ("introspection" if attr.value.startswith("__") else None)
            if rule:
                self.flag(rule, node, f"{name}(..., {attr.value!r})")
            elif self._rooted_in_module(target):
                self._check_chain(f"{self._dotted(target)}.{attr.value}", node)
        elif not (isinstance(target, ast.Name) and target.id == "self" and _public_prefix(attr)):
            self.flag("introspection", node, f"{name}() with a computed attribute name (only on self, and only "
                                             "a name that starts with a constant public prefix, e.g. f'layer{i}')")

    def _check_library(self, called: str, node: ast.Call) -> None:
        """Kernel registrations may target the candidate's own namespace, never PyTorch's."""
        args = list(node.args) + [k.value for k in node.keywords]
        for a in args:
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                ns = a.value.split("::")[0] if "::" in a.value else a.value
                if ns in _BUILTIN_NAMESPACES and ("::" in a.value or called == "Library"):
                    self.flag("patching", node, f"{called}({a.value!r}, ...) overrides a built-in operator")
                    return
        if called == "Library" and node.args and not isinstance(node.args[0], ast.Constant):
            self.flag("patching", node, "torch.library.Library with a computed namespace")

    def _dotted(self, node: ast.AST) -> str:
        """`torch.nn.functional` for an attribute chain rooted at an imported name (the module's full name)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        root = node.id if isinstance(node, ast.Name) else ""
        return ".".join([self.imported.get(root, self.from_names.get(root, root))] + parts)

    def _check_chain(self, dotted: str, node: ast.AST) -> None:
        """Resolve a chain on an imported module without calling anything: it may not land on a module
        outside the allowed packages, on a reflective builtin, or on a private name of a module."""
        if dotted in self.checked:
            return
        self.checked.add(dotted)
        private_ok = dotted.startswith(_PRIVATE_OK_UNDER)
        parts = dotted.split(".")
        obj = _import_quietly(parts[0])
        if obj is None:
            return
        path = parts[0]
        for part in parts[1:]:
            owner_is_module = isinstance(obj, types.ModuleType)
            if owner_is_module and part.startswith("_") and not part.startswith("__") and not private_ok:
                self.flag("introspection", node, f"use of {path}.{part} (a private name of a module)")
                return
            nxt = _import_quietly(f"{path}.{part}") if owner_is_module and not hasattr(obj, part) else None
            obj = nxt if nxt is not None else getattr(obj, part, _MISSING)
            if obj is _MISSING:
                return  # fails when it runs; nothing is reached
            path = f"{path}.{part}"
            if isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] not in ALLOWED_IMPORTS:
                self.flag(_IMPORT_RULES.get(obj.__name__.split(".")[0], "introspection"), node,
                          f"{path} is the module {obj.__name__}, which is not an allowed one")
                return
            if isinstance(obj, types.BuiltinFunctionType) and getattr(obj, "__module__", "") == "builtins" \
                    and obj.__name__ in _REFLECTIVE | set(_FORBIDDEN_CALLS):
                self.flag("introspection", node, f"{path} is the builtin {obj.__name__}")
                return
            if not isinstance(obj, types.ModuleType):
                return  # a class, function or value of an allowed module: the other rules judge its use

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and self._rooted_in_module(node) and not self._inside_attribute(node):
            self._check_chain(self._dotted(node), node)
        if node.attr in _THREAD_ATTRS and self._rooted_in_module(node.value):
            self.flag(_THREAD_ATTRS[node.attr], node, f"use of .{node.attr} (work on a thread of the inter-op pool)")
        if node.attr in _FILE_ATTRS:  # torch.load / cpp_extension.load, not a method of one's own
            if self._rooted_in_module(node.value) and self._root(node.value) not in self.triton:
                self.flag("io", node, f"use of .{node.attr}")
        elif node.attr in _FORBIDDEN_ATTRS:
            self.flag(_FORBIDDEN_ATTRS[node.attr], node, f"use of .{node.attr}")
        elif node.attr in _MODULE_ATTRS:
            self.flag(_MODULE_ATTRS[node.attr], node, f"use of .{node.attr} (a module reached through another)")
        elif node.attr.startswith(_GLOBAL_HOOK_PREFIX):
            self.flag("patching", node, f"use of .{node.attr} (a hook on every module, the reference's too)")
        if node.attr in ("environ", "getenv", "putenv") and self._rooted_in_module(node.value):
            self.flag("environment", node, f"use of .{node.attr}")
        if node.attr in _BACKEND_FLAGS and self._rooted_in_module(node.value):
            self.flag("precision", node, f"use of .{node.attr} (switches backend precision flags, e.g. TF32, "
                                         "for the calls inside it)")
        self.generic_visit(node)

    def _inside_attribute(self, node: ast.AST) -> bool:
        """Whether the node is the value of a longer attribute chain (the longest one is checked)."""
        return id(node) in self.inner

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            self.inner.add(id(node.value))
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.unusable:
            self.flag(self.unusable[node.id], node, f"use of {node.id} (importing it is allowed, using it is not)")
        if node.id in ("__builtins__", "__loader__", "__spec__"):
            self.flag("introspection", node, f"use of {node.id}")
        elif node.id in _REFLECTIVE and id(node) not in self.called:
            self.flag("introspection", node, f"{node.id} used as a value (it may only be called directly)")

    @staticmethod
    def _root(node: ast.AST) -> str:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else ""

    def _rooted_in_module(self, node: ast.AST) -> bool:
        return self._root(node) in self.modules

    def _is_cudnn_benchmark(self, target: ast.AST) -> bool:
        """`torch.backends.cudnn.benchmark`, spelled out from the real `torch`: cuDNN's algorithm
        autotuning, a speed switch that keeps fp32 results (TF32 is `allow_tf32`, refused above)."""
        parts: list[str] = []
        while isinstance(target, ast.Attribute):
            parts.insert(0, target.attr)
            target = target.value
        return (isinstance(target, ast.Name) and self.imported.get(target.id) == "torch"
                and parts == ["backends", "cudnn", "benchmark"])

    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, ast.Attribute) and _FORBIDDEN_ATTRS.get(target.attr) == "precision":
            return  # reported (or allowed) as a precision switch by visit_Attribute
        if self._is_cudnn_benchmark(target) and isinstance(node, ast.Assign):
            return  # the one module attribute a candidate may set
        if isinstance(target, (ast.Attribute, ast.Subscript)) and self._rooted_in_module(target):
            self.flag("patching", node, f"assignment to {ast.unparse(target)} (patches a module)")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._check_target(t, node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._check_target(t, node)
        # `t = torch` or `m = torch.backends.cuda`: the alias is a module too.
        if isinstance(node.value, (ast.Name, ast.Attribute)) and self._rooted_in_module(node.value):
            self.modules.update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._check_target(t, node)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.flag("introspection", node, "global statement (module state shared across calls)")


def check_source(source: str, allow_reduced_precision: bool = False) -> list[Violation]:
    """All policy violations in a candidate's source (empty: allowed). A syntax error is not a
    violation here: the worker reports it as `compile_error` with its line."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    checker = _Checker(allow_reduced_precision)
    # Imports first, so module names are known wherever they are used.
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            checker.visit(node)
    imports = (ast.Import, ast.ImportFrom)
    for node in tree.body:
        if not isinstance(node, imports):
            checker.visit(node)
    unique = {(v.rule, v.line, v.what): v for v in checker.found}
    return sorted(unique.values(), key=lambda v: v.line)
