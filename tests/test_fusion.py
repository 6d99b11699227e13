"""The Triton templates' numerics on the CPU, in Triton's interpreter (TRITON_INTERPRET=1).

Each test writes a tiny KernelBench-format problem, builds the fusion candidate for it
(proposers/fusion), checks it against the static policy, and compares it with the reference:
outputs within the project's fp32 tolerance, and the same buffers after the call (BatchNorm's
running statistics). Shapes are tiny and uneven (edges of every tile are exercised).
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import import_file, load_problem
from evo_kernels.proposers import fusion
from evo_kernels.proposers.templates.helpers import HELPERS
from evo_kernels.proposers.rules import bake
from evo_kernels.model.tunables import parse_tunable

from interpreted import launches

HEADER = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: TRITON_INTERPRET must be set before Triton is first imported (its
# standard library, tl.sum and kin, is built at import), and other tests may import it without.
NUMERICS = """
import sys, torch
from evo_kernels.model.problem import import_file, load_problem
problem = load_problem(sys.argv[1])
for i, path in enumerate(sys.argv[2:]):
    module = import_file(__import__("pathlib").Path(path), f"tmpl_test_{i}")
    ref = problem.make_model(problem.Model, 0, "cpu")
    new = problem.make_model(module.ModelNew, 1, "cpu")
    new.load_state_dict(ref.state_dict())
    for seed in (1, 2):
        inputs = problem.make_inputs(seed, "cpu")
        with torch.no_grad():
            want = ref(*[x.clone() for x in inputs])
            got = new(*[x.clone() for x in inputs])
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for w, g in zip(want, got):
            assert g.shape == w.shape and g.dtype == w.dtype, (path, g.shape, w.shape)
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4, msg=lambda m: path + ": " + m)
    for key, value in ref.state_dict().items():  # BatchNorm's running statistics
        torch.testing.assert_close(new.state_dict()[key].float(), value.float(), atol=1e-5, rtol=1e-4)
    ref.eval(), new.eval()  # after .eval(): the running statistics, no updates (BatchNorm)
    inputs = problem.make_inputs(3, "cpu")
    with torch.no_grad():
        want, got = ref(*[x.clone() for x in inputs]), new(*[x.clone() for x in inputs])
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4, msg=lambda m: path + " (eval): " + m)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(new.state_dict()[key].float(), value.float(), atol=1e-5, rtol=1e-4)
print("numerics ok")
"""


def _problem(tmp_path, body: str, name: str = "prob"):
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return load_problem(path)


def _build(tmp_path, problem, options, params=None, expect_kernels=1):
    """The candidate for `options` (policy-checked), written with `params` baked in: its path."""
    built = fusion.build(problem, options)
    assert built is not None, "the options should change this problem"
    source, spaces = built
    assert check_source(source) == [], [str(v) for v in check_source(source)]
    parse_tunable(source)  # a valid declaration (a named space or a literal)
    assert source.count("@triton.jit") - HELPERS.count("@triton.jit") >= expect_kernels
    run = bake(source, params) if params else source
    path = tmp_path / f"cand_{len(list(tmp_path.glob('cand_*.py')))}.py"
    path.write_text(run)
    return path, source, spaces


def _numerics(problem, *paths):
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", NUMERICS, str(problem.path), *map(str, paths)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "numerics ok" in out.stdout, out.stderr[-3000:]


def _check(tmp_path, problem, options, params=None, expect_kernels=1):
    path, source, spaces = _build(tmp_path, problem, options, params, expect_kernels)
    _numerics(problem, path)
    return source, spaces


LINEAR_CHAIN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 72)
        self.bias = nn.Parameter(torch.randn(72) * 0.1)
    def forward(self, x):
        y = self.linear(x)
        y = torch.clamp(F.silu(y * 0.5 + self.bias), min=-0.2, max=0.4)
        return F.gelu(y) - torch.tanh(y) + torch.sigmoid(y)
def get_inputs():
    return [torch.randn(3, 50, 40)]
def get_init_inputs():
    return []
"""


