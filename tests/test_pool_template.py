"""The pool template (templates/pool.py) over 1, 2 and 3 pooled dims, under Triton's interpreter: max and
average pooling with padding (count_include_pad both ways), modules and functions, elementwise ops
before the pool (with a per-channel operand) and after it; and the variants it refuses (ceil_mode,
divisor_override, dilation, indices, a wrong rank, fp64), which lower no pool op at all."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.proposers.templates.helpers import HELPERS
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers import fusion
from evo_kernels.proposers.fusion.graph import find_groups, trace

from interpreted import check_pairs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
KERNEL_LINE = "# One output element per lane; the window's elements go through the pre-pool ops one by one."

# name -> (the pooling module or None, forward's return, inputs). Shapes are tiny and uneven: the
# windows cross every edge, and the last block of lanes is partial.
CASES = {
    "max1d_pad": ("nn.MaxPool1d(3, stride=2, padding=1)", "torch.sigmoid(self.m(torch.tanh(x)))",
                  "torch.randn(2, 3, 11)"),
    "avg1d_count_pad_chan": (None, "F.avg_pool1d(x * 2.0 + self.b, 3, 1, 1) - 1.0", "torch.randn(2, 3, 10)"),
    "avg1d_no_count_pad": ("nn.AvgPool1d(4, stride=3, padding=2, count_include_pad=False)",
                           "F.relu(self.m(x - 0.5)) * 3.0", "torch.randn(2, 3, 13)"),
    "max3d_pad": ("nn.MaxPool3d(3, stride=2, padding=1)", "self.m(torch.tanh(x) * 2.0 - 0.5) + 1.0",
                  "torch.randn(2, 3, 5, 6, 7)"),
    "avg3d_count_pad": (None, "F.avg_pool3d(torch.exp(x), (2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0)) * 0.5",
                        "torch.randn(1, 2, 5, 7, 4)"),
    "avg3d_no_count_pad": ("nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False)",
                           "torch.sigmoid(self.m(F.hardswish(x)))", "torch.randn(2, 2, 4, 5, 6)"),
    "max2d_function": (None, "torch.tanh(F.max_pool2d(x - 0.1, 2, padding=1))", "torch.randn(2, 3, 7, 6)"),
}

# The models' parameters: a per-channel operand for 1-D pools (b), for 2-D ones (c), and an operand
# of a 2-D window case's output shape (y)
PARAMETERS = ("        self.b = nn.Parameter(torch.randn(3, 1))\n"
              "        self.c = nn.Parameter(torch.randn(3, 1, 1))\n"
              "        self.y = nn.Parameter(torch.randn(2, 3, 6, 11))\n")


def _write(tmp_path, name: str, mod: str | None, ret: str, inp: str) -> str:
    init = "        super().__init__()\n" + PARAMETERS
    if mod is not None:
        init += f"        self.m = {mod}\n"
    src = (f"class Model(nn.Module):\n    def __init__(self):\n{init}"
           f"    def forward(self, x):\n        return {ret}\n"
           f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src)
    return str(path)


def _pools(path: str) -> list:
    problem = load_problem(path)
    gm = trace(problem.Model, problem.init_inputs(), problem.make_inputs(0, "meta"))
    assert gm is not None
    return [g.pool for g in find_groups(gm, []) if g.pool is not None]


def test_each_rank_computes_the_reference(tmp_path):
    pairs = []
    for name, (mod, ret, inp) in CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        built = fusion.build(load_problem(path), ["fuse_chains"])
        assert built is not None, name
        source, spaces = built
        # one kernel, the pool's, holding the ops before and after the pool
        assert spaces == ["pool"] and source.count("@triton.jit") - HELPERS.count("@triton.jit") == source.count(KERNEL_LINE) == 1, name
        assert check_source(source) == [], [str(v) for v in check_source(source)]
        cand = tmp_path / f"{name}_candidate.py"
        assert "\nPOOL_BLOCK = 1024\n" in source
        cand.write_text(source.replace("\nPOOL_BLOCK = 1024\n", "\nPOOL_BLOCK = 64\n"))  # several programs each
        pairs += [path, str(cand)]
    check_pairs(pairs, seeds=(1, 2))


def test_the_ir_holds_one_value_per_pooled_dim(tmp_path):
    (pool,) = _pools(_write(tmp_path, "max3d", *CASES["max3d_pad"]))
    assert pool.const == ("max", (3, 3, 3), (2, 2, 2), (1, 1, 1), True, (2, 3, 3, 3, 4))
    (pool,) = _pools(_write(tmp_path, "avg1d", *CASES["avg1d_no_count_pad"]))
    assert pool.const == ("avg", (4,), (3,), (2,), False, (2, 3, 5))
    (pool,) = _pools(_write(tmp_path, "avg3d", *CASES["avg3d_count_pad"]))
    assert pool.const == ("avg", (2, 3, 2), (1, 2, 1), (1, 1, 0), True, (1, 2, 6, 4, 3))


@pytest.mark.parametrize("mod, ret, inp", [
    ("nn.MaxPool1d(3, stride=2, ceil_mode=True)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(2, 3, 10)"),
    ("nn.AvgPool3d(3, stride=2, ceil_mode=True)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(1, 2, 6, 6, 6)"),
    (None, "torch.sigmoid(F.avg_pool1d(torch.tanh(x), 3, ceil_mode=True))", "torch.randn(2, 3, 10)"),
    ("nn.AvgPool3d(2, divisor_override=3)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(1, 2, 4, 4, 4)"),
    (None, "torch.sigmoid(F.avg_pool2d(torch.tanh(x), 2, divisor_override=3))", "torch.randn(1, 2, 4, 4)"),
    ("nn.MaxPool3d(2, dilation=2)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(1, 2, 6, 6, 6)"),
    (None, "torch.sigmoid(F.max_pool1d(torch.tanh(x), 3, dilation=2))", "torch.randn(2, 3, 10)"),
    ("nn.MaxPool1d(2, return_indices=True)", "self.m(torch.tanh(x))[0] * 2.0", "torch.randn(2, 3, 10)"),
    ("nn.MaxPool1d(2)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(3, 10)"),  # unbatched (C, L)
    ("nn.MaxPool3d(2)", "torch.sigmoid(self.m(torch.tanh(x)))", "torch.randn(1, 2, 4, 4, 4, dtype=torch.float64)"),
], ids=["ceil_max1d", "ceil_avg3d", "ceil_function", "divisor_module", "divisor_function", "dilation_module",
        "dilation_function", "indices", "unbatched", "fp64"])
def test_unsupported_variants_lower_no_pool(tmp_path, mod, ret, inp):
    path = _write(tmp_path, "refused", mod, ret, inp)
    assert _pools(path) == []
    built = fusion.build(load_problem(path), ["fuse_chains"])
    assert built is None or KERNEL_LINE not in built[0]


WINDOW_LINE = "    # A sliding window down the rows, each input row reduced across the window's KW columns once"
# 2-D pools at row stride 1 go to the sliding window (templates/pool_window.py): (module or None,
# forward's return, inputs). 530 columns make two tiles of a row; POOL_ROWS 2 (below) several
# programs down each plane, the last one partial.
WINDOW_CASES = {
    "avg_box": ("nn.AvgPool2d(3, stride=1, padding=1)", "self.m(x)", "torch.randn(2, 3, 7, 9)"),
    "avg_no_count_pad_chan": (None, "F.avg_pool2d(x * 2.0 + self.c, (3, 5), stride=(1, 2), padding=(1, 2), "
                                    "count_include_pad=False) - 1.0", "torch.randn(2, 3, 8, 11)"),
    "max_spp_full_after": ("nn.MaxPool2d(5, stride=1, padding=2)", "torch.sigmoid(self.m(torch.tanh(x))) + self.y",
                           "torch.randn(2, 3, 6, 11)"),
    "max_no_pad_rect": (None, "F.max_pool2d(torch.exp(x) - self.c, (2, 3), stride=1) * 0.5",
                        "torch.randn(1, 3, 5, 7)"),
    "avg_wide": ("nn.AvgPool2d((2, 3), stride=(1, 3), padding=(1, 1), count_include_pad=False)",
                 "torch.relu(self.m(x))", "torch.randn(1, 3, 3, 1600)"),
}


def test_the_sliding_window_computes_the_reference(tmp_path):
    """Stride-1 rows: max and average, padding counted or not, rectangular windows, a column stride,
    per-channel operands before the pool and a full one after it, several programs a plane and two
    tiles a row; each against the reference and no less accurate against float64."""
    pairs = []
    for name, (mod, ret, inp) in WINDOW_CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        built = fusion.build(load_problem(path), ["fuse_chains"])
        assert built is not None, name
        source, spaces = built
        assert spaces == ["pool_window"] and source.count(WINDOW_LINE) == 1 and KERNEL_LINE not in source, name
        assert check_source(source) == [], [str(v) for v in check_source(source)]
        for rows in (2, 16):
            cand = tmp_path / f"{name}_rows{rows}.py"
            cand.write_text(source.replace("\nPOOL_ROWS = 16\n", f"\nPOOL_ROWS = {rows}\n"))
            pairs += [path, str(cand)]
    check_pairs(pairs, seeds=(1, 2), oracle_factor=1.5, oracle_floor=1e-7)


def test_other_pools_keep_the_lane_kernel(tmp_path):
    """A row stride above 1 (level1/22's max pool), 1-D and 3-D pools: the lane-per-output kernel."""
    for name, case in [("max2d", CASES["max2d_function"]), ("avg1d", CASES["avg1d_count_pad_chan"]),
                       ("max3d", CASES["max3d_pad"])]:
        source, spaces = fusion.build(load_problem(_write(tmp_path, name, *case)), ["fuse_chains"])
        assert spaces == ["pool"] and WINDOW_LINE not in source and KERNEL_LINE in source, name


@pytest.mark.parametrize("mod, inp", [("nn.MaxPool1d(3, stride=1, padding=1)", "torch.randn(2, 3, 11)"),
                                      ("nn.MaxPool2d(3, stride=1, padding=1)", "torch.randn(2, 3, 7, 9)")],
                         ids=["lane", "window"])
def test_a_value_from_before_the_pool_read_after_it_is_not_lowered(tmp_path, mod, inp):
    """`pool(x) + x`: x lives on the input's elements; a pool kernel would read the pool's output in
    its place (the lane kernel once did: every output wrong). Such a chain gets no pool kernel."""
    path = _write(tmp_path, "residual", mod, "torch.sigmoid(self.m(torch.tanh(x))) + x", inp)
    built = fusion.build(load_problem(path), ["fuse_chains"])
    assert built is None or (KERNEL_LINE not in built[0] and WINDOW_LINE not in built[0])


def test_what_a_reduction_anchor_leaves_is_a_chain_from_its_output(tmp_path):
    """A reduction anchor's group fuses nothing after it; what follows its output (a pooling, two
    elementwise ops) is a chain group of its own, not torch's ops: level2/18's MaxPool3d after a
    softmax over channels, level2/21's swish after a GroupNorm."""
    pairs = []
    for name, mod, ret, inp, space in (
            ("softmax_pool", "nn.MaxPool3d(2)", "self.m(torch.softmax(x, dim=1))", "torch.randn(2, 3, 4, 6, 5)", "pool"),
            ("groupnorm_swish", "nn.GroupNorm(3, 3)", "(lambda y: y * torch.sigmoid(y))(self.m(x))",
             "torch.randn(4, 3, 40)", "elementwise")):
        path = _write(tmp_path, name, mod, ret, inp)
        source, spaces = fusion.build(load_problem(path), ["triton_reduce", "fuse_chains"])
        assert sorted(spaces) == sorted(["reduce", space]), (name, spaces)
        forward = source[source.index("class ModelNew"):]
        assert "self.m(" not in forward and "sigmoid" not in forward and "= _f1(_evo_fused_0)" in forward, forward
        cand = tmp_path / f"{name}_candidate.py"
        cand.write_text(source)
        pairs += [path, str(cand)]
    check_pairs(pairs, seeds=(1,), tol=1e-5)
