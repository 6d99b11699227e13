"""The cumulative-sum template (templates/scan.py) under Triton's interpreter: the last dim over
several tiles with a ragged last tile, a middle dim, dim 0, a negative dim, rank 1, the method form,
and a few long rows split into chunks (the two-pass path, rows and columns); its error against a
float64 cumsum on a long row no more than twice PyTorch's; and what it must leave to PyTorch
(integer input, a dtype cast, out=)."""
import os
import subprocess
import sys

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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

NUMERICS = """
import sys, torch
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
for i in range(1, len(sys.argv), 2):
    problem = load_problem(sys.argv[i])
    module = import_file(Path(sys.argv[i + 1]), f"scan_{i}")
    ref, new = problem.Model(), module.ModelNew()
    x = problem.make_inputs(7, "cpu")
    with torch.no_grad():
        want, got = ref(*[t.clone() for t in x]), new(*[t.clone() for t in x])
        oracle = ref(*[t.double() for t in x])
    assert got.shape == want.shape and got.dtype == want.dtype, (sys.argv[i], got.shape, got.dtype)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=lambda m: sys.argv[i] + ": " + m)
    err = lambda y: ((y.double() - oracle).norm() / oracle.norm()).item()
    assert err(got) <= 2 * err(want) + 1e-12, (sys.argv[i], err(got), err(want))
    print("ok", Path(sys.argv[i]).stem, err(got), err(want))
"""


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


def _run(pairs: list[str]) -> str:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", NUMERICS, *pairs], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr[-4000:]
    return out.stdout


def test_each_form_computes_torch_cumsum(tmp_path):
    pairs = [p for name, (body, inputs, params) in CASES.items()
             for p in _candidate(tmp_path, name, body, inputs, params)]
    stdout = _run(pairs)
    assert stdout.count("ok ") == len(CASES), stdout


def test_a_long_row_is_as_accurate_as_torch(tmp_path):
    # 6000 positions at the default tile (512): a plain fp32 scan drifts ~50x past PyTorch's CPU
    # cumsum (which accumulates in double); the compensated carry stays within 2x of it.
    pairs = _candidate(tmp_path, "long_row", "return torch.cumsum(x, -1)", "torch.randn(1, 6000) + 0.1",
                       {"SCAN_WAVES": 0})
    stdout = _run(pairs)
    assert stdout.count("ok ") == 1, stdout


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