def test_gemm_with_a_fused_epilogue(tmp_path):
    prob = _problem(tmp_path, LINEAR_CHAIN)
    source, spaces = _check(tmp_path, prob, ['triton_gemm'], params={"BLOCK_M": 32, "BLOCK_N": 32,
                                                                                 "BLOCK_K": 16})
    assert spaces == ["gemm"] and "TUNABLE = 'gemm'" in source
    _check(tmp_path, prob, ['triton_gemm'], params={"PRECISION": "ieee", "BLOCK_M": 64,
                                                              "BLOCK_N": 32, "BLOCK_K": 32})


def test_library_gemm_and_one_elementwise_kernel(tmp_path):
    prob = _problem(tmp_path, LINEAR_CHAIN)
    source, spaces = _check(tmp_path, prob, ['fuse_chains'])
    assert spaces == ["elementwise"] and "torch.addmm" in source


def test_matmul_layouts_batches_and_split_k(tmp_path):
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def forward(self, a, b, c, d, e, f):
            x = torch.matmul(a.transpose(-2, -1), b)   # A read M-major, B N-major: copied K-major
            y = torch.matmul(c, d.transpose(-2, -1))   # 4-D: two batch dims
            z = torch.bmm(e.transpose(1, 2), f)        # 3-D, both copied
            return x, y, z
    def get_inputs():
        return [torch.randn(4096, 20), torch.randn(4096, 24), torch.randn(2, 3, 33, 17), torch.randn(2, 3, 40, 17),
                torch.randn(3, 70, 65), torch.randn(3, 70, 66)]
    def get_init_inputs():
        return []
    """)
    source, _ = _check(tmp_path, prob, ['triton_gemm'], expect_kernels=2)
    assert "_split_k(" in source
    assert source.count("def _kmajor_copy(") == 1  # three GEMMs, one operand copy kernel
    _check(tmp_path, prob, ['triton_gemm'], params={"GEMM_KMAJOR": False, "BLOCK_K": 32})
    # Several tiles a batch (3 x 3 of 16 x 16 over 6 batches): the batch and the tile come from one axis
    _check(tmp_path, prob, ['triton_gemm'], params={"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16})


def test_a_gemm_batch_past_the_grids_second_axis_launches(tmp_path):
    """CUDA caps a grid's second and third axes at 65535: the GEMM folds its batch into the first
    (a batch of 70000 failed its launch before and was rejected). The launch's grid, recorded."""
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def forward(self, a, b):
            return torch.bmm(a, b)
    def get_inputs():
        return [torch.randn(70000, 2, 3), torch.randn(70000, 3, 4)]
    def get_init_inputs():
        return []
    """)
    source, _ = fusion.build(prob, ["triton_gemm"])
    path = tmp_path / "bmm.py"
    path.write_text(source)
    module = import_file(path, "bmm")
    grids = []

    class Recorder:
        def __getitem__(self, grid):
            grids.append(grid)
            return lambda *args, **kwargs: None
    module._gemm_0, module.GEMM_KMAJOR = Recorder(), False  # (no operand copy: only the GEMM's launch)
    module._f0(torch.randn(70000, 2, 3), torch.randn(70000, 3, 4))
    assert grids == [(70000, 1)]  # one tile a batch, no K split


KMAJOR_SCRIPT = """
import torch, triton, triton.language as tl
from evo_kernels.proposers.templates.helpers import HELPERS
from evo_kernels.proposers.templates.gemm import KMAJOR_COPY
exec(HELPERS + KMAJOR_COPY.substitute(name="_copy"))  # (a draft's helpers first, as in a draft)
base = torch.randn(3, 5, 70, 130)
views = [base[0, 0].t(), base.transpose(-1, -2), base[:, 1].transpose(1, 2), base[..., ::2].permute(3, 1, 0, 2),
         base[1:, :, 3:, 1:].permute(2, 0, 3, 1), base[0, 0, :0].t(), base[None].transpose(-1, -2)]
for v in views:
    got = _copy_launch(v, block_r=32, block_c=64)
    assert got.is_contiguous() and got.shape == v.shape and torch.equal(got, v), v.shape
print("copied", len(views))
"""


def test_kmajor_copy_any_layout():
    """The GEMM's operand copy: a contiguous, equal tensor from transposed, sliced and permuted views
    (tiles cut at the edges, 2 to 4 dims, empty; 5 dims through torch)."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", KMAJOR_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "copied 7" in proc.stdout, proc.stderr[-3000:]


