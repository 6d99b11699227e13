"""The conv template's TMA kernel (templates/conv.py, CONV_TMA) under Triton's interpreter: input boxes
of a channels-last copy at each tap's offset (the padding zero-filled), channels not a multiple of the
K block (zero-padded filter rows, boxes past the last channel), tiles cut at the output's edges, a
Conv1d (one row: whole-row tiles), a BatchNorm after it (its statistics from the store, only the
tile's pixels counted; training and eval), an input already channels-last, strided convolutions (the
copy in phase planes), and the TF32-rounded copy;
against the reference and against the template's pointer-gathered kernel (CONV_TMA off)."""

import os
import re
import subprocess
import sys

from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import ROOT, check_batchnorm_train_and_eval, check_pairs, launches

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
TMA_LINE = "# A tile of BH x BW output pixels of one image by BLOCK_N channels"

CASES = {  # name -> (the conv module, forward's return, input)
    "k3_bias_relu": ("nn.Conv2d(16, 8, 3, padding=1)", "torch.relu(self.c(x)) * self.s", "torch.randn(2, 16, 7, 10)"),
    "k5_channels_20": ("nn.Conv2d(20, 12, 5, padding=2, bias=False)", "self.c(x)", "torch.randn(1, 20, 9, 6)"),
    "k3_no_padding": ("nn.Conv2d(16, 8, (3, 2))", "torch.tanh(self.c(x))", "torch.randn(2, 16, 6, 11)"),
    "conv1d": ("nn.Conv1d(16, 8, 3, padding=1)", "self.c(x) - 0.5", "torch.randn(2, 16, 37)"),
    "channels_last_input": ("nn.Conv2d(16, 8, 3, padding=1)", "self.c(x.contiguous(memory_format=torch.channels_last))",
                            "torch.randn(2, 16, 5, 9)"),
    # strided: the copy in phase planes; 9 x 7 pixels at stride 2 leave the planes' last row and
    # column past the input (zeros, read as padding); (2, 3) strides divide 8 x 12 evenly; a Conv1d
    "k3_stride_2_odd": ("nn.Conv2d(16, 8, 3, stride=2, padding=1)", "torch.relu(self.c(x))", "torch.randn(2, 16, 9, 7)"),
    "k35_stride_2_3": ("nn.Conv2d(20, 12, (3, 5), stride=(2, 3), padding=(1, 2))", "self.c(x)",
                       "torch.randn(1, 20, 8, 12)"),
    "conv1d_stride_2": ("nn.Conv1d(16, 8, 5, stride=2, padding=1)", "self.c(x)", "torch.randn(2, 16, 37)"),
}
BN = ("nn.Conv2d(16, 8, 3, padding=1)", "F.relu(self.bn(self.c(x))) * 2.0", "torch.randn(2, 16, 5, 11)")
SMALL = {"CONV_BLOCK_M": 32, "CONV_BLOCK_N": 16, "CONV_BLOCK_K": 16, "CONV_BLOCK_W": 8}


def _write(tmp_path, name: str, mod: str, ret: str, inp: str) -> str:
    src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
           f"        self.c = {mod}\n        self.bn = nn.BatchNorm2d(8)\n"
           f"        self.s = nn.Parameter(torch.randn(8, 1, 1))\n"
           f"    def forward(self, x):\n        return {ret}\n"
           f"def get_inputs():\n    return [{inp}]\ndef get_init_inputs():\n    return []\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src)
    return str(path)


def test_tma_conv_computes_the_reference(tmp_path):
    pairs, rounded = [], []
    for name, (mod, ret, inp) in CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        source, _ = fusion.build(load_problem(path), ["triton_conv"])
        assert TMA_LINE in source and "if CONV_TMA and _tma_ok(x):" in source, name
        for tag, params in (("tma", SMALL), ("pointers", dict(SMALL, CONV_TMA=False)),
                            ("tma_rn", dict(SMALL, CONV_PRECISION="tf32rn"))):
            cand = tmp_path / f"{name}_{tag}.py"
            cand.write_text(bake(source, params))
            (rounded if tag == "tma_rn" else pairs).extend([path, str(cand)])
    check_pairs(pairs, seeds=(1, 2), random_params=True, tol=2e-5)
    # the copy and the filters rounded to TF32: within TF32's rounding of sums of ~100 unit products
    check_pairs(rounded, seeds=(1,), random_params=True, tol=3e-2)


