"""The transposed-convolution template (templates/conv_transpose.py) under Triton's interpreter: the
output phases of strides 1, 2 and 3 (equal in size, and unequal where the output's size is not a
multiple of the stride), sub-filters padded with zero taps (and phases without a tap), output padding, no bias, an epilogue with a
per-channel operand, a BatchNorm after it (its statistics from the kernel's store; training and eval),
a GroupNorm after it (level2/17's chain), the same problems through the library's transposed
convolution (fuse_chains), and the transposed convolutions it leaves alone."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers import fusion
from evo_kernels.proposers.templates.helpers import HELPERS

from interpreted import check_batchnorm_train_and_eval, check_pairs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
KERNEL_LINE = "# One output phase (oh % SH, ow % SW) of one tile per program"
TMA_LINE = "# One output phase of a tile of BH x BW of the phase's pixels (qh, qw) of one image"

# name -> (the module, forward's return, input). Tiny, uneven shapes: the last tiles are partial and
# the taps cross every edge.
CASES = {
    # phases of equal size (OH = 2H), one with a zero tap (3 taps over stride 2)
    "k3_s2_outpad_relu": ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)",
                          "torch.relu(self.c(x)) * self.s", "torch.randn(2, 16, 5, 6)"),
    # OH = 2H - 1: the odd phases are a row and a column short
    "k3_s2_uneven_gelu": ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)", "F.gelu(self.c(x))",
                          "torch.randn(2, 16, 5, 4)"),
    # level2/17's geometry: 2x2 taps a phase
    "k4_s2_p1_no_bias": ("nn.ConvTranspose2d(16, 12, 4, stride=2, padding=1, bias=False)", "self.c(x)",
                         "torch.randn(1, 16, 6, 7)"),
    "k2_s2_one_tap": ("nn.ConvTranspose2d(20, 8, 2, stride=2)", "self.c(x) - 0.5", "torch.randn(2, 20, 3, 5)"),
    # 1x1 taps at stride 2: three of the four phases have no tap (the bias alone)
    "k1_s2_empty_phases": ("nn.ConvTranspose2d(16, 8, 1, stride=2)", "self.c(x) * 3.0", "torch.randn(2, 16, 3, 4)"),
    "stride_1": ("nn.ConvTranspose2d(16, 8, 3, stride=1, padding=1)", "torch.tanh(self.c(x))",
                 "torch.randn(1, 16, 5, 6)"),
    "rectangular_stride_3": ("nn.ConvTranspose2d(16, 8, (3, 5), stride=(2, 3), padding=(1, 2), output_padding=(1, 2))",
                             "torch.sigmoid(self.c(x))", "torch.randn(2, 16, 4, 5)"),
}
BN_CASES = {  # a BatchNorm after it: per (tile, phase) statistics, the uneven phases' rows masked
    "bn_uneven": ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)", "F.relu(self.bn(self.c(x))) * 2.0",
                  "torch.randn(2, 16, 5, 4)"),
    "bn_k4": ("nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)", "self.bn(self.c(x))", "torch.randn(2, 16, 3, 5)"),
}


def _write(tmp_path, name: str, mod: str, ret: str, inp: str) -> str:
    src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
           f"        self.c = {mod}\n        self.bn = nn.BatchNorm2d(8)\n        self.gn = nn.GroupNorm(4, 8)\n"
           f"        self.s = nn.Parameter(torch.randn(8, 1, 1))\n"
           f"    def forward(self, x):\n        return {ret}\n"
           f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src)
    return str(path)


def _with_tma(source: str) -> str:
    """The draft with its TMA kernel on (its default)."""
    assert "\nCONVT_TMA = True\n" in source
    return source


def _pointers(source: str) -> str:
    """The draft with its pointer kernel instead."""
    return source.replace("\nCONVT_TMA = True\n", "\nCONVT_TMA = False\n")


def _small_tiles(source: str) -> str:
    """Tiles smaller than the output, so that a phase spans several programs."""
    assert "\nCONVT_BLOCK_M = 128\n" in source and "\nCONVT_BLOCK_K = 32\n" in source
    return source.replace("\nCONVT_BLOCK_M = 128\n", "\nCONVT_BLOCK_M = 16\n").replace(
        "\nCONVT_BLOCK_N = 64\n", "\nCONVT_BLOCK_N = 16\n").replace("\nCONVT_BLOCK_K = 32\n", "\nCONVT_BLOCK_K = 16\n").replace(
        "\nCONVT_BLOCK_W = 16\n", "\nCONVT_BLOCK_W = 8\n")


def test_transposed_convolutions_compute_the_reference(tmp_path):
    pairs = []
    cases = dict(CASES, gelu_groupnorm=("nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)", "self.gn(F.gelu(self.c(x)))",
                                        "torch.randn(2, 16, 4, 5)"))
    for name, (mod, ret, inp) in cases.items():
        path = _write(tmp_path, name, mod, ret, inp)
        built = fusion.build(load_problem(path), ["triton_conv_transpose", "triton_reduce"])
        assert built is not None, name
        source, spaces = built
        assert "conv_transpose" in spaces and source.count(KERNEL_LINE) == 1 and TMA_LINE in source, name
        assert check_source(source) == [], [str(v) for v in check_source(source)]
        if name != "gelu_groupnorm":  # the epilogue (bias, activation, operand) in the kernel's store: one kernel
            assert source.count("@triton.jit") - HELPERS.count("@triton.jit") == 2, name  # (TMA and pointers)
        assert "tma = CONVT_TMA and _tma_ok(x)" in source, name
        cand = tmp_path / f"{name}_candidate.py"
        cand.write_text(_with_tma(_small_tiles(source)))  # the TMA kernel (the interpreter runs it)
        pointers = tmp_path / f"{name}_pointers.py"
        pointers.write_text(_pointers(_small_tiles(source)))
        pairs += [path, str(cand), path, str(pointers)]
        # without the template: the library's transposed convolution, then the chain's kernel
        library = fusion.build(load_problem(path), ["fuse_chains"])
        # (only a transposed conv with nothing after it has no chain to fuse)
        assert (library is None) == (name == "k4_s2_p1_no_bias"), name
        if library is not None:
            assert "conv_transpose2d(" in library[0] and KERNEL_LINE not in library[0], name
            (tmp_path / f"{name}_library.py").write_text(library[0])
            pairs += [path, str(tmp_path / f"{name}_library.py")]
    # tf32x3 by default: as accurate as PyTorch's fp32 transposed convolution against float64
    check_pairs(pairs, seeds=(1, 2), random_params=True, oracle_factor=2.0, oracle_floor=1e-7)




@pytest.mark.parametrize("name", sorted(BN_CASES))
def test_batchnorm_statistics_from_the_store_in_training_and_eval(tmp_path, name):
    """In training, the batch's statistics the kernel stored per (tile, phase), the rows beyond an
    uneven phase not counted, normalize and update the running ones as torch does; in eval the running
    ones normalize."""
    path = _write(tmp_path, name, *BN_CASES[name])
    source, _ = fusion.build(load_problem(path), ["triton_conv_transpose"])
    assert source.count(KERNEL_LINE) == 1 and "BN_STATS=stats" in source
    cand = tmp_path / f"{name}_candidate.py"
    cand.write_text(_with_tma(_small_tiles(source)))
    check_batchnorm_train_and_eval(path, str(cand))


@pytest.mark.parametrize("mod,call", [
    ("nn.ConvTranspose2d(16, 16, 3, stride=2, padding=1, groups=2)", "self.c(x)"),  # grouped
    ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, dilation=2)", "self.c(x)"),
    ("nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)", "self.c(x, output_size=[9, 11])"),
    ("nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1)", "self.c(x)"),  # K too small for the tensor cores
])
def test_other_transposed_convolutions_are_left_alone(tmp_path, mod, call):
    inp = "torch.randn(1, 16, 5, 6)" if "(16," in mod else "torch.randn(1, 8, 5, 6)"
    path = _write(tmp_path, "other", mod, f"{call} * 2.0", inp)
    built = fusion.build(load_problem(path), ["triton_conv_transpose"])
    assert built is None or KERNEL_LINE not in built[0]
