"""What the harness relies on, captured before candidate code runs, and a check that it is unchanged.

A candidate could replace `torch.allclose`, `time.perf_counter`, the CUDA event methods, a Tensor
method, the reference's class or the harness's own functions so that a wrong or slow result looks
right or fast. It could also change process-wide state that every later call sees: a torch function
or dispatch mode left active, a global module hook, an aten kernel overridden through torch.library,
a trace function, a precision switch. The static policy refuses the obvious forms; this catches the
rest at run time. `snapshot()` records it all before any candidate is imported, `changed()` and
`precision_changes()` list what differs now, `restore()` puts back what can be put back (a dispatcher
override cannot: the worker is replaced instead).
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import random
import sys
import threading
import time
from types import ModuleType
from typing import Any, Iterator

import torch

from .precision import _restore_precision, precision_flags

# Modules whose functions, classes and submodules are identity-checked (every one of them: a
# candidate need not patch what the harness calls by name; it can patch what those call).
_MODULES = ("torch", "torch.linalg", "torch.nn.functional", "torch.testing", "torch.cuda", "torch.random",
            "torch.nn.modules.module", "torch.library", "torch.nn.init", "torch.nn", "time", "builtins", "statistics",
            "random", "secrets", "math", "gc")
# Every module of these packages too (torch.nn.modules.linear's `F`, batchnorm's private `_BatchNorm`):
# what a layer's forward calls may be replaced anywhere along the way.
_PACKAGES = ("torch.nn.modules",)
# Classes whose attribute dicts are checked entry by entry, including entries added (method lookup
# would find an added `__call__` or `__eq__` before the inherited one).
_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.UntypedStorage", "torch.cuda.Event", "torch.cuda.Stream",
            "random.Random", "random.SystemRandom")
_HARNESS_MODULES = ("evo_kernels.harness.verify", "evo_kernels.harness.checks", "evo_kernels.harness.audit",
                    "evo_kernels.harness.timing", "evo_kernels.harness.integrity", "evo_kernels.harness.worker",
                    "evo_kernels.harness.wgmma_hazards",
                    "evo_kernels.harness.backends.base", "evo_kernels.harness.backends.cuda",
                    "evo_kernels.harness.backends.cpu", "evo_kernels.model.problem", "evo_kernels.model.candidate")
# Process-wide registries of module hooks: a global forward hook could rewrite the reference's output.
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks", "_global_forward_hooks_with_kwargs",
                 "_global_forward_hooks_always_called", "_global_module_registration_hooks",
                 "_global_parameter_registration_hooks", "_global_buffer_registration_hooks")
_MISSING = object()

_snapshot: dict[str, Any] = {}
_time_mod = time  # held so a candidate deleting `time` from sys.modules changes nothing here
_candidate_files: set[str] = set()
_vars = vars  # builtins are watched, but the checker itself uses the originals
_getattr = getattr
_setattr = setattr


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _resolve(path: str) -> Any:
    module, _, rest = path.partition(".")
    obj = _import(module)
    for part in rest.split(".") if rest else []:
        mod = _import(f"{obj.__name__}.{part}") if isinstance(obj, ModuleType) and not hasattr(obj, part) else None
        obj = mod if mod is not None else _getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _watchable(value: Any) -> bool:
    return callable(value) or isinstance(value, (type, ModuleType))


def _eval_frame_callback() -> Any:
    fn = getattr(torch._C._dynamo.eval_frame, "get_eval_frame_callback", None)
    return fn() if fn is not None else None


def global_state() -> dict[str, Any]:
    """Process-wide state outside any attribute: modes, hooks, tracers, thread counts."""
    mm = sys.modules["torch.nn.modules.module"]
    state = {
        "torch function modes active": torch._C._len_torch_function_stack(),
        "torch dispatch modes active": torch._C._len_torch_dispatch_stack(),
        "torch function enabled": torch._C._is_torch_function_enabled(),
        "sys.settrace": sys.gettrace(),
        "sys.setprofile": sys.getprofile(),
        "gc.callbacks": tuple(gc.callbacks),
        "dynamo eval-frame callback": _eval_frame_callback(),
        "torch.get_num_threads()": torch.get_num_threads(),
        "torch.get_num_interop_threads()": torch.get_num_interop_threads(),
    }
    for name in _GLOBAL_HOOKS:
        hooks = getattr(mm, name, None)
        if isinstance(hooks, dict):
            state[f"torch.nn.modules.module.{name}"] = (id(hooks), tuple(hooks))
    return state


def dispatcher_table() -> dict[str, str]:
    """Every operator's kernel registrations: an aten kernel overridden through torch.library (or
    the dispatcher's C API) shows as a new registration line on an operator that already existed."""
    dump = torch._C._dispatch_dump
    return {name: dump(name) for name in torch._C._dispatch_get_all_op_names()}


