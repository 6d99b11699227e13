"""The flash-attention template (templates/attention.py) under Triton's interpreter: causal and not,
queries and keys of different lengths, a boolean and an additive mask, rank 3, a head size that is
not a power of two, q/k/v as transposed views, an explicit scale, hand-written attention through
the sdpa rule; and what it must leave to PyTorch (dropout, a mask with is_causal, grouped heads,
head size above 128)."""
import os

import pytest
import torch.nn.functional as F

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake
from evo_kernels.proposers import fusion
from evo_kernels.proposers.fusion.graph import trace

from interpreted import check_pairs

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
QKV = "[torch.randn({q}), torch.randn({k}), torch.randn({k})]"
CASES = {  # name: (forward body, q shape, k/v shape, extra inputs)
    "causal": ("return F.scaled_dot_product_attention(q, k, v, is_causal=True)", (1, 2, 37, 16), (1, 2, 37, 16), ""),
    "cross_lengths_scale": ("return F.scaled_dot_product_attention(q, k, v, scale=0.3)", (2, 1, 20, 32),
                            (2, 1, 45, 32), ""),
    "causal_more_keys": ("return F.scaled_dot_product_attention(q, k, v, is_causal=True)", (1, 1, 21, 16),
                         (1, 1, 40, 16), ""),
    "bool_mask": ("return F.scaled_dot_product_attention(q, k, v, attn_mask=m)", (1, 2, 24, 16), (1, 2, 33, 16),
                  ", torch.rand(24, 33) > 0.3"),
    "float_mask": ("return F.scaled_dot_product_attention(q, k, v, attn_mask=m)", (2, 2, 18, 16), (2, 2, 18, 16),
                   ", torch.randn(2, 1, 18, 18)"),
    "rank3_head24": ("return F.scaled_dot_product_attention(q, k, v)", (3, 19, 24), (3, 26, 24), ""),
    "transposed_views": ("return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), "
                         "v.transpose(1, 2), is_causal=True).transpose(1, 2)", (1, 33, 2, 16), (1, 33, 2, 16), ""),
}
# Small tiles: several key tiles per row, interior and edge ones, and several query tiles.
PARAMS = {"ATTN_BLOCK_M": 16, "ATTN_BLOCK_N": 16, "ATTN_WARPS": 4, "ATTN_STAGES": 1}

def _problem(tmp_path, name: str, body: str, q: tuple, k: tuple, extra: str) -> str:
    params = "q, k, v" + (", m" if extra else "")
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + f"class Model(nn.Module):\n    def forward(self, {params}):\n        {body}\n"
                    f"def get_inputs():\n    return {QKV.format(q=q, k=k)[:-1]}{extra}]\n"
                    "def get_init_inputs():\n    return []\n")
    return str(path)


def _candidate(tmp_path, problem_path: str, rules=("triton_attention",)) -> str:
    built = fusion.build(load_problem(problem_path), rules)
    assert built is not None, f"{problem_path}: no candidate"
    source, spaces = built
    assert spaces == ["attention"] and "_attn_0_run" in source
    assert check_source(source) == [], [str(v) for v in check_source(source)]
    path = tmp_path / ("cand_" + os.path.basename(problem_path))
    path.write_text(bake(source, PARAMS))
    return str(path)


HAND_WRITTEN = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(30, 30)).view(1, 1, 30, 30))
    def forward(self, q, k, v):
        t = q.size(-2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / 4.0)
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float('-inf'))
        att = torch.softmax(att, dim=-1)
        return att @ v
def get_inputs():
    return [torch.randn(1, 2, 30, 16), torch.randn(1, 2, 30, 16), torch.randn(1, 2, 30, 16)]
def get_init_inputs():
    return []
"""


def test_attention_matches_pytorch_under_the_interpreter(tmp_path):
    args = []
    for name, (body, q, k, extra) in CASES.items():
        prob = _problem(tmp_path, name, body, q, k, extra)
        args += [prob, _candidate(tmp_path, prob)]
    hand = tmp_path / "hand_written.py"
    hand.write_text(HEADER + HAND_WRITTEN)
    args += [str(hand), _candidate(tmp_path, str(hand), ("sdpa", "triton_attention"))]
    # no less accurate than PyTorch's fp32 attention against float64 (a floor: both are ~1e-7)
    check_pairs(args, tol=2e-5, oracle_factor=2.0, oracle_floor=1e-6)


@pytest.mark.parametrize("body,q,k,extra", [
    ("return F.scaled_dot_product_attention(q, k, v, dropout_p=0.1)", (1, 1, 8, 16), (1, 1, 8, 16), ""),
    ("return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=False, enable_gqa=True)",
     (1, 4, 8, 16), (1, 2, 8, 16), ", torch.rand(8, 8) > 0.5"),
    ("return F.scaled_dot_product_attention(q, k, v)", (1, 1, 8, 256), (1, 1, 8, 256), ""),
    ("return F.scaled_dot_product_attention(q, k, v)", (1, 1, 2, 8, 16), (1, 1, 2, 8, 16), ""),
], ids=["dropout", "grouped_heads", "head_256", "rank_5"])
def test_attention_it_leaves_to_pytorch(tmp_path, body, q, k, extra):
    problem = load_problem(_problem(tmp_path, "refused", body, q, k, extra))
    # It traces to an SDPA call (so the pattern, not the tracer, is what leaves it to PyTorch).
    gm = trace(problem.Model, problem.init_inputs(), problem.make_inputs(0, "meta"))
    assert gm is not None and any(n.target is F.scaled_dot_product_attention for n in gm.graph.nodes)
    assert fusion.build(problem, ("triton_attention",)) is None


def test_a_mask_the_tracer_folded_into_a_constant_builds_no_candidate(tmp_path):
    # Sliced with constants, the buffer's mask is computed at trace time and kept as a tensor
    # constant of the traced module, which ModelNew would not have.
    hand = tmp_path / "folded.py"
    hand.write_text(HEADER + HAND_WRITTEN.replace("t = q.size(-2)", "t = 30"))
    assert fusion.build(load_problem(str(hand)), ("sdpa", "triton_attention")) is None


def test_hand_written_attention_gets_the_kernel_in_its_first_draft(tmp_path):
    # triton_attention changes nothing on its own there (no SDPA call until the sdpa rule makes
    # one): it still counts as applying, so the all-templates first draft holds it.
    from evo_kernels.model.candidate import Evaluation
    from evo_kernels.proposers.base import reference_candidate
    from evo_kernels.proposers.rules import RulesProposer, facts_for
    hand = tmp_path / "hand_written.py"
    hand.write_text(HEADER + HAND_WRITTEN)
    problem = load_problem(str(hand))
    assert {"sdpa", "triton_attention"} <= facts_for(problem, "cuda").graph_rules
    drafts = RulesProposer(seed=0, device="cuda").propose(
        problem, [(reference_candidate(problem), Evaluation("ok", speedup=1.0))], [], 1)
    assert "triton_attention" in drafts[0].technique.split("+") and "_attn_0_run" in drafts[0].source
