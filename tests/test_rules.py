"""The rule library: applicability on the suite, candidates that pass the policy, mutation (a rule
added, a tuned value stepped), crossover (rules of both parents, the graph parent's values)."""
import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import torch

from evo_kernels.model.candidate import Candidate, Evaluation
from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import import_file, load_problem
from evo_kernels.proposers import fusion
from evo_kernels.proposers.base import reference_candidate
from evo_kernels.proposers.rules import (BY_NAME, RULES, RulesProposer, bake, baked_params, facts_for, rule_names,
                                         space_of)
from evo_kernels.model.tunables import parse_screen_first, parse_tunable, satisfies

SUITE = Path(__file__).resolve().parent.parent / "experiments" / "problems"
OK = Evaluation("ok", speedup=1.0)


def _suite(name):
    return load_problem(SUITE / f"{name}.py")


def test_rules_are_a_flat_list_with_unique_names_and_known_graph_options():
    assert len({r.name for r in RULES}) == len(RULES)
    assert [r.name for r in RULES if r.graph] == fusion.rule_names()
    assert all(rule_names(r.name) == [r.name] for r in RULES)
    assert rule_names("custom") is None and rule_names("reference") == []


@pytest.mark.parametrize("name, expected", [
    ("level2/05_Gemm_SiLU_Clamp", {"triton_gemm", "fuse_chains"}),
    ("level2/01_Gemm_BiasAdd_ReLU", {"triton_gemm", "fuse_chains", "addmm"}),
    ("level2/14_Conv2d_Tanh_Scale_BiasAdd_MaxPool", {"triton_conv", "fuse_chains"}),
    ("level3/09_CausalSelfAttention", {"triton_gemm", "fuse_chains", "sdpa", "triton_attention"}),  # after sdpa
    ("level3/12_LongSequenceAttention", {"triton_attention"}),
    ("level1/28_Cumsum", {"triton_scan"}),
    ("level1/23_AvgPool2d", {"fuse_chains", "avgpool_conv"}),
    ("level1/26_Tanh", set()),
    ("level1/33_CrossEntropy_large_vocab", {"triton_cross_entropy"}),
])
def test_graph_rules_apply_where_the_traced_forward_has_their_pattern(name, expected):
    assert set(facts_for(_suite(name), "cuda").graph_rules) == expected


@pytest.mark.parametrize("name", ["level2/06_Gemm_BatchNorm_ReLU", "level2/11_Conv2d_BatchNorm_ReLU",
                                  "level3/03_TransformerEncoderBlock", "level3/05_SmallCNN"])
def test_every_draft_passes_the_policy_and_declares_a_valid_space(name):
    problem = _suite(name)
    proposer = RulesProposer(seed=1, device="cuda")
    ref = reference_candidate(problem)
    drafts = proposer.propose(problem, [(ref, OK)], [], 20)
    assert {"compile", "fuse_chains"} <= {d.technique for d in drafts}
    for d in drafts:
        assert check_source(d.source) == [], (d.technique, [str(v) for v in check_source(d.source)])
        compile(d.source, d.technique, "exec")
        parse_tunable(d.source)
    # Graph rules come first: they carry the expected gains; all template rules together first of all.
    assert all(BY_NAME[n].graph for n in drafts[0].technique.split("+"))
    assert all(BY_NAME[d.technique].graph for d in drafts[1:3])


@pytest.mark.parametrize("name, first", [
    ("level2/05_Gemm_SiLU_Clamp", "triton_gemm+fuse_chains"),
    ("level3/09_CausalSelfAttention", "triton_gemm+triton_attention+sdpa+fuse_chains"),
    ("level1/23_AvgPool2d", "fuse_chains"),  # one template rule: nothing to combine
])
def test_from_the_reference_every_template_rule_together_is_drafted_first(name, first):
    problem = _suite(name)
    ref = reference_candidate(problem)
    drafts = RulesProposer(seed=0, device="cuda").propose(problem, [(ref, OK)], [], 8)
    assert drafts[0].technique == first
    assert len({d.technique for d in drafts}) == len(drafts)
    # Not from a candidate that already has rules: there the search adds one rule at a time.
    gemm = next(d for d in drafts if d.technique == "triton_gemm") if "gemm" in first else None
    if gemm is not None:
        children = RulesProposer(seed=0, device="cuda").propose(problem, [(gemm, OK)], [], 8)
        assert all(len(c.technique.split("+")) == 2 for c in children if c.technique != "triton_gemm")