def _watched_modules() -> list[ModuleType]:
    mods = [_resolve(name) for name in _MODULES]
    mods += [m for name, m in list(sys.modules.items()) if isinstance(m, ModuleType)
             and any(name.startswith(p + ".") for p in _PACKAGES)]
    mods += [sys.modules[name] for name in _HARNESS_MODULES if name in sys.modules]
    return [m for m in mods if isinstance(m, ModuleType)]


def _watched_classes() -> list[type]:
    classes = [_resolve(name) for name in _CLASSES]
    classes += [c for c in _vars(torch.nn).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)]
    for mod in _watched_modules():  # the layers' private bases too (_BatchNorm, _NormBase, _ConvNd)
        if any(mod.__name__.startswith(p + ".") for p in _PACKAGES):
            classes += [c for c in _vars(mod).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)
                        and c.__module__ == mod.__name__]
    for name in _HARNESS_MODULES:
        mod = sys.modules.get(name)
        if mod is not None:
            classes += [c for c in _vars(mod).values() if isinstance(c, type) and c.__module__ == name]
    return [c for c in classes if isinstance(c, type)]


def _record_module(mod: ModuleType, everything: bool = False) -> None:
    entries = {k: v for k, v in _vars(mod).items() if (everything or _watchable(v)) and not k.startswith("__")}
    _snapshot["modules"][mod.__name__] = (mod, entries)


def _record_class(cls: type) -> None:
    _snapshot["classes"][f"{cls.__module__}.{cls.__qualname__}"] = (cls, dict(_vars(cls)))


def snapshot() -> None:
    """Record everything watched. Call before any candidate is imported."""
    _snapshot.clear()
    _snapshot["modules"] = {}
    _snapshot["classes"] = {}
    for mod in _watched_modules():
        _record_module(mod)
    for cls in _watched_classes():
        _record_class(cls)
    _snapshot["sys.modules"] = {name: sys.modules.get(name) for name in _HARNESS_MODULES + ("torch", "time")}
    _snapshot["precision"] = precision_flags()
    _snapshot["state"] = global_state()
    _snapshot["dispatcher"] = dispatcher_table()


def watch_module(mod: ModuleType) -> None:
    """Also watch a module loaded after the snapshot (a problem file) and the classes it defines:
    replacing `Model.forward` or `get_inputs` would change the reference or the inputs."""
    if not _snapshot:
        return
    _record_module(mod, everything=True)  # its size constants too: get_inputs reads them
    for cls in _vars(mod).values():
        if isinstance(cls, type) and cls.__module__ == mod.__name__:
            _record_class(cls)


def set_candidate_files(paths: list[str]) -> None:
    """The source files of the candidate now being evaluated (to find threads running its code)."""
    _candidate_files.clear()
    _candidate_files.update(paths)


def candidate_threads() -> list[str]:
    """Threads other than this one whose stack holds a frame of the candidate's code."""
    found = []
    frames = sys._current_frames()
    # This thread's frame is dropped before the loop: a local naming the frame that holds it is a
    # reference cycle, which would keep every caller's frame (and the outputs in their locals)
    # alive until the next collection: gigabytes per timed repetition.
    frames.pop(threading.get_ident(), None)
    for ident, frame in frames.items():
        f = frame
        while f is not None:
            if f.f_code.co_filename in _candidate_files:
                found.append(f"thread {ident} in {f.f_code.co_name}() line {f.f_lineno}")
                break
            f = f.f_back
    return found


