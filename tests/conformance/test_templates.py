"""The Triton template contract, held against every template registered in
evo_kernels/proposers/templates/__init__.py: its space is well formed and its defaults satisfy its
constraints; its example problem builds a candidate through its rules that uses its kernel and passes
the static policy; and that candidate computes the reference's function under Triton's interpreter on
the CPU (all templates in one interpreter process: Triton is imported once)."""
import os
import subprocess
import sys
import textwrap

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import bake, named_space, parse_tunable, satisfies
from evo_kernels.proposers import fusion
from evo_kernels.proposers.templates import TEMPLATES, AnchorTemplate, defaults
from evo_kernels.proposers.rules import RULES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
IDS = [t.name for t in TEMPLATES]

NUMERICS = """
import sys, torch
from pathlib import Path
from evo_kernels.model.problem import import_file, load_problem
pairs = sys.argv[1:]
for i in range(0, len(pairs), 2):
    problem = load_problem(pairs[i])
    module = import_file(Path(pairs[i + 1]), f"conformance_{i}")
    ref = problem.make_model(problem.Model, 0, "cpu")
    new = problem.make_model(module.ModelNew, 1, "cpu")
    new.load_state_dict(ref.state_dict())
    for seed in (1, 2):
        inputs = problem.make_inputs(seed, "cpu")
        with torch.no_grad():
            want, got = ref(*[x.clone() for x in inputs]), new(*[x.clone() for x in inputs])
        assert got.shape == want.shape and got.dtype == want.dtype, (pairs[i + 1], got.shape, want.shape)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4, msg=lambda m: pairs[i + 1] + ": " + m)
    print("ok", pairs[i + 1])
"""


def _kernel_line(template) -> str:
    """A line of the template's kernel text that no other template has: its first comment."""
    return next(line.strip() for line in template.kernel.template.splitlines() if line.strip().startswith("#"))


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_space_is_well_formed(template):
    params = template.params or named_space(template.space_name)[0]
    assert params and all(isinstance(v, list) and v for v in params.values())
    assert satisfies({k: v[0] for k, v in params.items()}, template.constraints)
    assert set(params) <= set(defaults())  # every candidate carries every launch constant
    if template.params:
        assert named_space(template.name) == (template.params, template.constraints)


@pytest.mark.parametrize("template", [t for t in TEMPLATES if isinstance(t, AnchorTemplate)],
                         ids=[t.name for t in TEMPLATES if isinstance(t, AnchorTemplate)])
def test_anchor_template_has_a_rule(template):
    assert template.rule in fusion.rule_names() and template.rule in {r.name for r in RULES}
    assert template.kind in ("gemm", "conv", "reduce") and template.pattern is not None and template.emitter is not None


def _built(template, tmp_path):
    path = tmp_path / f"{template.name}_problem.py"
    path.write_text(HEADER + textwrap.dedent(template.example))
    problem = load_problem(path)
    built = fusion.build(problem, template.example_rules)
    assert built is not None, f"{template.name}: its example builds no candidate with {template.example_rules}"
    source, _ = built
    assert _kernel_line(template) in source, f"{template.name}: the candidate does not use its kernel"
    assert check_source(source) == [], [str(v) for v in check_source(source)]
    parse_tunable(source)
    cand = tmp_path / f"{template.name}_candidate.py"
    cand.write_text(bake(source, template.example_params) if template.example_params else source)
    return path, cand


def test_every_template_computes_its_example(tmp_path):
    pairs = [str(p) for t in TEMPLATES for p in _built(t, tmp_path)]
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", NUMERICS, *pairs], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("ok ") == len(TEMPLATES), out.stdout
