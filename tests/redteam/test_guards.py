"""The red-team checks in-process, one rule at a time (the full pipeline is in test_redteam.py): the
static policy's new rules and their false positives, the run-time integrity checks and what
restore() puts back, and the verify-side checks on outputs and inputs."""
import random
import threading

import pytest
import torch
from torch.overrides import TorchFunctionMode

from evo_kernels.harness import integrity
from evo_kernels.config import VerifyConfig
from evo_kernels.harness.policy import check_source
from evo_kernels.harness.checks import (Reject, check_follows_inputs, check_inputs, check_plain, check_tensor_kind,
                                       compare_tensor, name_constant)

CFG = VerifyConfig()


def rules(src: str) -> list[str]:
    return [v.rule for v in check_source(src)]


@pytest.mark.parametrize("src,rule", [
    ("import typing\nx = typing.sys.modules", "introspection"),
    ("import torch\ngetattr(torch, 'al' + 'lclose')", "introspection"),
    ("import functools\nf = functools.reduce(getattr, ['a'])", "introspection"),
    ("import torch\nt = torch\nt.allclose = None", "patching"),
    ("import torch\nlib = torch.library.Library('aten', 'IMPL')", "patching"),
    ("import torch\ntorch.library.impl('aten::add.Tensor', 'CPU')", "patching"),
    ("import torch\nlib = torch.library.Library(ns, 'IMPL')", "patching"),
    ("from torch.nn.modules.module import register_module_forward_hook", "patching"),
    ("import torch\ntorch.nn.modules.module._global_forward_hooks[0] = print", "patching"),
    ("import torch\ntorch.set_num_threads(64)", "threads"),
    ("import torch\ntorch.backends.mkldnn.matmul.fp32_precision = 'bf16'", "precision"),
    ("import torch\ntorch.set_autocast_enabled('cpu', True)", "precision"),
    ("import operator\nf = operator.attrgetter('sys')", "introspection"),
    ("x = len.__self__", "introspection"),
])
def test_policy_refuses(src, rule):
    assert rule in rules(src), check_source(src)


@pytest.mark.parametrize("src", [
    # Triton's tl.load / tl.store are memory accesses, not file access.
    "import triton\nimport triton.language as tl\n@triton.jit\ndef k(p):\n    tl.store(p, tl.load(p) + 1)",
    "from triton import language as tl\nx = tl.load",
    # getattr with a computed name on self (ModuleList-style code), a library of one's own.
    "class M:\n    def f(self, i):\n        return getattr(self, f'w{i}')",
    "import torch\nlib = torch.library.Library('mylib', 'DEF')\nlib.define('f(Tensor x) -> Tensor')",
    "import torch\nwith torch.autocast('cuda', dtype=torch.bfloat16):\n    pass",
])
def test_policy_allows(src):
    assert check_source(src) == []


@pytest.fixture
def snapshot():
    # As the worker does before its snapshot: torch._dynamo wraps torch functions when imported.
    import torch._dynamo  # noqa: F401
    from torch._dynamo.mutation_guard import install_generation_tagging_init
    install_generation_tagging_init()
    integrity.snapshot()
    yield
    integrity.restore()


def test_integrity_sees_and_restores_patches_modes_hooks_and_precision(snapshot):
    original = torch.allclose
    for mod in (torch,):
        mod.allclose = lambda *a, **k: True
    mode = TorchFunctionMode()
    mode.__enter__()
    torch.nn.modules.module._global_forward_hooks[10**6] = lambda *a: None
    torch.set_autocast_enabled("cpu", True)
    changed = integrity.changed(dispatcher=False)
    assert "torch.allclose" in changed and "torch function modes active" in changed
    assert "torch.nn.modules.module._global_forward_hooks" in changed
    assert any(c.startswith("autocast.cpu") for c in integrity.precision_changes())
    integrity.restore()
    assert torch.allclose is original and torch._C._len_torch_function_stack() == 0
    assert 10**6 not in torch.nn.modules.module._global_forward_hooks and not torch.is_autocast_enabled("cpu")
    assert integrity.changed() == [] and integrity.precision_changes() == []


def test_integrity_finds_threads_running_candidate_code(snapshot, tmp_path):
    path = tmp_path / "cand.py"
    path.write_text("def wait(e):\n    e.wait(5)\n")
    code = compile(path.read_text(), str(path), "exec")
    scope: dict = {}
    exec(code, scope)
    done = threading.Event()
    t = threading.Thread(target=scope["wait"], args=(done,))
    integrity.set_candidate_files([str(path)])
    t.start()
    try:
        assert any("wait()" in s for s in integrity.candidate_threads())
    finally:
        done.set()
        t.join()
        integrity.set_candidate_files([])
    assert integrity.candidate_threads() == []


def test_outputs_must_be_plain():
    ref = torch.randn(4, 4)
    shadowed = ref.clone()
    shadowed.numel = lambda: 0
    for bad in (shadowed, ref.clone().as_subclass(torch.nn.Parameter), type("L", (list,), {})([ref.clone()])):
        with pytest.raises(Reject) as err:
            check_plain(bad)
            check_tensor_kind(bad, ref, "output")
        assert err.value.reason.startswith("not_a_tensor"), err.value.reason
    check_plain((ref, [1, 2.0, None]))


def test_constant_output_is_named_and_inputs_must_not_carry_attributes():
    ref = torch.softmax(torch.rand(4, 32768), dim=-1)
    with pytest.raises(Reject, match="^constant_output: output: every element is 0"):
        try:
            compare_tensor(ref, torch.zeros_like(ref), 1e-4, 1e-4, "output")
        except Reject as e:
            raise name_constant(e, ref, torch.zeros_like(ref), "output") from None
    x = torch.randn(3)
    y = x.clone()
    y.copy_ = lambda *a: y
    with pytest.raises(Reject, match="^patched_harness: t: ModelNew set attributes"):
        check_inputs([x], [y], "t")
    with pytest.raises(Reject, match="^input_mutated"):
        check_inputs([x], [x + 1], "t")


def test_follows_inputs_tells_a_sliver_from_an_answer():
    r0, r1 = 0.5 + 2.5e-5 * torch.randn(4096, dtype=torch.float64), 0.5 + 2.5e-5 * torch.randn(4096, dtype=torch.float64)
    honest = [r0 + 1e-9 * torch.randn(4096, dtype=torch.float64), r1 + 1e-9 * torch.randn(4096, dtype=torch.float64)]
    check_follows_inputs([r0, r1], honest, CFG, None, "trial 1")
    sliver = [0.5 + 1e-7 * (r0 - 0.5), 0.5 + 1e-7 * (r1 - 0.5)]
    with pytest.raises(Reject, match="^constant_output: trial 1: ModelNew's outputs do not follow"):
        check_follows_inputs([r0, r1], sliver, CFG, None, "trial 1")


def test_reseed_hides_the_input_seed():
    torch.manual_seed(1234)
    integrity.reseed()
    assert torch.initial_seed() != 1234 and torch.initial_seed() != random.Random(1234).getrandbits(63)