PW_TMA_LINE = "if not EVEN_K:  # a box's rows past the image's channels are the next image's"
PW_CASES = {  # 1x1 convs: the GEMM per image with its tiles by TMA from the NCHW input
    # 60 pixels in tiles of 32 (the last box partly past the row), 20 channels in boxes of 16: the
    # second box's rows 20-31 are the next image's channels, whose 4 first are NaN in image 1; image
    # 0 must stay finite and image 1 all NaN, as the reference's
    "pw_nan_next_image": ("nn.Conv2d(20, 12, 1)", "torch.relu(self.c(x))",
                          "torch.cat([torch.randn(1, 20, 6, 10), torch.where(torch.arange(20).view(1, 20, 1, 1) < 4, "
                          "float('nan'), torch.randn(1, 20, 6, 10))])"),
    "pw_conv1d": ("nn.Conv1d(16, 8, 1)", "self.c(x) - 0.5", "torch.randn(2, 16, 36)"),
    "pw_batchnorm": ("nn.Conv2d(24, 8, 1)", "F.relu6(self.bn(self.c(x)))", "torch.randn(2, 24, 4, 9)"),
}


def test_pointwise_tma_kernel_computes_the_reference(tmp_path):
    pairs, rounded = [], []
    for name, (mod, ret, inp) in PW_CASES.items():
        path = _write(tmp_path, name, mod, ret, inp)
        source, _ = fusion.build(load_problem(path), ["triton_conv", "fuse_chains"])
        assert PW_TMA_LINE in source and "if CONV_TMA and _tma_ok(x, wk) and (oh * ow) % 4 == 0:" in source, name
        assert TMA_LINE not in source, name  # (no channels-last copy)
        assert "num_stages=_fit_stages(bm, bn, CONV_BLOCK_K, CONV_STAGES, 8 * bm * CONV_BLOCK_K))" in source, name
        for tag, params in (("tma", SMALL), ("tma_rn", dict(SMALL, CONV_PRECISION="tf32rn"))):
            cand = tmp_path / f"{name}_{tag}.py"
            cand.write_text(bake(source, params))
            (rounded if tag == "tma_rn" else pairs).extend([path, str(cand)])
    # Image rows not of 16 bytes (45 pixels), and an input that does not start on 16 bytes (a view one
    # element into a buffer): the pointer kernel, at run time, and the reference's result
    for name, ret, inp in (("pw_45", "torch.relu(self.c(x))", "torch.randn(2, 16, 5, 9)"),
                           ("pw_offset", "torch.relu(self.c(torch.cat([x.new_zeros(1), x.flatten()])[1:].view(2, 16, 6, 8)))",
                            "torch.randn(2, 16, 6, 8)")):
        path = _write(tmp_path, name, "nn.Conv2d(16, 8, 1)", ret, inp)
        source, _ = fusion.build(load_problem(path), ["triton_conv"])
        (tmp_path / f"{name}_c.py").write_text(bake(source, SMALL))
        k = re.search(r"def _conv_(\d+)\(", source).group(1)
        assert launches(path, str(tmp_path / f"{name}_c.py"), [f"_conv_{k}", f"_conv_{k}_tma"]) == \
            {"train": {f"_conv_{k}": 1, f"_conv_{k}_tma": 0}}, name
        pairs += [path, str(tmp_path / f"{name}_c.py")]
    check_pairs(pairs, seeds=(1, 2), random_params=True, tol=2e-5, equal_nan=True)
    check_pairs(rounded, seeds=(1,), random_params=True, tol=3e-2, equal_nan=True)
    # the BatchNorm's statistics from its store (training), then folded into it (eval)
    check_batchnorm_train_and_eval(str(tmp_path / "pw_batchnorm.py"), str(tmp_path / "pw_batchnorm_tma.py"))


def test_only_undilated_convolutions_of_channels_in_16_byte_rows_reading_every_phase_take_it(tmp_path):
    for mod, inp in (("nn.Conv2d(16, 8, 1, stride=2)", "torch.randn(1, 16, 8, 8)"),
                     ("nn.Conv2d(16, 8, (3, 1), stride=(1, 2))", "torch.randn(1, 16, 8, 8)"),
                     ("nn.Conv2d(16, 8, 3, padding=2, dilation=2)", "torch.randn(1, 16, 8, 8)"),
                     ("nn.Conv2d(18, 8, 3, padding=1)", "torch.randn(1, 18, 8, 8)"),
                     ("nn.Conv2d(18, 8, 1)", "torch.randn(1, 18, 8, 8)")):
        source, _ = fusion.build(load_problem(_write(tmp_path, "other", mod, "self.c(x)", inp)), ["triton_conv"])
        assert TMA_LINE not in source and PW_TMA_LINE not in source, mod