def test_cpu_runs_get_no_triton_rules():
    facts = facts_for(_suite("level2/05_Gemm_SiLU_Clamp"), "cpu")
    assert not any(r.applies(facts) for r in RULES if r.name in ("triton_gemm", "triton_conv", "fuse_chains"))


def test_bake_fixes_values_and_keeps_the_space_for_later_mutations():
    problem = _suite("level2/05_Gemm_SiLU_Clamp")
    source = fusion.build(problem, ['triton_gemm'])[0]
    baked = bake(source, {"BLOCK_N": 64, "PRECISION": "ieee"})
    assert parse_tunable(baked) == ({}, [])  # evaluated once, as it is
    assert baked_params(baked) == {"BLOCK_N": 64, "PRECISION": "ieee"}
    assert space_of(baked)[0] == space_of(source)[0] and "BLOCK_M" in space_of(source)[0]
    again = bake(baked, {"BLOCK_M": 64})
    assert baked_params(again) == {"BLOCK_N": 64, "PRECISION": "ieee", "BLOCK_M": 64}
    assert check_source(again) == []


def test_perturbation_steps_one_tuned_value_within_the_space():
    problem = _suite("level2/05_Gemm_SiLU_Clamp")
    proposer = RulesProposer(seed=3, device="cuda")
    ref = reference_candidate(problem)
    tuned = next(d for d in proposer.propose(problem, [(ref, OK)], [], 8) if d.technique == "triton_gemm")
    space, constraints = space_of(tuned.source)
    params = {k: v[0] for k, v in space.items()}
    parent = Candidate(tuned.source, params, proposer="rules", technique="triton_gemm", generation=1)
    seen = set()
    for _ in range(12):
        child = proposer._perturb(parent)
        values = baked_params(child.source)
        changed = [k for k in space if values[k] != params[k]]
        assert len(changed) == 1 and values[changed[0]] in space[changed[0]]
        assert satisfies(values, constraints)
        assert child.technique == "triton_gemm" and parse_tunable(child.source) == ({}, [])
        seen.add(changed[0])
    assert len(seen) >= 3


def test_crossover_keeps_the_graph_parents_values_and_tunes_the_other_parents_rule():
    problem = _suite("level2/05_Gemm_SiLU_Clamp")
    proposer = RulesProposer(seed=0, device="cuda")
    ref = reference_candidate(problem)
    drafts = {d.technique: d for d in proposer.propose(problem, [(ref, OK)], [], 8)}
    gemm = dataclasses.replace(drafts["triton_gemm"], params={"BLOCK_N": 64, "GEMM_WARPS": 4})
    comp = dataclasses.replace(drafts["compile"], params={"COMPILE_MODE": "max-autotune"})
    children = proposer.propose(problem, [(gemm, Evaluation("ok", speedup=1.5)), (comp, OK)], [], 1)
    child = children[0]
    assert child.technique == "triton_gemm+compile"
    assert baked_params(child.source) == {"BLOCK_N": 64, "GEMM_WARPS": 4}
    space, _ = parse_tunable(child.source)
    assert set(space) == {"COMPILE_MODE"}
    assert check_source(child.source) == []


