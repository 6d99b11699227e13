"""Problem: load a KernelBench-format file and make models and inputs for a seed and a device.

A problem file defines `class Model(nn.Module)`, `get_inputs()` and `get_init_inputs()`, usually with
module-level size constants. Everything wrong with a file is a `ProblemError` naming the file.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn


class ProblemError(ValueError):
    """A problem file is missing, broken, or returns the wrong kinds of things."""


def import_file(path: Path, prefix: str) -> ModuleType:
    """Import a Python file as a fresh module (a real file, so inspect/Triton can read its source)."""
    digest = hashlib.sha256(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:12]
    name = f"{prefix}_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and torch.compile look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)}:{str(value.dtype).replace('torch.', '')}"
    return type(value).__name__


@dataclass
class Problem:
    path: Path
    module: ModuleType
    source: str
    constants: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def level(self) -> str:
        parent = self.path.parent.name
        return parent if parent.startswith("level") else ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    @property
    def Model(self) -> type[nn.Module]:
        return self.module.Model

    def init_inputs(self) -> list[Any]:
        return list(self.module.get_init_inputs())

    def make_model(self, cls: type[nn.Module], seed: int, device: str | torch.device) -> nn.Module:
        """Build `cls(*get_init_inputs())` under `seed`, with its parameters on `device`."""
        torch.manual_seed(seed)
        with torch.device(device):
            init = self.init_inputs()
            model = cls(*init)
        return model.to(device)

    def make_inputs(self, seed: int, device: str | torch.device) -> list[Any]:
        """Call `get_inputs()` under `seed`, creating tensors directly on `device`."""
        torch.manual_seed(seed)
        with torch.device(device):
            inputs = list(self.module.get_inputs())
        return [x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs]


def _check_kinds(path: Path, module: ModuleType) -> None:
    """Call the problem's functions on the meta device: cheap, and catches wrong return kinds."""
    for fn in ("get_inputs", "get_init_inputs"):
        try:
            with torch.device("meta"):
                value = getattr(module, fn)()
        except Exception as e:  # noqa: BLE001 - any failure of user code is a problem error
            raise ProblemError(f"{path}: {fn}() raised {type(e).__name__}: {e}") from None
        if not isinstance(value, (list, tuple)):
            raise ProblemError(f"{path}: {fn}() must return a list, got {_describe(value)}")
        allowed = (torch.Tensor, int, float, bool) if fn == "get_inputs" else (
            torch.Tensor, int, float, bool, str, tuple, list, type(None))
        for i, item in enumerate(value):
            if not isinstance(item, allowed):
                raise ProblemError(
                    f"{path}: {fn}()[{i}] is a {_describe(item)}; expected "
                    + ("tensors or numbers" if fn == "get_inputs" else "plain constructor arguments"))
        if fn == "get_inputs" and not any(isinstance(x, torch.Tensor) for x in value):
            raise ProblemError(f"{path}: get_inputs() returned no tensor")


def where_in(path: Path, tb: Any) -> str:
    """" (line N)" for the innermost frame of `tb` in the file at `path`, or ""."""
    frames = [f for f in traceback.extract_tb(tb) if Path(f.filename).resolve() == path.resolve()]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


def check_reference(problem: Problem) -> None:
    """Build the reference and run it once on the meta device (shapes only: no memory, no time): a
    reference that raises is a ProblemError naming the exception and the line. Operators without a
    meta kernel are not the problem's fault and pass."""
    try:
        model = problem.make_model(problem.Model, 0, "meta")
        inputs = problem.make_inputs(0, "meta")
        with torch.no_grad():
            model(*inputs)
    except NotImplementedError:
        return  # an operator the meta device cannot run: it runs on the real one
    except Exception as e:  # noqa: BLE001 - any failure of the problem's own code
        text = str(e).split("\n")[0][:300]
        if "meta" in text.lower() or "fake" in text.lower():
            return  # a meta-device limitation, not the problem's
        raise ProblemError(f"{problem.path}: the reference Model raised {type(e).__name__}: {text}"
                           f"{where_in(problem.path, e.__traceback__)}") from None


def load_problem(path: str | Path) -> Problem:
    """Load and check a KernelBench-format problem file."""
    p = Path(path)
    if p.is_dir():
        raise ProblemError(f"{p}: is a directory, not a problem file; `evo-kernels suite {p}` searches every "
                           "problem in it")
    if not p.is_file():
        raise ProblemError(f"{p}: problem file not found")
    if p.suffix != ".py":
        raise ProblemError(f"{p}: a problem file must be a .py file")
    source = p.read_text()
    try:
        module = import_file(p, "evo_problem")
    except SyntaxError as e:
        raise ProblemError(f"{p}: syntax error at line {e.lineno}: {e.msg}") from None
    except BaseException as e:  # noqa: BLE001 - SystemExit included: a file must not end the harness
        tb = traceback.extract_tb(e.__traceback__)
        line = next((f.lineno for f in reversed(tb) if f.filename == str(p)), None)
        at = f" (line {line})" if line else ""
        raise ProblemError(f"{p}: failed to import{at}: {type(e).__name__}: {e}") from None
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if not hasattr(module, n)]
    if missing:
        raise ProblemError(f"{p}: missing {', '.join(missing)} (a KernelBench problem defines "
                           "class Model(nn.Module), get_inputs() and get_init_inputs())")
    if not (isinstance(module.Model, type) and issubclass(module.Model, nn.Module)):
        raise ProblemError(f"{p}: Model must be a subclass of torch.nn.Module, got {_describe(module.Model)}")
    for fn in ("get_inputs", "get_init_inputs"):
        if not callable(getattr(module, fn)):
            raise ProblemError(f"{p}: {fn} must be a function")
    _check_kinds(p, module)
    constants = {k: v for k, v in vars(module).items()
                 if not k.startswith("_") and isinstance(v, (int, float, bool, str)) and not isinstance(v, type)}
    return Problem(path=p, module=module, source=source, constants=constants)