def test_batchnorm_statistics_from_the_tma_kernels_store(tmp_path):
    """Tiles of 4 x 8 pixels over 5 x 11 outputs: the last row and column of tiles are partly outside,
    and only their pixels count in the statistics."""
    path = _write(tmp_path, "bn", *BN)
    source, _ = fusion.build(load_problem(path), ["triton_conv", "fuse_chains"])
    assert TMA_LINE in source
    cand = tmp_path / "bn_candidate.py"
    cand.write_text(bake(source, SMALL))
    check_batchnorm_train_and_eval(path, str(cand))


OPERANDS_SCRIPT = """
import torch, triton, triton.language as tl
import torch.nn.functional as F
from evo_kernels.proposers.templates.helpers import HELPERS
exec(HELPERS)
torch.manual_seed(0)
# 40 channels: two channel tiles of the copy; 7 x 11 pixels: two pixel tiles; three images.
x = torch.randn(3, 40, 7, 11)
for rounded in (False, True):
    r = _round_tf32 if rounded else (lambda t: t)
    # An ordinary conv's filters (c_out, c, kh, kw): a row per output channel, taps by channels padded.
    w = torch.randn(5, 40, 3, 2)
    xl, wk = _tma_operands(x, w, False, 1, 1, 48, rounded)
    assert torch.equal(xl, r(x.permute(0, 2, 3, 1).contiguous())), "the input's channels-last copy"
    want = F.pad(w.permute(0, 2, 3, 1), (0, 8)).reshape(5, -1)
    assert torch.equal(wk, r(want.contiguous())), "an ordinary conv's filter rows"
    # A transposed conv's (c, c_out, kh, kw) at stride (2, 3): a row per (phase, output channel), the
    # phase's taps kh = jh * 2 + rh (zeros past the filter), channels padded.
    wt = torch.randn(40, 4, 5, 4)
    xl, rows = _tma_operands(x, wt, True, 2, 3, 64, rounded)
    assert torch.equal(xl, r(x.permute(0, 2, 3, 1).contiguous()))
    want = torch.zeros(2, 3, 4, 3, 2, 64)
    for rh in range(2):
        for rw in range(3):
            for jh in range(3):
                for jw in range(2):
                    if jh * 2 + rh < 5 and jw * 3 + rw < 4:
                        want[rh, rw, :, jh, jw, :40] = wt[:, :, jh * 2 + rh, jw * 3 + rw].T
    assert torch.equal(rows, r(want.reshape(24, -1).contiguous())), "a transposed conv's filter rows"
    assert torch.equal(_pack_filters(wt, True, 2, 3, 64, rounded), rows), "the filters alone"
    # An input channels-last already: a view of it (rounded: a copy), not the copy kernel.
    xc = x.contiguous(memory_format=torch.channels_last)
    xl, _ = _tma_operands(xc, w, False, 1, 1, 48, rounded)
    assert torch.equal(xl, r(x.permute(0, 2, 3, 1).contiguous()))
    assert rounded or xl.data_ptr() == xc.data_ptr()
    # Split by a stride of (2, 3): plane (rh, rw) of image n holds pixels (2 i + rh, 3 j + rw); 7 x 11
    # pixels give planes of 4 x 4, zeros past the input. Channels-last or not, the same copy.
    for xs in (x, xc):
        xl, _ = _tma_operands(xs, w, False, 1, 1, 48, rounded, (2, 3))
        want = torch.zeros(3, 2, 3, 4, 4, 40)
        for rh in range(2):
            for rw in range(3):
                plane = x[:, :, rh::2, rw::3].permute(0, 2, 3, 1)
                want[:, rh, rw, :plane.shape[1], :plane.shape[2]] = plane
        assert torch.equal(xl, r(want.reshape(18, 4, 4, 40))), "the copy in phase planes"
# TMA only for tensors that start on 16 bytes; stages that fit shared memory with the 1x1 TMA kernel's
# transposed tile counted (3 stages of 128 x 128 x 64 alone, 2 with it)
assert _tma_ok(x) and _tma_ok(x, w) and not _tma_ok(x.flatten()[1:]) and not _tma_ok(x, w.flatten()[2:])
assert _fit_stages(128, 128, 64, 3) == 3 and _fit_stages(128, 128, 64, 3, 8 * 128 * 64) == 2
# the host's ceiling division and power of two, as Triton's (whose wrappers the drafts avoid)
assert all(_pow2(n) == triton.next_power_of_2(n) for n in range(2049))
assert all(_cdiv(a, b) == triton.cdiv(a, b) for a in range(300) for b in range(1, 40))
print("operands")
"""


def test_one_launch_makes_the_channels_last_copy_and_the_filter_rows():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", OPERANDS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and "operands" in proc.stdout, proc.stderr[-3000:]
