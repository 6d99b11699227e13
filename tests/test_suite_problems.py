"""The project's own problem suite (experiments/problems/level*/): every file is a valid KernelBench problem.

Each problem is imported and run on the meta device, which checks constructors, input shapes and the
forward pass without allocating memory or doing any arithmetic.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "problems"
PROBLEM_FILES = sorted(PROBLEMS_DIR.glob("level*/*.py"))
MINIMUM = {"level1": 16, "level2": 16, "level3": 8}
MINIMUM_TOTAL = 40


def _import(path: Path):
    name = f"suite_problem_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _leaves(x):
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


def test_suite_size():
    counts = {level: 0 for level in MINIMUM}
    for path in PROBLEM_FILES:
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    for level, minimum in MINIMUM.items():
        assert counts[level] >= minimum, f"{level} has {counts[level]} problems, expected at least {minimum}"
    assert len(PROBLEM_FILES) >= MINIMUM_TOTAL, f"{len(PROBLEM_FILES)} problems, expected at least {MINIMUM_TOTAL}"


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in PROBLEM_FILES])
def test_problem_runs_on_meta(path: Path):
    source = path.read_text()
    assert source.lstrip().startswith('"""'), f"{path.name}: starts without a docstring saying what it computes"
    module = _import(path)
    for name in ("Model", "get_inputs", "get_init_inputs"):
        assert hasattr(module, name), f"{path.name}: missing {name}"
    assert isinstance(module.Model, type) and issubclass(module.Model, torch.nn.Module)

    with torch.device("meta"):
        init = module.get_init_inputs()
        assert isinstance(init, (list, tuple)), "get_init_inputs() must return a list"
        model = module.Model(*init)
        inputs = module.get_inputs()
        assert isinstance(inputs, (list, tuple)), "get_inputs() must return a list"
        assert any(isinstance(x, torch.Tensor) for x in inputs), "get_inputs() returned no tensor"
        with torch.no_grad():
            out = model(*inputs)

    for x in inputs:
        if isinstance(x, torch.Tensor):
            assert x.is_meta, "an input was created off the current device (get_inputs must not pass device=)"
            assert x.dtype in (torch.float32, torch.int64), f"unexpected input dtype {x.dtype}"
    for p in list(model.parameters()) + list(model.buffers()):
        assert p.is_meta, "a parameter or buffer was created off the current device"
    outs = _leaves(out)
    assert outs, "forward returned nothing"
    for o in outs:
        assert isinstance(o, torch.Tensor), f"output is a {type(o).__name__}, expected tensors"
        assert o.numel() > 0 and all(n > 0 for n in o.shape), f"output has a zero-size dimension: {tuple(o.shape)}"
        assert o.dtype in (torch.float32, torch.int64), f"unexpected output dtype {o.dtype}"