def test_gemm_then_row_kernel_and_row_sum_epilogue(tmp_path):
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(24, 40)
            self.ln = nn.LayerNorm(40)
            self.other = nn.Linear(24, 40)
        def forward(self, x):
            a = F.gelu(self.ln(self.linear(x) + 1.0))
            b = torch.sigmoid(self.other(x)).sum(dim=1, keepdim=True)
            return a, b
    def get_inputs():
        return [torch.randn(37, 24)]
    def get_init_inputs():
        return []
    """)
    source, _ = _check(tmp_path, prob, ['triton_gemm'], params={"BLOCK_M": 16, "BLOCK_N": 32,
                                                                        "BLOCK_K": 16}, expect_kernels=3)
    assert "tl.atomic_add" in source


def test_row_templates(tmp_path):
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.rand(300) + 0.5)
        def forward(self, x):
            rms = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * self.weight
            sm = torch.softmax(x, dim=-1)
            lsm = torch.log_softmax(x * 2.0, dim=1)
            l2 = x / torch.norm(x, p=2, dim=1, keepdim=True)
            centred = F.gelu(x - x.mean(dim=1, keepdim=True))
            return rms, sm, lsm, l2, centred, x.mean(dim=-1)
    def get_inputs():
        return [torch.randn(21, 300)]
    def get_init_inputs():
        return []
    """)
    source, spaces = _check(tmp_path, prob, ['fuse_chains'], expect_kernels=6)
    assert spaces == ["rowwise"]
    _check(tmp_path, prob, ['fuse_chains'], params={"ROW_TILE": 16384, "ROW_PER_THREAD": 4})


CONV_CHAIN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 12, 3, stride=STRIDE, padding=1)
        self.bias = nn.Parameter(torch.randn(12, 1, 1) * 0.1)
        self.pool = nn.MaxPool2d(2)
    def forward(self, x):
        y = torch.tanh(self.conv(x)) * 2.0 + self.bias
        return self.pool(F.hardswish(y - 0.25))
def get_inputs():
    return [torch.randn(2, 16, 11, 9)]
def get_init_inputs():
    return []
"""


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_with_epilogue_and_pool(tmp_path, stride):
    prob = _problem(tmp_path, CONV_CHAIN.replace("STRIDE", str(stride)))
    source, spaces = _check(tmp_path, prob, ['triton_conv'], expect_kernels=2,
                            params={"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16})
    # the spaces the launches read: the pool kernel's, not the elementwise template's
    assert set(spaces) == {"conv", "pool"} and "POOL_BLOCK" in source.split("class ModelNew")[0].split("def _f0")[1]
    _check(tmp_path, prob, ['fuse_chains'])  # cuDNN conv + one pool kernel


def test_conv1d_and_batchnorm_statistics(tmp_path):
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(16, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.c1 = nn.Conv1d(16, 8, 5, padding=2)
            self.linear = nn.Linear(16, 24)
            self.bn1 = nn.BatchNorm1d(24)
        def forward(self, x, s, v):
            a = F.relu6(self.bn(self.conv(x)))
            return a, torch.relu(self.c1(s)), torch.relu(self.bn1(self.linear(v)))
    def get_inputs():
        return [torch.randn(3, 16, 7, 6) + 0.5, torch.randn(2, 16, 19), torch.randn(45, 16) * 3.0 + 1.0]
    def get_init_inputs():
        return []
    """)
    small = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "BLOCK_M": 16, "BLOCK_N": 16,
             "BLOCK_K": 16}
    _check(tmp_path, prob, ['triton_conv', 'triton_gemm'], params=small, expect_kernels=4)
    _check(tmp_path, prob, ['fuse_chains'], expect_kernels=2)  # stats kernel + apply


