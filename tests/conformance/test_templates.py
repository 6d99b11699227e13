"""The Triton template contract, held against every template registered in
evo_kernels/proposers/templates/__init__.py: its space is well formed and its defaults satisfy its
constraints; its example problem builds a candidate through its rules that uses its kernel and passes
the static policy; and that candidate computes the reference's function under Triton's interpreter on
the CPU (all templates in one interpreter process: Triton is imported once)."""
import inspect
import re
import textwrap

import pytest

from evo_kernels.harness.policy import check_source
from evo_kernels.harness.precision import precision_flags
from evo_kernels.model.problem import load_problem
from evo_kernels.model.tunables import applied, bake, named_space, parse_tunable, satisfies
from evo_kernels.proposers import fusion
from evo_kernels.proposers.templates import TEMPLATES, AnchorTemplate, defaults
from evo_kernels.proposers.rules import RULES

from interpreted import check_pairs

HEADER = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
IDS = [t.name for t in TEMPLATES]

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
    # The capabilities it declares are options its emitter takes (fusion passes them by name).
    options = inspect.signature(template.emitter).parameters
    assert template.defers == ("defer" in options) and template.takes_prologue == ("prologue" in options)


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_seeds_are_values_of_the_space(template):
    """A template's seeds (values to start from under a baseline precision switch) lie in its space
    and, with the other defaults, satisfy its constraints; so do its alternatives to them."""
    params = template.params or named_space(template.space_name)[0]
    for switch, seeds in template.seeds.items():
        assert switch in precision_flags()  # a flag as the baselines record it, e.g. cudnn.allow_tf32
        assert all(k in params and v in params[k] for k, v in seeds.items()), (switch, seeds)
        assert satisfies({**{k: v[0] for k, v in params.items()}, **seeds}, template.constraints)
    # Its alternatives to the seeds (a draft's screen tries them first) change them within the space.
    for switch, alternatives in template.alternatives.items():
        assert switch in precision_flags()
        start = {**{k: v[0] for k, v in params.items()}, **template.seeds.get(switch, {})}
        for alt in alternatives:
            assert applied(alt, start, params, template.constraints) not in (None, start), (switch, alt)


def _built(template, tmp_path):
    path = tmp_path / f"{template.name}_problem.py"
    path.write_text(HEADER + textwrap.dedent(template.example))
    problem = load_problem(path)
    built = fusion.build(problem, template.example_rules)
    assert built is not None, f"{template.name}: its example builds no candidate with {template.example_rules}"
    source, _ = built
    assert _kernel_line(template) in source, f"{template.name}: the candidate does not use its kernel"
    assert check_source(source) == [], [str(v) for v in check_source(source)]
    # Its kernels launched through _launch (a kept compiled kernel), never by Triton's dispatch each call.
    jitted = re.findall(r"^@triton\.jit\ndef (\w+)\(", source, re.M)
    assert jitted and not [n for n in jitted if re.search(rf"\b{n}\[", source)], template.name
    parse_tunable(source)
    cand = tmp_path / f"{template.name}_candidate.py"
    cand.write_text(bake(source, template.example_params) if template.example_params else source)
    return path, cand


def test_every_template_computes_its_example(tmp_path):
    pairs = [str(p) for t in TEMPLATES for p in _built(t, tmp_path)]
    check_pairs(pairs, tol=1e-4, seeds=(1, 2))