def changed(dispatcher: bool = True) -> list[str]:
    """What differs from the snapshot: watched attributes, classes, modules, process-wide state and
    (unless `dispatcher` is False: it costs ~0.1 s) the dispatcher's kernel registrations."""
    if not _snapshot:
        return []
    diffs = []
    for name, (mod, entries) in _snapshot["modules"].items():
        now = _vars(mod)
        diffs += [f"{name}.{k}" for k, v in entries.items() if now.get(k, _MISSING) is not v]
    for name, (cls, entries) in _snapshot["classes"].items():
        now = _vars(cls)
        diffs += [f"{name}.{k}" for k, v in entries.items() if now.get(k, _MISSING) is not v]
        diffs += [f"{name}.{k} (added)" for k in now if k not in entries]
    for name, mod in _snapshot["sys.modules"].items():
        if mod is not None and sys.modules.get(name) is not mod:
            diffs.append(f"sys.modules[{name!r}]")
    before, now_state = _snapshot["state"], global_state()
    diffs += [k for k in before if now_state.get(k) != before[k]]
    if dispatcher:
        table = _snapshot["dispatcher"]
        dump = torch._C._dispatch_dump
        diffs += [f"dispatcher kernel of {op}" for op, text in table.items() if dump(op) != text]
    return diffs


def precision_changes() -> list[str]:
    before = _snapshot.get("precision", {})
    now = precision_flags()
    return [f"{k}: {before[k]!r} -> {now[k]!r}" for k in before if now.get(k) != before[k]]


def _restore_state(state: dict[str, Any]) -> None:
    while torch._C._len_torch_function_stack() > state["torch function modes active"]:
        torch._C._pop_torch_function_stack()
    while torch._C._len_torch_dispatch_stack() > state["torch dispatch modes active"]:
        torch._C._pop_torch_dispatch_stack()
    if sys.gettrace() is not state["sys.settrace"]:
        sys.settrace(state["sys.settrace"])
    if sys.getprofile() is not state["sys.setprofile"]:
        sys.setprofile(state["sys.setprofile"])
    if tuple(gc.callbacks) != state["gc.callbacks"]:
        gc.callbacks[:] = list(state["gc.callbacks"])
    set_eval = getattr(torch._C._dynamo.eval_frame, "set_eval_frame", None)
    if set_eval is not None and _eval_frame_callback() is not state["dynamo eval-frame callback"]:
        set_eval(state["dynamo eval-frame callback"])
    if torch.get_num_threads() != state["torch.get_num_threads()"]:
        torch.set_num_threads(state["torch.get_num_threads()"])
    mm = sys.modules["torch.nn.modules.module"]
    for name in _GLOBAL_HOOKS:
        key = f"torch.nn.modules.module.{name}"
        hooks = getattr(mm, name, None)
        if key in state and isinstance(hooks, dict):
            for k in [k for k in hooks if k not in state[key][1]]:
                del hooks[k]


def restore() -> None:
    """Put back every watched attribute, module, precision flag and what process-wide state can be."""
    if not _snapshot:
        return
    for _, (mod, entries) in _snapshot["modules"].items():
        for k, v in entries.items():
            if _vars(mod).get(k, _MISSING) is not v:
                _setattr(mod, k, v)
    for _, (cls, entries) in _snapshot["classes"].items():
        now = _vars(cls)
        for k in [k for k in now if k not in entries]:
            try:
                type.__delattr__(cls, k)
            except (AttributeError, TypeError):
                pass
        for k, v in entries.items():
            if now.get(k, _MISSING) is not v:
                try:
                    type.__setattr__(cls, k, v)
                except (AttributeError, TypeError):
                    pass
    for name, mod in _snapshot["sys.modules"].items():
        if mod is not None:
            sys.modules[name] = mod
    _restore_state(_snapshot["state"])
    _restore_precision(_snapshot["precision"])


@contextlib.contextmanager
def snapshot_precision() -> Iterator[None]:
    """Run a block (the reference) under the precision switches as snapshotted, then put back what
    the candidate set: a run that allows reduced precision lets the candidate use it, never the
    reference, whose full-precision result is the answer."""
    saved = precision_flags()
    if not _snapshot or saved == _snapshot["precision"]:
        yield
        return
    _restore_precision(_snapshot["precision"])
    try:
        yield
    finally:
        _restore_precision(saved)


def expect_precision() -> None:
    """The precision switches as they are now (the run's) are what candidates may not change."""
    if _snapshot:
        _snapshot["precision"] = precision_flags()


def set_num_threads(n: int) -> None:
    """The harness's own thread-count setting (the run config's), recorded as the expected state."""
    torch.set_num_threads(n)
    if _snapshot:
        _snapshot["state"]["torch.get_num_threads()"] = torch.get_num_threads()


def reseed() -> None:
    """Replace torch's seed with one nobody knows: `torch.initial_seed()` would otherwise tell a
    candidate the seed its inputs were drawn with, and from it the inputs still to come."""
    torch.manual_seed(random.SystemRandom().getrandbits(63))
