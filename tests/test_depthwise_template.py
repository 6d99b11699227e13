"""The depthwise template (templates/depthwise.py) under Triton's interpreter: Conv2d and Conv1d with
groups == in_channels, a channel multiplier, stride, dilation, padding, no bias, an epilogue with a
per-channel operand, a BatchNorm after it (its statistics from the conv kernel's store; training and
eval)
and a chain after that, and the same problems through the library's convolution (fuse_chains); and the convolutions it leaves alone (ordinary, partly grouped, reflect
padding, "same" padding)."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.proposers.templates.helpers import HELPERS
from evo_kernels.model.problem import load_problem
from evo_kernels.proposers import fusion

from interpreted import check_batchnorm_train_and_eval, check_pairs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
# the tile kernel's (strides and dilations down the rows) and the sliding-window kernel's (the others)
KERNEL_LINES = ("# One BLOCK_H x BLOCK_W tile of one output plane (image, channel) per program",
                "# Stride 1 down the rows: ROWS output rows of BLOCK_W columns of one plane per program")

# name -> (the conv module, forward's return, input). Tiny, uneven shapes: windows cross every edge
# and the last block of lanes is partial.
CASES = {
    "dw3x3_bias_gelu": ("nn.Conv2d(5, 5, 3, padding=1, groups=5)", "F.gelu(self.c(x)) * self.s",
                        "torch.randn(2, 5, 9, 7)"),
    "dw7x7_no_bias": ("nn.Conv2d(4, 4, 7, padding=3, groups=4, bias=False)", "self.c(x)", "torch.randn(1, 4, 10, 12)"),
    "dw9x9_beyond_the_window": ("nn.Conv2d(3, 3, 9, padding=4, groups=3)", "self.c(x)", "torch.randn(1, 3, 10, 11)"),
    "columns_strided_dilated": ("nn.Conv2d(4, 4, (2, 3), stride=(1, 2), padding=(0, 2), dilation=(1, 2), groups=4)",
                                "self.c(x) * 2.0", "torch.randn(2, 4, 9, 13)"),
    "multiplier_stride_dilation": ("nn.Conv2d(3, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 1), groups=3)",
                                   "torch.tanh(self.c(x))", "torch.randn(2, 3, 11, 8)"),
    "conv1d": ("nn.Conv1d(4, 4, 5, stride=2, padding=2, groups=4)", "torch.sigmoid(self.c(x) + 0.5)",
               "torch.randn(3, 4, 17)"),
    "bn_relu6_then_more": ("nn.Conv2d(6, 6, 3, padding=1, groups=6)", "F.relu6(self.bn(self.c(x))) - self.s",
                           "torch.randn(2, 6, 8, 9)"),
    "strided_bn": ("nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)", "F.relu(self.bn(self.c(x))) * 3.0",
                   "torch.randn(2, 3, 13, 10)"),
}


def _write(tmp_path, name: str, mod: str, ret: str, inp: str) -> str:
    chans = {"dw3x3_bias_gelu": 5, "bn_relu6_then_more": 6}.get(name, 1)
    src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
           f"        self.c = {mod}\n        self.bn = nn.BatchNorm2d(6)\n"
           f"        self.s = nn.Parameter(torch.randn({chans}, 1, 1))\n"
           f"    def forward(self, x):\n        return {ret}\n"
           f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src)
    return str(path)




def test_batchnorm_statistics_from_the_store_in_training_and_eval(tmp_path):
    """A BatchNorm after the depthwise conv: in training, the batch's statistics the conv kernel
    stored (the window's rows merged, and the tile kernel's) normalize and update the running ones
    as torch does; in eval the running ones normalize and nothing is stored."""
    for name in ("bn_relu6_then_more", "strided_bn"):
        path = _write(tmp_path, name, *CASES[name])
        source, _ = fusion.build(load_problem(path), ["triton_depthwise"])
        cand = tmp_path / f"{name}_eval_candidate.py"
        cand.write_text(source.replace("\nDW_ROWS = 16\n", "\nDW_ROWS = 3\n").replace("\nDW_BLOCK = 1024\n", "\nDW_BLOCK = 32\n"))
        check_batchnorm_train_and_eval(path, str(cand))


def test_depthwise_convolutions_compute_the_reference(tmp_path):
    pairs = []
    for name, (mod, ret, inp) in CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        built = fusion.build(load_problem(path), ["triton_depthwise"])
        assert built is not None, name
        source, spaces = built
        assert "depthwise" in spaces and sum(source.count(line) for line in KERNEL_LINES) == 1, name
        # the sliding window wherever the rows are read at stride 1, undilated, with filters up to 7 x 7
        assert (KERNEL_LINES[1] in source) == (name not in ("multiplier_stride_dilation", "dw9x9_beyond_the_window",
                                                           "strided_bn")), name
        assert check_source(source) == [], [str(v) for v in check_source(source)]
        # the epilogue (bias, the per-channel scale) and a BatchNorm's statistics in the conv's store:
        # one kernel, and one more applying the BatchNorm
        assert source.count("@triton.jit") - HELPERS.count("@triton.jit") == (2 if "bn" in name else 1), name
        cand = tmp_path / f"{name}_candidate.py"
        assert "\nDW_BLOCK = 1024\n" in source and "\nDW_ROWS = 16\n" in source
        # several programs per plane, the last one's rows past the edge
        cand.write_text(source.replace("\nDW_BLOCK = 1024\n", "\nDW_BLOCK = 64\n").replace("\nDW_ROWS = 16\n", "\nDW_ROWS = 4\n"))
        pairs += [path, str(cand)]
        # without the template: the library's convolution (groups kept), then the chain's kernel
        library = fusion.build(load_problem(path), ["fuse_chains"])
        if library is not None:
            (tmp_path / f"{name}_library.py").write_text(library[0])
            pairs += [path, str(tmp_path / f"{name}_library.py")]
    # as accurate as PyTorch's fp32 depthwise kernel against float64, on random weights
    check_pairs(pairs, seeds=(1, 2), random_params=True, oracle_factor=2.0, oracle_floor=1e-7)


@pytest.mark.parametrize("mod", [
    "nn.Conv2d(4, 4, 3, padding=1)",  # groups 1: the conv template's
    "nn.Conv2d(4, 8, 3, padding=1, groups=2)",  # grouped, not depthwise
    "nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode='reflect')",
    "nn.Conv2d(4, 4, 3, padding='same', groups=4)",
])
def test_other_convolutions_are_left_alone(tmp_path, mod):
    path = _write(tmp_path, "other", mod, "self.c(x) * 2.0", "torch.randn(1, 4, 6, 6)")
    built = fusion.build(load_problem(path), ["triton_depthwise"])
    assert built is None or not any(line in built[0] for line in KERNEL_LINES)