def test_a_child_keeps_its_parents_tuned_values_only_where_they_cover_its_space():
    problem = _suite("level3/03_TransformerEncoderBlock")
    proposer = RulesProposer(seed=0, device="cuda")
    ref = reference_candidate(problem)
    gemm = next(d for d in proposer.propose(problem, [(ref, OK)], [], 8) if d.technique == "triton_gemm")
    space, _ = space_of(gemm.source)
    tuned = dataclasses.replace(gemm, params={k: v[-1] if k == "GROUP_M" else v[0] for k, v in space.items()})
    children = {c.technique: c for c in proposer.propose(problem, [(tuned, Evaluation("ok", speedup=1.6))], [], 8)}
    same_space = children["sdpa+triton_gemm"] if "sdpa+triton_gemm" in children else children["triton_gemm+sdpa"]
    assert parse_tunable(same_space.source) == ({}, []) and baked_params(same_space.source)["GROUP_M"] == 16
    wider = children["triton_gemm+fuse_chains"]  # adds row kernels: the merged space is tuned afresh
    assert {"BLOCK_M", "ROW_TILE"} <= set(parse_tunable(wider.source)[0]) and not baked_params(wider.source)


ATTENTION = """
import math
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)
        self.register_buffer("mask", torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, 4, 8).transpose(1, 2)
        k = k.view(B, T, 4, 8).transpose(1, 2)
        v = v.view(B, T, 4, 8).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(8))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        return y.transpose(1, 2).contiguous().view(B, T, C)


def get_inputs():
    return [torch.randn(2, 16, 32)]


def get_init_inputs():
    return []
"""

POOL = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.pool(self.conv(x)))


def get_inputs():
    return [torch.randn(2, 3, 10, 9)]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize("source, rule", [(ATTENTION, "sdpa"), (POOL, "avgpool_conv"), (POOL, "cudnn_benchmark")])
def test_library_substitutions_compute_the_same_function(tmp_path, source, rule):
    path = tmp_path / "prob.py"
    path.write_text(textwrap.dedent(source))
    problem = load_problem(path)
    device = "cuda" if rule == "cudnn_benchmark" else "cpu"  # the facts; the model runs on the CPU
    drafts = RulesProposer(seed=0, device=device).propose(problem, [(reference_candidate(problem), OK)], [], 20)
    draft = next(d for d in drafts if d.technique == rule)
    assert check_source(draft.source) == []
    cand = tmp_path / "cand.py"
    cand.write_text(draft.source)
    module = import_file(cand, "rules_test")
    ref = problem.make_model(problem.Model, 0, "cpu")
    new = problem.make_model(module.ModelNew, 1, "cpu")
    new.load_state_dict(ref.state_dict())
    x = problem.make_inputs(5, "cpu")
    before = torch.backends.cudnn.benchmark
    with torch.no_grad():
        torch.testing.assert_close(new(*x), ref(*x), atol=1e-5, rtol=1e-5)
    assert torch.backends.cudnn.benchmark == before  # the switch is put back after the call
    if rule == "sdpa":
        assert "scaled_dot_product_attention" in draft.source and "softmax" not in draft.source.split("class ModelNew")[1]


def test_policy_allows_exactly_the_cudnn_benchmark_switch():
    allowed = "import torch\n\ndef f():\n    torch.backends.cudnn.benchmark = True\n"
    assert check_source(allowed) == []
    refused = [
        "import torch\ntorch.backends.cudnn.deterministic = True\n",
        "import torch\ntorch.backends.cudnn.allow_tf32 = True\n",
        "import torch\nc = torch.backends.cudnn\nc.benchmark = True\n",  # through an alias
        "import numpy as torch\ntorch.backends.cudnn.benchmark = True\n",  # not torch
        "import torch\ntorch.backends.cudnn.benchmark += 1\n",
        "import torch\ntorch.backends.benchmark = True\n",
    ]
    for src in refused:
        assert check_source(src), src


