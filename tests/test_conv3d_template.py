"""The Conv3d template (templates/conv3d.py) under Triton's interpreter: its TMA kernel (5-D boxes of
a channels-last copy, the padding zero-filled, channels not a multiple of the K block, tiles cut at
the output's edges, an input already channels-last) and its pointer kernel (strides, dilation,
channels not in 16-byte rows), each with an elementwise tail in its store, against the reference;
which kernel each conv runs; and what it leaves to others."""

import re

from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import check_pairs, launches

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
SMALL = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_BLOCK_W": 8}

CASES = {  # name -> (the conv module, forward's return, input, whether the TMA kernel applies)
    "k3_relu": ("nn.Conv3d(16, 8, 3, padding=1)", "torch.relu(self.c(x)) * 2.0", "torch.randn(2, 16, 3, 5, 6)", True),
    # 20 channels in K blocks of 16: the second block's last 12 are zeros; a tap of each size
    "k325_channels_20": ("nn.Conv3d(20, 12, (3, 2, 5), padding=(1, 0, 2), bias=False)", "self.c(x)",
                         "torch.randn(1, 20, 4, 6, 9)", True),
    # the residual read in the store (a full operand at the output's offsets)
    "k3_residual": ("nn.Conv3d(16, 16, 3, padding=1)", "torch.tanh(self.c(x)) + x", "torch.randn(1, 16, 2, 4, 11)",
                    True),
    "channels_last_input": ("nn.Conv3d(16, 8, 3, padding=1)",
                            "self.c(x.contiguous(memory_format=torch.channels_last_3d))",
                            "torch.randn(2, 16, 3, 4, 5)", True),
    "strided_dilated": ("nn.Conv3d(16, 8, 3, stride=(2, 1, 2), padding=1, dilation=(2, 2, 1))", "self.c(x) - 0.5",
                        "torch.randn(2, 16, 6, 7, 6)", False),
    "channels_18": ("nn.Conv3d(18, 8, 3, padding=1)", "self.c(x)", "torch.randn(1, 18, 3, 4, 5)", False),
}


def _write(tmp_path, name: str, mod: str, ret: str, inp: str) -> str:
    src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
           f"        self.c = {mod}\n"
           f"    def forward(self, x):\n        return {ret}\n"
           f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src)
    return str(path)


def test_conv3d_computes_the_reference_by_the_kernel_that_applies(tmp_path):
    pairs, rounded = [], []
    for name, (mod, ret, inp, tma) in CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        source, _ = fusion.build(load_problem(path), ["triton_conv3d"])
        k = re.search(r"def _conv3d_(\d+)\(", source).group(1)
        assert ("if CONV_TMA and _tma_ok(x):" in source) == tma, name
        variants = [("tma", SMALL), ("pointers", dict(SMALL, CONV_TMA=False)),
                    ("rn", dict(SMALL, CONV_PRECISION="tf32rn"))] if tma else [("pointers", SMALL)]
        for tag, params in variants:
            cand = tmp_path / f"{name}_{tag}.py"
            cand.write_text(bake(source, params))
            (rounded if tag == "rn" else pairs).extend([path, str(cand)])
            if name in ("k3_relu", "strided_dilated") and tag != "rn":  # which kernel runs
                want = {f"_conv3d_{k}": int(tag == "pointers"), f"_conv3d_{k}_tma": int(tag != "pointers")} if tma \
                    else {f"_conv3d_{k}": 1}
                assert launches(path, str(cand), list(want)) == {"train": want}, (name, tag)
    check_pairs(pairs, seeds=(1,), random_params=True, tol=2e-5)
    # the copy and the filters rounded to TF32: within TF32's rounding of sums of ~400 unit products
    check_pairs(rounded, seeds=(1,), random_params=True, tol=5e-2)


def test_what_it_does_not_take(tmp_path):
    """Groups other than 1 and few input channels are not its; a BatchNorm3d after it is left to
    another group (the conv stays the template's)."""
    for mod, channels in (("nn.Conv3d(16, 16, 3, padding=1, groups=2)", 16), ("nn.Conv3d(8, 16, 3, padding=1)", 8)):
        path = _write(tmp_path, "other", mod, "self.c(x)", f"torch.randn(1, {channels}, 3, 4, 5)")
        assert fusion.build(load_problem(path), ["triton_conv3d"]) is None, mod
    path = _write(tmp_path, "bn", "nn.Sequential(nn.Conv3d(16, 8, 3, padding=1), nn.BatchNorm3d(8))", "self.c(x)",
                  "torch.randn(2, 16, 3, 4, 5)")
    source, _ = fusion.build(load_problem(path), ["triton_conv3d"])
    assert "_launch(_conv3d_0, " in source and 'getattr(self.c, "1")(_evo_fused_0)' in source


def test_without_its_rule_the_chain_after_cudnns_conv3d_is_one_kernel(tmp_path):
    """fuse_chains alone: the Conv3d by the library (conv3d, not conv2d), its elementwise tail in one
    Triton kernel, as the reference computes it."""
    path = _write(tmp_path, "library", "nn.Conv3d(16, 8, 3, padding=1)", "torch.relu(self.c(x)) * 2.0",
                  "torch.randn(2, 16, 3, 5, 6)")
    source, _ = fusion.build(load_problem(path), ["fuse_chains"])
    assert "torch.nn.functional.conv3d(" in source and "_conv3d_" not in source
    cand = tmp_path / "library_c.py"
    cand.write_text(source)
    check_pairs([path, str(cand)], seeds=(1,), random_params=True, tol=2e-5)