def test_a_volumetric_batchnorm_in_training_is_lowered(tmp_path):
    # BatchNorm3d after a transposed 3D conv (not a template anchor: a chain on its output) and on an
    # input: cuDNN's conv, the channel statistics kernel over (N, C, D, H, W), and one pass applying
    # the scale and shift with the activation; running statistics updated in training, used after
    # .eval(). (After a Conv3d it stays a module: tests/test_conv3d_template.py.)
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose3d(6, 5, 3, stride=2, padding=1, output_padding=1)
            self.bn = nn.BatchNorm3d(5)
            self.bn2 = nn.BatchNorm3d(7, momentum=0.3)
        def forward(self, x, v):
            return F.gelu(self.bn(self.up(x))), torch.relu(self.bn2(v))
    def get_inputs():
        return [torch.randn(2, 6, 3, 4, 5) * 2.0 + 1.0, torch.randn(2, 7, 4, 5, 3) - 0.5]
    def get_init_inputs():
        return []
    """)
    source, _ = _check(tmp_path, prob, ['fuse_chains'], expect_kernels=2)
    assert source.count("_launch(_stats_") == 2, source  # a statistics pass for each BatchNorm
    assert "F.batch_norm" not in source and "functional.batch_norm" not in source


POINTWISE_CHAIN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pw = nn.Conv2d(20, 24, 1)
        self.bn = nn.BatchNorm2d(24)
        self.strided = nn.Conv2d(20, 24, 1, stride=2, bias=False)
        self.c1 = nn.Conv1d(20, 18, 1)
        self.scale = nn.Parameter(torch.rand(24, 1, 1) + 0.5)
    def forward(self, x, s):
        a = F.relu6(self.bn(self.pw(x)))
        return a, torch.sigmoid(self.strided(x)) * self.scale, F.gelu(self.c1(s))
def get_inputs():
    return [torch.randn(3, 20, 7, 9) + 0.5, torch.randn(2, 20, 37)]
def get_init_inputs():
    return []
"""


def test_pointwise_conv_as_a_gemm_per_image(tmp_path):
    # 1x1 convs at stride 1 take the per-image GEMM (tiles cut at every edge: 63 pixels in tiles of
    # 32, 20 input channels in blocks of 16, 24 and 18 output channels in blocks of 16), a BatchNorm's
    # statistics chunked per image; the strided 1x1 conv keeps the implicit GEMM. (The stride-1 ones
    # also have the TMA kernel, tests/test_conv_tma.py's; off here.)
    prob = _problem(tmp_path, POINTWISE_CHAIN)
    source, _ = _check(tmp_path, prob, ['triton_conv'], expect_kernels=3, params={
        "CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_TMA": False})
    assert source.count("x.stride(0), x.stride(1), BLOCK_M=bm") == 2
    assert source.count("KH=1, KW=1") == 1 and source.count("if CONV_TMA and _tma_ok(x, wk) and (oh * ow) % 4 == 0:") == 2


PROLOGUE_CHAIN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn1, self.pw = nn.Conv2d(16, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.Conv2d(24, 20, 1)
        self.dw, self.bn2 = nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False), nn.BatchNorm2d(24)
        self.c3, self.c6 = nn.Conv2d(24, 18, 1), nn.Conv2d(24, 18, 3, padding=1)
        self.scale = nn.Parameter(torch.rand(24, 1, 1) + 0.5)
        self.c4, self.bn4, self.c5 = nn.Conv2d(16, 24, 1), nn.BatchNorm2d(24), nn.Conv2d(24, 16, 1)
    def forward(self, x, x2):
        a = self.pw(F.relu6(self.bn1(self.c1(x))))
        b = self.c3(torch.sigmoid(self.bn2(self.dw(x2))) / self.scale)
        y = torch.relu(self.bn4(self.c4(x)))
        z = self.c6(torch.relu(self.bn2(self.dw(x2 * 2.0))))
        return a, b, self.c5(y), y, z
def get_inputs():
    return [torch.randn(2, 16, 7, 9), torch.randn(2, 24, 6, 6) + 0.3]
def get_init_inputs():
    return []