def test_baking_a_layered_source_keeps_the_code_on_top_of_its_values():
    """A wrapper rule layered over a baked base (values block in the middle) keeps its ModelNew when
    the whole is baked again: the old block goes, the merged values come last."""
    base = bake("X = 1\nTUNABLE = {'X': [1, 2]}\n\nclass _EvoBase:\n    pass\n", {"X": 2})
    layered = base + "\n\n# evo_kernels rules: compile\nMODE = 'a'\nTUNABLE = {'MODE': ['a', 'b']}\n\n\n" \
                     "class ModelNew(_EvoBase):\n    pass\n"
    again = bake(layered, {"MODE": "b"})
    assert "class ModelNew(_EvoBase)" in again and "class _EvoBase" in again
    assert again.count("# Values chosen by the search.") == 1 and baked_params(again) == {"X": 2, "MODE": "b"}
    namespace = {}
    exec(compile(again, "again", "exec"), namespace)
    assert namespace["X"] == 2 and namespace["MODE"] == "b" and "ModelNew" in namespace


def test_a_template_slower_than_the_baseline_alone_is_not_drafted_again_unless_it_helped_a_win():
    from evo_kernels.proposers.base import Context
    problem = _suite("level2/05_Gemm_SiLU_Clamp")
    ref = reference_candidate(problem)

    def drafted(techniques):
        proposer = RulesProposer(seed=0, device="cuda")
        proposer.observe(Context(3, {}, [], {}, techniques=techniques))
        return [d.technique for d in proposer.propose(problem, [(ref, OK)], [], 20)]

    fresh = drafted({})
    assert "triton_gemm+fuse_chains" in fresh and "triton_gemm" in fresh
    lost = drafted({"triton_gemm": 0.8, "compile": 0.5})
    assert lost and not any("triton_gemm" in t.split("+") for t in lost), lost
    assert "compile" in lost  # a wrapper rule is not a template: its own loss does not exclude it
    # The same template in a candidate that beat the baseline: still drafted.
    helped = drafted({"triton_gemm": 0.8, "triton_gemm+fuse_chains": 1.3})
    assert "triton_gemm+fuse_chains" in helped and "triton_gemm" in helped


def test_drafts_start_from_the_seeds_of_the_baselines_precision_switches():
    # Where cuDNN runs TF32 (the baselines' flags), a conv draft starts from rounded TF32 products and
    # the tiles measured fastest with them; with the switch off, from the space's defaults. Drafts
    # without a conv template are untouched.
    from evo_kernels.proposers.base import Context
    problem = _suite("level2/11_Conv2d_BatchNorm_ReLU")
    ref = reference_candidate(problem)

    def drafts(flags):
        proposer = RulesProposer(seed=0, device="cuda")
        proposer.observe(Context(0, {"flags": flags}, [], {}))
        return {d.technique: d for d in proposer.propose(problem, [(ref, OK)], [], 20)}

    from evo_kernels.harness.precision import precision_flags
    as_run = precision_flags()  # the flags as the baselines record them; PyTorch's defaults here
    assert as_run["cudnn.allow_tf32"] is True
    on = drafts(as_run)
    conv = on["triton_conv"]
    assert conv.params == {"CONV_PRECISION": "tf32rn", "CONV_BLOCK_K": 32, "CONV_STAGES": 4}
    space, constraints = space_of(conv.source)
    assert satisfies({**{k: v[0] for k, v in space.items()}, **conv.params}, constraints)
    assert on["fuse_chains"].params == {}  # cuDNN's conv and a chain kernel: no conv space
    # The template's alternatives to its seeds, for the draft's screen to try next.
    assert parse_screen_first(conv.source) == [
        {"CONV_BLOCK_M": 64, "CONV_BLOCK_N": 256, "CONV_WARPS": 4, "CONV_STAGES": 3},
        {"CONV_BLOCK_N": 256, "CONV_STAGES": 3}]
    assert parse_screen_first(on["fuse_chains"].source) == []
    off = drafts(dict(as_run, **{"cudnn.allow_tf32": False}))
    assert off["triton_conv"].params == {} and parse_screen_first(off["triton_conv"].source) == []
    assert off["triton_conv"].source == re.sub(r"\nSCREEN_FIRST = .*", "", conv.source)
