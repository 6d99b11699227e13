"""The drafts' `_launch`: a launch's compiled kernel kept and launched directly on the next call
whose arguments Triton would compile the same (on the CPU, a stand-in for the compiled kernel; the
GPU test runs real drafts through it)."""
from __future__ import annotations

import torch
from triton.compiler import CompiledKernel

from evo_kernels.model.problem import import_file
from evo_kernels.proposers.templates.helpers import HELPERS

MODULE = '''
import torch, triton, triton.language as tl
''' + HELPERS + '''

@triton.jit
def _kernel(x_ptr, y_ptr, n, scale, FLAG: tl.constexpr, BLOCK: tl.constexpr = 64, EXTRA: tl.constexpr = 7):
    pass
'''


class _Compiled(CompiledKernel):
    """A compiled kernel's launch interface (CompiledKernel[grid](*every argument)), recorded."""

    def __init__(self, calls: list):  # noqa: D107 - no binary to load
        self.calls = calls
        self.module = None  # (nothing for CompiledKernel.__del__ to unload)

    def __getitem__(self, grid):
        assert len(grid) == 3  # as the real launcher reads it

        def runner(*args):
            self.calls.append(("direct", grid, args))
        return runner


class _Kernel:
    """A JIT function's face as _launch sees it: its parameters, and kernel[grid](...) that compiles
    (here: returns the stand-in) or, under the interpreter, returns None."""

    def __init__(self, jit, interpreted: bool = False):
        self.arg_names, self.params = jit.arg_names, jit.params
        self.calls: list = []
        self.interpreted = interpreted

    def __getitem__(self, grid):
        def run(*args, **kwargs):
            self.calls.append(("triton", grid, args, kwargs))
            return None if self.interpreted else _Compiled(self.calls)
        return run


def _helpers(tmp_path):
    path = tmp_path / "launch_helpers.py"
    path.write_text(MODULE)
    return import_file(path, "launch_helpers")


def test_a_kept_launch_takes_every_argument_in_signature_order(tmp_path):
    m = _helpers(tmp_path)
    k = _Kernel(m._kernel)
    x, y = torch.zeros(64), torch.zeros(64)
    for _ in range(3):
        m._launch(k, (4,), x, y, 64, 0.5, num_warps=4, FLAG=True)
    # the first through Triton; then the compiled kernel, with the constexprs and the defaults in place
    assert [c[0] for c in k.calls] == ["triton", "direct", "direct"]
    assert k.calls[1] == ("direct", (4, 1, 1), (x, y, 64, 0.5, True, 64, 7))
    # keywords in another order are another call site: Triton once more, then the same order of arguments
    m._launch(k, (2, 3), x, y, 64, 0.5, EXTRA=9, FLAG=False, BLOCK=32)
    m._launch(k, (2, 3), x, y, 64, 0.5, EXTRA=9, FLAG=False, BLOCK=32)
    assert k.calls[-2][0] == "triton" and k.calls[-1] == ("direct", (2, 3, 1), (x, y, 64, 0.5, False, 32, 9))


def test_what_triton_would_compile_anew_goes_through_triton(tmp_path):
    """A tensor of another alignment or dtype, another value of any other argument (True is not 1):
    each takes Triton's path, which compiles it if it must; the kept launch never gets them."""
    m = _helpers(tmp_path)
    k = _Kernel(m._kernel)
    x, y = torch.zeros(64), torch.zeros(64)
    m._launch(k, (1,), x, y, 64, 0.5, FLAG=1)
    for args, kw in [((x[1:], y, 64, 0.5), {"FLAG": 1}),  # 4 bytes into the storage: not 16-byte aligned
                     ((x.double(), y, 64, 0.5), {"FLAG": 1}),
                     ((x, y, 65, 0.5), {"FLAG": 1}),
                     ((x, y, 64, 0.5), {"FLAG": True}),
                     ((x, y, 64, 0.5), {"FLAG": 1, "num_warps": 8})]:
        before = len(k.calls)
        m._launch(k, (1,), *args, **kw)
        assert k.calls[before][0] == "triton", (args, kw)
    m._launch(k, (1,), x, y, 64, 0.5, FLAG=1)
    assert k.calls[-1][0] == "direct"


def test_under_the_interpreter_every_launch_is_tritons(tmp_path):
    m = _helpers(tmp_path)
    k = _Kernel(m._kernel, interpreted=True)
    x = torch.zeros(8)
    for _ in range(3):
        m._launch(k, (1,), x, x, 8, 1.0, FLAG=True)
    assert [c[0] for c in k.calls] == ["triton"] * 3 and not m._LAUNCHES