"""


def test_a_producers_elementwise_tail_runs_in_the_next_convs_loads(tmp_path):
    # conv -> BatchNorm -> ReLU6 -> 1x1 conv, and depthwise -> BatchNorm -> sigmoid / scale -> 1x1
    # conv: the producers return their raw output and the tail's per-channel operands, the consumers
    # apply the tail as they load (channels past the last in a K block stay zero: there the masked
    # scale is 0 and the tail 0 / 0). A producer whose output is read twice, and one before a 3x3 conv
    # (which would recompute the tail once per tap), keep their chain kernels. Train and eval. The
    # first 1x1 conv's image rows (63 pixels) are not 16-byte rows: the pointer kernel; the second's
    # (36) are: the TMA kernel, its boxes of channels past the image's.
    prob = _problem(tmp_path, PROLOGUE_CHAIN)
    source, spaces = _check(tmp_path, prob, ['triton_conv', 'triton_depthwise'], expect_kernels=8, params={
        "CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "DW_ROWS": 4})
    assert source.count("= x  # the producer's output and its deferred tail's operands") == 2
    assert source.count("return (y, ") == 2 and source.count("def _post_") == 2  # c4's and the 3x3's
    _check(tmp_path, prob, ['triton_conv', 'triton_depthwise'], expect_kernels=8, params={
        "CONV_BLOCK_M": 64, "CONV_BLOCK_N": 32, "CONV_BLOCK_K": 64, "CONV_PRECISION": "ieee"})


def test_a_conv_both_takes_and_defers_a_tail(tmp_path):
    # Three 1x1 convs with a BatchNorm and an activation between each: the middle one applies the
    # first one's tail as it loads and leaves its own to the last one (the TMA kernels: 40 pixels).
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.bn_a = nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24)
            self.b, self.bn_b = nn.Conv2d(24, 20, 1), nn.BatchNorm2d(20)
            self.c = nn.Conv2d(20, 16, 1)
        def forward(self, x):
            return self.c(torch.relu(self.bn_b(self.b(F.relu6(self.bn_a(self.a(x)))))))
    def get_inputs():
        return [torch.randn(2, 16, 5, 8) + 0.2]
    def get_init_inputs():
        return []
    """)
    source, _ = _check(tmp_path, prob, ['triton_conv'], expect_kernels=3, params={
        "CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16})
    assert source.count("= x  # the producer's output and its deferred tail's operands") == 2
    assert source.count("return (y, ") == 2 and "def _post_" not in source


def test_a_depthwise_conv_applies_the_tail_of_the_conv_before_it(tmp_path):
    # An inverted residual (1x1 conv -> BatchNorm -> ReLU6 -> depthwise 3x3 -> BatchNorm -> ReLU6 ->
    # 1x1 conv -> BatchNorm, plus the input): the depthwise conv applies the first conv's tail as it
    # loads (the sliding window) and leaves its own to the last conv. A strided depthwise conv with
    # two output channels per input channel (the tile kernel) applies a tail that is not zero at zero
    # (sigmoid * 2): the padding must stay zero, and each program's tail is its input channel's.
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.bn1 = nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24)
            self.dw, self.bn2 = nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False), nn.BatchNorm2d(24)
            self.c3, self.bn3 = nn.Conv2d(24, 16, 1, bias=False), nn.BatchNorm2d(16)
            self.c4, self.bn4 = nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24)
            self.dws = nn.Conv2d(24, 48, 3, stride=2, padding=1, groups=24)
        def forward(self, x):
            y = F.relu6(self.bn1(self.c1(x)))
            y = F.relu6(self.bn2(self.dw(y)))
            return x + self.bn3(self.c3(y)), self.dws(torch.sigmoid(self.bn4(self.c4(x))) * 2.0)
    def get_inputs():
        return [torch.randn(2, 16, 7, 9) + 0.2]
    def get_init_inputs():
        return []
    """)
    params = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "DW_ROWS": 4, "DW_BLOCK": 64}
    source, _ = _check(tmp_path, prob, ['triton_conv', 'triton_depthwise', 'fuse_chains'], params=params,
                       expect_kernels=6)
    assert source.count("= x  # the producer's output and its deferred tail's operands") == 3
    assert source.count("ic = chan // (CO // CI)") == 2 and source.count("return (y, ") == 3
    assert source.count("def _post_") == 1  # the last BatchNorm and the residual
    apart, _ = fusion.build(prob, ['triton_conv', 'triton_depthwise', 'fuse_chains'], prologues=False)
    assert "deferred tail's operands" not in apart and apart.count("def _post_") == 4  # each tail its own pass


# A TF32 conv candidate against float64 convolutions of its inputs rounded to nearest at TF32's
# mantissa (frexp, independent of the candidate's own rounding), and of the inputs as they are.
TF32_ERRORS = """
import sys, torch
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
problem = load_problem(sys.argv[1])
module = import_file(Path(sys.argv[2]), "tf32rn")
new = problem.make_model(module.ModelNew, 1, "cpu")
x = problem.make_inputs(1, "cpu")[0]
def rn(t):
    m, e = torch.frexp(t.double())
    return torch.ldexp(torch.round(m * 2048) / 2048, e)
