"""The cross-entropy template (templates/cross_entropy.py) under Triton's interpreter: the functional
and module forms, mean (over the rows not ignored), sum and none, an ignore_index some targets hit,
rows split into chunks (few rows, a long row: the combine path) and not split; and what it must
leave to PyTorch (class weights, label smoothing, more than two dims, probabilities as targets)."""

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion

from interpreted import check_pairs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
TARGETS = "torch.where(torch.arange({n}) % 4 == 1, -100, torch.randint(0, {c}, ({n},)))"  # a quarter ignored

ALL_IGNORED = "torch.full(({n},), -100)"
IGNORE_3 = "torch.where(torch.arange({n}) % 4 == 1, 3, torch.randint(4, {c}, ({n},)))"  # 3: ignored here
CASES = {  # name: (forward body, rows, classes, targets)
    "functional_mean": ("return F.cross_entropy(x, t)", 6, 700, TARGETS),
    "functional_sum_ignore_3": ("return F.cross_entropy(x * 4.0, t, reduction='sum', ignore_index=3)", 5, 300,
                                IGNORE_3),
    "functional_none": ("return F.cross_entropy(x, t, reduction='none')", 7, 130, TARGETS),
    "module_mean": ("return self.m(x, t)", 3, 2000, TARGETS),
    "mean_all_ignored_is_nan": ("return F.cross_entropy(x, t)", 4, 50, ALL_IGNORED),
}
# Small tiles and several programs per SM aimed at: few rows are split into chunks (the combine
# path), with a partial last tile; CE_WAVES 0: one program per row.
SPLIT = {"CE_TILE": 32, "CE_WARPS": 4, "CE_WAVES": 8}
UNSPLIT = {"CE_TILE": 32, "CE_WARPS": 4, "CE_WAVES": 0}

def _problem(tmp_path, name: str, body: str, n: int, c: int, targets: str = TARGETS,
             logits: str = "torch.randn({n}, {c})", module: str = "nn.CrossEntropyLoss()") -> str:
    init = f"        self.m = {module}\n" if "self.m" in body else ""
    src = (f"class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n{init}"
           f"    def forward(self, x, t):\n        {body}\n")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + src + f"def get_inputs():\n    return [{logits.format(n=n, c=c)}, "
                    f"{targets.format(n=n, c=c)}]\ndef get_init_inputs():\n    return []\n")
    return str(path)


def test_each_form_is_claimed_and_computes_the_reference(tmp_path):
    pairs = []
    for name, (body, n, c, targets) in CASES.items():
        path = _problem(tmp_path, name, body, n, c, targets)
        built = fusion.build(load_problem(path), ["triton_cross_entropy"])
        assert built is not None, name
        source, spaces = built
        assert spaces == ["cross_entropy"] and "_ce_0_rows" in source, name
        assert check_source(source) == [], (name, [str(v) for v in check_source(source)])
        for i, params in enumerate((SPLIT, UNSPLIT)):
            cand = tmp_path / f"{name}_candidate_{i}.py"
            cand.write_text(bake(source, params))
            pairs += [path, str(cand)]
    check_pairs(pairs, tol=2e-5, equal_nan=True)


@pytest.mark.parametrize("body, logits, targets, module", [
    ("return self.m(x, t)", "torch.randn({n}, {c})", TARGETS, "nn.CrossEntropyLoss(weight=torch.rand(10))"),
    ("return F.cross_entropy(x, t, label_smoothing=0.1)", "torch.randn({n}, {c})", TARGETS, ""),
    ("return F.cross_entropy(x, t)", "torch.randn({n}, {c}, 3)", "torch.randint(0, {c}, ({n}, 3))", ""),
    ("return F.cross_entropy(x, t)", "torch.randn({n}, {c})", "torch.softmax(torch.randn({n}, {c}), -1)", ""),
])
def test_what_pytorch_keeps(tmp_path, body, logits, targets, module):
    path = _problem(tmp_path, "kept", body, 4, 10, targets, logits, module)
    assert fusion.build(load_problem(path), ["triton_cross_entropy"]) is None


def test_the_same_loss_without_class_weights_is_claimed(tmp_path):
    # (so that the weighted case above is left to PyTorch by its weights, not by anything else)
    path = _problem(tmp_path, "unweighted", "return self.m(x, t)", 4, 10)
    assert fusion.build(load_problem(path), ["triton_cross_entropy"]) is not None
