"""The GEMM template's TMA path (GEMM_TMA: tf32x3 from tensor-descriptor tiles, B split once into its
TF32 halves; where M and N are at least 128) under Triton's interpreter, which runs tensor
descriptors on the CPU: the layouts it takes (a Linear's weight, a batched and a 4-D matmul with B
as it lies, a K split, addmm's bias), that it is the path taken (the split pass launched, the pointer
path's copy not; a narrow N keeps the pointer path; A^T read as it lies), and infinite inputs giving NaN and inf exactly
where fp32 does (a tile with a NaN is summed again with the small products' NaN dropped). The
interpreter's TF32 products are exact fp32 ones; the GPU test checks the accuracy against float64
(tests/test_gpu.py)."""
import textwrap
from pathlib import Path

from evo_kernels.model.problem import import_file, load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import check_pairs, launches

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
SMALL = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GEMM_STAGES": 2}

CASES = {  # name: model and inputs (the triton_gemm rule); K a multiple of 4 (TMA rows of 16 bytes), M
    # and N at least 128 (the path's domain), edges uneven
    "linear": """
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(44, 130)
            def forward(self, x):
                return F.gelu(self.linear(x))
        def get_inputs():
            return [torch.randn(3, 50, 44)]
        """,
    "bmm": """
        class Model(nn.Module):
            def forward(self, a, b):
                return torch.bmm(a, b) * 0.5
        def get_inputs():
            return [torch.randn(2, 137, 20), torch.randn(2, 20, 145)]
        """,
    "matmul_4d": """
        class Model(nn.Module):
            def forward(self, a, b):
                return torch.matmul(a, b)
        def get_inputs():
            return [torch.randn(2, 1, 129, 12), torch.randn(2, 1, 12, 134)]
        """,
    "split_k": """
        class Model(nn.Module):
            def forward(self, a, b):
                return torch.matmul(a.t(), b)
        def get_inputs():
            return [torch.randn(520, 130), torch.randn(520, 128)]
        """,
    "addmm": """
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.bias = nn.Parameter(torch.randn(136))
                self.weight = nn.Parameter(torch.randn(28, 136) * 0.2)
            def forward(self, x):
                return torch.addmm(self.bias, x, self.weight)
        def get_inputs():
            return [torch.randn(141, 28)]
        """,
}


def _write(tmp_path, name: str, body: str, params: dict, tag: str = "") -> tuple[str, str]:
    prob = tmp_path / f"{name}.py"
    prob.write_text(HEADER + textwrap.dedent(body) + "def get_init_inputs():\n    return []\n")
    built = fusion.build(load_problem(prob), ["triton_gemm"])
    assert built is not None, name
    cand = tmp_path / f"{name}_cand{tag}.py"
    cand.write_text(bake(built[0], params))
    return str(prob), str(cand)


def test_the_tma_path_matches_eager_on_every_layout(tmp_path):
    pairs = []
    for name, body in CASES.items():
        pairs += _write(tmp_path, name, body, SMALL)
    # K = 520 sums: two fp32 results differ by their own roundings (~2e-5 here); the oracle bounds the error.
    check_pairs(pairs, seeds=(1,), tol=5e-5, oracle_factor=2.0, oracle_floor=1e-6)


def test_the_tma_path_is_the_one_taken(tmp_path):
    # A Linear's weight is K-major already: the pointer path copies nothing, the TMA path splits it once.
    prob, on = _write(tmp_path, "linear", CASES["linear"], SMALL)
    _, off = _write(tmp_path, "linear", CASES["linear"], dict(SMALL, GEMM_TMA=False), "_off")
    assert launches(prob, on, ["_gemm_0", "_kmajor_copy"]) == {"train": {"_gemm_0": 1, "_kmajor_copy": 1}}
    assert launches(prob, off, ["_gemm_0", "_kmajor_copy"]) == {"train": {"_gemm_0": 1, "_kmajor_copy": 0}}
    # 40 columns: the pointer kernel, read by the A rows' bandwidth (level1/05), as GEMM_TMA off.
    narrow = CASES["linear"].replace("nn.Linear(44, 130)", "nn.Linear(44, 40)")
    prob, cand = _write(tmp_path, "narrow", narrow, SMALL)
    assert launches(prob, cand, ["_gemm_0", "_kmajor_copy"]) == {"train": {"_gemm_0": 1, "_kmajor_copy": 0}}

    # A^T B with A's M dim contiguous: the TMA path reads A's boxes from A^T as it lies (only B's split
    # pass copies); the pointer path copies both K-major first; the same products either way.
    at = CASES["split_k"].replace("torch.randn(520, 130)", "torch.randn(260, 132)").replace(
        "torch.randn(520, 128)", "torch.randn(260, 136)")
    prob, as_lies = _write(tmp_path, "a_t", at, SMALL)
    _, copied = _write(tmp_path, "a_t", at, dict(SMALL, GEMM_TMA=False), "_copied")
    gemm, copies = _recorded(prob, as_lies)
    assert (gemm["TMA"], gemm["A_T"], copies) == (True, True, [True])  # B's split pass only
    gemm, copies = _recorded(prob, copied)
    assert (gemm["TMA"], gemm["A_T"], copies) == (False, False, [False, False])  # A and B copied K-major
    check_pairs([prob, as_lies, prob, copied], seeds=(1,), tol=2e-5, oracle_factor=2.0, oracle_floor=1e-6)


def _recorded(prob: str, cand: str) -> tuple[dict, list[bool]]:
    """The keyword arguments of the candidate's GEMM launch, and each copy launch's SPLIT (recorded,
    not run)."""
    module = import_file(Path(cand), f"recorded_{Path(cand).stem}")
    gemm, copies = {}, []

    class Recorder:
        def __init__(self, record):
            self.record = record

        def __getitem__(self, grid):
            return lambda *args, **kwargs: self.record(kwargs)
    module._gemm_0 = Recorder(gemm.update)
    module._kmajor_copy = Recorder(lambda kwargs: copies.append(kwargs["SPLIT"]))
    module._ew_0 = Recorder(lambda kwargs: None)
    problem = load_problem(prob)
    problem.make_model(module.ModelNew, 1, "cpu")(*problem.make_inputs(1, "cpu"))
    return gemm, copies


INFINITE = """
    class Model(nn.Module):
        def forward(self, a, b):
            return torch.matmul(a, b)
    def get_inputs():
        a, b = torch.randn(130, 24), torch.randn(24, 130)
        a[3, 5] = float("inf")    # row 3: inf, or NaN where b[5] has a zero
        a[9, 2] = float("-inf")
        b[7, 11] = float("-inf")  # column 11: -inf or inf by a's signs
        b[5, 20] = 0.0            # inf * 0 in row 3, column 20: NaN, as fp32
        return [a, b]
    """


def test_infinite_inputs_give_nan_and_inf_where_fp32_does(tmp_path):
    # The split halves of an infinite value are (inf, NaN): a tile with a NaN is summed again with the
    # small products' NaN dropped, so only the big products (inf * b) decide, as fp32's do.
    pairs = _write(tmp_path, "infinite", INFINITE, SMALL)
    check_pairs(list(pairs), seeds=(1,), tol=2e-5, equal_nan=True)