conv = new.conv
with torch.no_grad():
    got = new(x).double()
    exact = torch.nn.functional.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=conv.padding)
    rounded = torch.nn.functional.conv2d(rn(x), rn(conv.weight), conv.bias.double(), padding=conv.padding)
err = lambda want: float((got - want).norm() / want.norm())
print("errors", err(rounded), err(exact))
"""


@pytest.mark.parametrize("kernel", ["3, padding=1", "1"])
def test_conv_tf32rn_rounds_its_inputs_to_nearest(tmp_path, kernel):
    # Its products are of inputs rounded to nearest (the weights by the launcher, the input in the
    # kernel): within accumulation error of float64 on the rounded inputs, and a TF32 rounding away
    # from the inputs as they are (a truncation would miss the first by as much). Both conv kernels:
    # the implicit GEMM and the 1x1's GEMM per image.
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(16, 8, KERNEL)
        def forward(self, x):
            return self.conv(x)
    def get_inputs():
        return [torch.randn(2, 16, 5, 6)]
    def get_init_inputs():
        return []
    """.replace("KERNEL", kernel))
    params = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_PRECISION": "tf32rn"}
    path, _, _ = _build(tmp_path, prob, ["triton_conv"], params=params)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", TF32_ERRORS, str(prob.path), str(path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert "errors" in out.stdout, out.stdout + out.stderr[-3000:]
    to_rounded, to_exact = map(float, out.stdout.split("errors")[1].split())
    assert to_rounded < 1e-6 and to_exact > 2e-5, (to_rounded, to_exact)


ROUND_SCRIPT = """
import torch, triton, triton.language as tl
from evo_kernels.proposers.templates.helpers import HELPERS
exec(HELPERS)
ulp = 2.0 ** -10  # TF32's step at 1
t = torch.tensor([1 + ulp / 2, 1 + ulp / 4, -(1 + ulp / 2), 1 + 0.75 * ulp, float("inf"), float("-inf"),
                  float("nan"), torch.finfo(torch.float32).max, 0.0, -0.0, 1e-40, 3.0, 1.0, 2.0, 5.5, 7.25])
r = _round_tf32(t)  # through _tf32_rn, which the kernels apply to their input tiles
assert r[:4].tolist() == [1 + ulp, 1, -(1 + ulp), 1 + ulp], r  # ties away from zero
assert r[4] == float("inf") and r[5] == float("-inf") and torch.isnan(r[6])
assert torch.isinf(r[7]) and r[8] == 0.0  # past TF32's largest finite value: inf, as the hardware does
assert r[11:].tolist() == [3.0, 1.0, 2.0, 5.5, 7.25]
assert bool(((r.view(torch.int32) & 0x1FFF) == 0)[torch.isfinite(t)].all())
print("rounded")
"""


def test_tf32_round_to_nearest():
    # The rounding of a tf32rn conv's weights (HELPERS' _round_tf32) and input tiles (_tf32_rn, which
    # it launches), under the interpreter.
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", ROUND_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "rounded" in proc.stdout, proc.stderr[-3000:]


