"""The cumulative-sum template (templates/scan.py) under Triton's interpreter: the last dim over
several tiles with a ragged last tile, a middle dim, dim 0, a negative dim, rank 1, the method form,
and a few long rows split into chunks (the two-pass path, rows and columns); its error against a
float64 cumsum on a long row no more than twice PyTorch's; and what it must leave to PyTorch
(integer input, a dtype cast, out=)."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import check_pairs

HEADER = "import torch\nimport torch.nn as nn\n"

# name: (forward body, input, tunables). Tiles are small so that a few thousand elements still span
# several tiles; SCAN_WAVES 0 keeps one pass, 8 (with 4 "SMs" on the CPU) splits the few long scans.
ONE_PASS = {"SCAN_TILE": 64, "SCAN_BLOCK_B": 4, "SCAN_WARPS": 4, "SCAN_WAVES": 0}
SPLIT = {"SCAN_TILE": 32, "SCAN_BLOCK_B": 4, "SCAN_WARPS": 4, "SCAN_WAVES": 8}
CASES = {
    "last_dim_ragged": ("return torch.cumsum(x, dim=1)", "torch.randn(3, 650)", ONE_PASS),
    "middle_dim": ("return torch.cumsum(x, 1)", "torch.randn(2, 300, 5)", ONE_PASS),
    "dim_0": ("return torch.cumsum(x * 2.0, dim=0)", "torch.randn(90, 7)", ONE_PASS),
    "negative_dim": ("return torch.cumsum(x, dim=-2)", "torch.randn(2, 70, 3)", ONE_PASS),
    "rank_1": ("return torch.cumsum(x, 0)", "torch.randn(1000)", ONE_PASS),
    "method_short_rows": ("return x.cumsum(-1, dtype=torch.float32)", "torch.randn(37, 5)", ONE_PASS),
    "split_rows": ("return x.cumsum(dim=1)", "torch.randn(2, 900)", SPLIT),
    "split_columns": ("return torch.cumsum(x, 0)", "torch.randn(400, 6)", SPLIT),
}

def _problem(tmp_path, name: str, body: str, inputs: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + f"class Model(nn.Module):\n    def forward(self, x):\n        {body}\n"
                    f"def get_inputs():\n    return [{inputs}]\ndef get_init_inputs():\n    return []\n")
    return str(path)


def _candidate(tmp_path, name: str, body: str, inputs: str, params: dict) -> list[str]:
    path = _problem(tmp_path, name, body, inputs)
    built = fusion.build(load_problem(path), ["triton_scan"])
    assert built is not None, name
    source, spaces = built
    assert spaces == ["scan"] and "_scan_0_run" in source, name
    assert check_source(source) == [], (name, [str(v) for v in check_source(source)])
    cand = tmp_path / f"{name}_candidate.py"
    cand.write_text(bake(source, params))
    return [path, str(cand)]


# PyTorch's CPU cumsum accumulates in double: its error against float64 is the outputs' rounding
# alone. Every partial sum a pair (SCAN_PAIRED 1) stays within 2x of it; a tile's prefixes in plain
# fp32 (0) add up to about an ulp of the outputs where a tile's prefixes are as large as the carry (a
# relative error under 2e-7; PyTorch's fp32 scan on a GPU reads 8.1e-07 on rows of 16384).
ACCURACY = {1: {"oracle_factor": 2.0, "oracle_floor": 1e-12}, 0: {"oracle_factor": 2.0, "oracle_floor": 2e-7}}


@pytest.mark.parametrize("paired", [0, 1])
def test_each_form_computes_torch_cumsum(tmp_path, paired):
    pairs = [p for name, (body, inputs, params) in CASES.items()
             for p in _candidate(tmp_path, name, body, inputs, {**params, "SCAN_PAIRED": paired})]
    check_pairs(pairs, **ACCURACY[paired])


@pytest.mark.parametrize("paired, length", [(0, 100000), (1, 6000)])
def test_a_long_row_is_as_accurate_as_torch(tmp_path, paired, length):
    # Positions drifting away from 0, at the default tile (512): the carry dwarfs a tile's prefixes,
    # and its compensation keeps the error within 2x of the outputs' rounding either way (on 100000,
    # an fp32 carry: 4x; a plain fp32 scan: 110x). (The paired scan is interpreted 4x slower.)
    pairs = _candidate(tmp_path, "long_row", "return torch.cumsum(x, -1)", f"torch.randn(1, {length}) + 0.1",
                       {"SCAN_WAVES": 0, "SCAN_PAIRED": paired})
    check_pairs(pairs, oracle_factor=2.0, oracle_floor=1e-12)


@pytest.mark.parametrize("body, inputs", [
    ("return torch.cumsum(x, 1)", "torch.randint(0, 9, (4, 10))"),
    ("return torch.cumsum(x, 1, dtype=torch.float64)", "torch.randn(4, 10)"),
    ("return x.cumsum(1, dtype=torch.float16)", "torch.randn(4, 10)"),
    ("return torch.cumsum(x, 1, out=torch.empty(4, 10))", "torch.randn(4, 10)"),
    ("return torch.cumsum(x.double(), 0)", "torch.randn(4, 10)"),
])
def test_what_pytorch_keeps(tmp_path, body, inputs):
    path = _problem(tmp_path, "kept", body, inputs)
    assert fusion.build(load_problem(path), ["triton_scan"]) is None


def test_the_same_cumsum_in_fp32_is_claimed(tmp_path):
    # (so that the cases above are left to PyTorch by their dtype or out=, not by anything else)
    path = _problem(tmp_path, "claimed", "return torch.cumsum(x, 1)", "torch.randn(4, 10)")
    assert fusion.build(load_problem(path), ["triton_scan"]) is not None