BN_FINALIZE_SCRIPT = """
import torch, triton, triton.language as tl
from evo_kernels.proposers.templates.helpers import HELPERS
exec(HELPERS)
torch.manual_seed(0)
close = lambda got, want: torch.testing.assert_close(got.double(), want, rtol=2e-5, atol=2e-5)
# One channel a program over 21 channels; two over 333 (the last program half out of range). Both
# with more tiles than one block of the merge (1024 or 2048): the merge across blocks counts.
for C, chunks in ((21, 2500), (333, 2100)):
    sizes = torch.randint(1, 12, (chunks,))
    x = torch.randn(int(sizes.sum()), C, dtype=torch.float64) * 3.0 + torch.linspace(-5, 5, C, dtype=torch.float64)
    parts = x.split(sizes.tolist())
    cnt = sizes.float()
    mean_t = torch.stack([p.mean(0) for p in parts]).float()
    m2_t = torch.stack([((p - p.mean(0)) ** 2).sum(0) for p in parts]).float()
    w, b = torch.rand(C) + 0.5, torch.randn(C)
    rm, rv, nbt = torch.randn(C), torch.rand(C) + 0.5, torch.tensor(3)
    rm0, rv0 = rm.clone(), rv.clone()
    mean, var = x.mean(0), x.var(0, unbiased=False)
    scale, shift = _bn_scale_shift(cnt, mean_t, m2_t, w, b, rm, rv, nbt, True, 1e-5, 0.1)
    close(scale, w.double() / (var + 1e-5).sqrt())
    close(shift, b.double() - mean * w.double() / (var + 1e-5).sqrt())
    close(rm, 0.9 * rm0.double() + 0.1 * mean)
    close(rv, 0.9 * rv0.double() + 0.1 * x.var(0, unbiased=True))
    assert int(nbt) == 4
    scale, shift = _bn_scale_shift(None, None, None, None, None, rm, rv, nbt, False, 1e-5, 0.1)  # eval
    close(scale, 1.0 / (rv.double() + 1e-5).sqrt())
    close(shift, -rm.double() / (rv.double() + 1e-5).sqrt())
    assert int(nbt) == 4
    scale, shift = _bn_scale_shift(cnt, mean_t, m2_t, None, None, None, None, None, False, 1e-3, 0.1)  # untracked
    close(scale, 1.0 / (var + 1e-3).sqrt())
print("finalized")
"""


def test_batchnorm_finalize_merges_tiles_and_updates_running_statistics():
    # _bn_scale_shift (one kernel) against float64 statistics of the raw values behind thousands of
    # tiles of uneven counts: scale, shift, running mean and (unbiased) variance, the batch counter; in eval and
    # without running statistics too.
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", BN_FINALIZE_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and "finalized" in proc.stdout, proc.stderr[-3000:]


def test_batchnorm_in_eval_mode_reads_its_input_once(tmp_path):
    # Eval mode normalizes with the running statistics: the batch's would be a pass over the input
    # for nothing (a third of the bytes).
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(6)
        def forward(self, x):
            return torch.relu(self.bn(x))
    def get_inputs():
        return [torch.randn(2, 6, 5, 4)]
    def get_init_inputs():
        return []
    """)
    path, _, _ = _build(tmp_path, prob, ["fuse_chains"], expect_kernels=2)
    _numerics(prob, path)  # the outputs and running statistics in both modes
    assert launches(str(prob.path), str(path), ["_stats_0"], ("train", "eval")) == \
        {"train": {"_stats_0": 1}, "eval": {"_stats_0": 0}}


CONV_BN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
    def forward(self, {args}):
        return {ret}
def get_inputs():
    return [{inputs}]
def get_init_inputs():
    return []
"""


def test_an_eval_mode_batchnorm_folds_into_the_convs_store(tmp_path):
    # In eval mode a BatchNorm with running statistics is a per-channel scale and shift: the conv's
    # store applies it and what follows (here a residual and a ReLU), and the pass over the conv's
    # output that applies them in training is not made. Both the pointer and the TMA kernel.
    prob = _problem(tmp_path, CONV_BN.format(args="x, r", ret="torch.relu(self.bn(self.conv(x)) + r)",
                                             inputs="torch.randn(2, 16, 5, 7), torch.randn(2, 8, 5, 7)"))
    small = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_BLOCK_W": 8}
    for tma in (True, False):
        path, source, _ = _build(tmp_path, prob, ["triton_conv", "fuse_chains"], dict(small, CONV_TMA=tma))
        assert "    if FOLD:" in source and "fold = not stats" in source
        _numerics(prob, path)  # outputs and running statistics, in training then eval mode
        k = re.search(r"def _conv_(\d+)\(", source).group(1)  # the group's number
        kernel, post = f"_conv_{k}_tma" if tma else f"_conv_{k}", f"_post_{k}"
        assert launches(str(prob.path), str(path), [kernel, post], ("train", "eval")) == \
            {"train": {kernel: 1, post: 1}, "eval": {kernel: 1, post: 0}}
    # What follows the BatchNorm is a pooling (not in a conv's store): no fold, the pass runs in both modes
    prob = _problem(tmp_path, CONV_BN.format(args="x", ret="F.max_pool2d(self.bn(self.conv(x)), 2)",
                                             inputs="torch.randn(2, 16, 5, 7)"), name="pooled")
    path, source, _ = _build(tmp_path, prob, ["triton_conv", "fuse_chains"], small)
    assert "fold = False" in source and "    if FOLD:" not in source
    _numerics(prob, path)


def test_an_eval_mode_batchnorm_folds_into_the_gemms_store(tmp_path):
    # The GEMM's as the conv's: in eval mode a BatchNorm1d with running statistics and what follows
    # (a bias, a ReLU, a full operand) are applied in the GEMM's store and the pass after it is not
    # made; in training the store computes the statistics and the pass applies them. Tiles cut at
    # every edge (50 rows, 24 columns in tiles of 16).
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(40, 24)
            self.bn = nn.BatchNorm1d(24)
            self.bias = nn.Parameter(torch.randn(24))
        def forward(self, x, r):
            return torch.relu(self.bn(self.linear(x)) + self.bias) * r
    def get_inputs():
        return [torch.randn(50, 40), torch.randn(50, 24)]
    def get_init_inputs():
        return []
    """)
    small = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16}
    path, source, _ = _build(tmp_path, prob, ["triton_gemm", "fuse_chains"], small)
    assert "        if FOLD:" in source and "fold = not stats" in source
    _numerics(prob, path)  # outputs and running statistics, in training then eval mode
    assert launches(str(prob.path), str(path), ["_gemm_0", "_row_0"], ("train", "eval")) == \
        {"train": {"_gemm_0": 1, "_row_0": 1}, "eval": {"_gemm_0": 1, "_row_0": 0}}
    # Untracked statistics: the batch's in eval mode too, no fold at run time
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(40, 24)
            self.bn = nn.BatchNorm1d(24, track_running_stats=False)
        def forward(self, x):
            return torch.sigmoid(self.bn(self.linear(x)))
    def get_inputs():
        return [torch.randn(50, 40)]
    def get_init_inputs():
        return []
    """, name="untracked")
    path, _, _ = _build(tmp_path, prob, ["triton_gemm", "fuse_chains"], small)
    _numerics(prob, path)
    assert launches(str(prob.path), str(path), ["_gemm_0", "_row_0"], ("train", "eval")) == \
        {"train": {"_gemm_0": 1, "_row_0": 1}, "eval": {"_gemm_0": 1, "_row_0": 1}}


def test_pooling_templates_standalone(tmp_path):
    prob = _problem(tmp_path, """
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.mp = nn.MaxPool2d(3, stride=2, padding=1)
            self.ap = nn.AvgPool2d(3, stride=1, padding=1)
        def forward(self, x):
            return self.mp(x), torch.sigmoid(self.ap(x))
    def get_inputs():
        return [torch.randn(2, 3, 9, 8)]
    def get_init_inputs():
        return []
    """)
    _check(tmp_path, prob, ['fuse_chains'], expect_kernels=2)
    _check(tmp_path, prob, ['avgpool_conv'], expect_kernels=0)


NAN_OPS = {  # torch's ops that pass NaN on, whose template expressions use Triton's maximum or minimum
    "relu": "torch.relu(x) * 2.0", "relu6": "F.relu6(x + 1.0)", "hardswish": "F.hardswish(x) - 0.5",
    "clamp": "torch.clamp(x * 3.0, -1.0, 1.0)", "maximum": "torch.maximum(x, y) + 1.0",
    "minimum": "torch.minimum(x, y) * 0.5",
}


def test_maximum_and_minimum_pass_nan_on_as_torch_does(tmp_path):
    # Triton's tl.maximum and tl.minimum drop NaN by default (relu(NaN) would be 0); torch's ops give
    # NaN. Inputs about a tenth NaN, compared NaN for NaN.
    from interpreted import check_pairs
    pairs = []
    for name, expr in NAN_OPS.items():
        prob = _problem(tmp_path, f"""
        class Model(nn.Module):
            def forward(self, x, y):
                return {expr}
        def get_inputs():
            nan = torch.rand(2, 8, 100) < 0.1
            return [torch.where(nan[0], float('nan'), torch.randn(8, 100)), torch.where(nan[1], float('nan'), torch.randn(8, 100))]
        def get_init_inputs():
            return []
        """, name=name)
        path, _, _ = _build(tmp_path, prob, ["fuse_chains"])
        pairs += [str(prob.path), str(path)]
    check_pairs(pairs, seeds=(1,), equal_nan=True)
