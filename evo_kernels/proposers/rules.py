"""The offline rule library: named transforms kept as a data list, each with an applicability test.

A rules candidate is the problem's `Model` (or another candidate's `ModelNew`) subclassed, with each
rule adding lines to `__init__`, preparing the inputs, or wrapping the forward function. Its
technique names its rules ("channels_last+compile"), so mutation adds a rule and crossover takes
the union of two parents' rules; tunable values (compile modes, options) are searched by tuning.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..candidate import Candidate
from ..problem import Problem
from .base import Member, Proposer


@dataclass(frozen=True)
class Facts:
    """What the applicability tests look at: the device and the reference's module types."""

    device: str
    module_types: frozenset[str]

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def conv2d(self) -> bool:
        return bool(self.module_types & {"Conv2d", "ConvTranspose2d"})


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[Facts], bool]
    init: tuple[str, ...] = ()  # run in __init__ after the base class's
    prepare: tuple[str, ...] = ()  # run in forward on `inputs` (a list) before the call
    wrap: str = ""  # an expression of `fn`, the forward so far
    tunable: dict[str, list[Any]] = field(default_factory=dict)  # first value is the default
    group: str = ""  # at most one rule of a group in a candidate


def _compile_modes(facts: Facts) -> list[str]:
    modes = ["default", "max-autotune-no-cudagraphs"]
    return modes + ["reduce-overhead", "max-autotune"] if facts.gpu else modes


RULES: list[Rule] = [
    Rule("compile", lambda f: True,
         wrap="torch.compile(fn, mode=COMPILE_MODE, dynamic=False)",
         tunable={"COMPILE_MODE": ["default", "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune"]},
         group="compile"),
    Rule("compile_tuned", lambda f: f.gpu,
         wrap=("torch.compile(fn, dynamic=False, options={'coordinate_descent_tuning': COORDINATE_DESCENT, "
               "'epilogue_fusion': True, 'max_autotune': MAX_AUTOTUNE, 'triton.cudagraphs': CUDA_GRAPHS})"),
         tunable={"COORDINATE_DESCENT": [True, False], "MAX_AUTOTUNE": [False, True], "CUDA_GRAPHS": [False, True]},
         group="compile"),
    Rule("channels_last", lambda f: f.conv2d,
         init=("self.to(memory_format=torch.channels_last)",),
         prepare=("inputs = [x.contiguous(memory_format=torch.channels_last) "
                  "if isinstance(x, torch.Tensor) and x.dim() == 4 else x for x in inputs]",)),
]
BY_NAME = {r.name: r for r in RULES}


def facts_for(problem: Problem, device: str) -> Facts:
    """Build the reference on the meta device (no memory) and list its module types."""
    import torch
    try:
        with torch.device("meta"):
            model = problem.Model(*problem.init_inputs())
        types = frozenset(type(m).__name__ for m in model.modules() if isinstance(m, nn.Module))
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta just gets fewer rules
        types = frozenset()
    return Facts(device=device, module_types=types)


def rule_names(technique: str) -> list[str] | None:
    """The rules of a rules-built technique, or None when the candidate was not built by rules."""
    if technique == "reference":
        return []
    names = technique.split("+")
    return names if all(n in BY_NAME for n in names) else None


def build_source(base_source: str, base_class: str, rules: list[Rule], facts: Facts) -> str:
    """A candidate module: the base code, then `ModelNew` subclassing `base_class` with the rules."""
    lines = [base_source.rstrip(), "", "", f"# evo_kernels rules: {'+'.join(r.name for r in rules)}",
             "import torch", ""]
    tunable: dict[str, list[Any]] = {}
    for r in rules:
        for key, values in r.tunable.items():
            if key == "COMPILE_MODE":
                values = [v for v in values if v in _compile_modes(facts)]
            tunable[key] = values
            lines.append(f"{key} = {values[0]!r}")
    if tunable:
        lines.append(f"TUNABLE = {tunable!r}")
    lines += ["", "", f"class ModelNew({base_class}):", "    def __init__(self, *args, **kwargs):",
              "        super().__init__(*args, **kwargs)"]
    lines += [f"        {line}" for r in rules for line in r.init]
    lines.append("        fn = super().forward")
    lines += [f"        fn = {r.wrap}" for r in rules if r.wrap]
    lines += ["        self._fast_forward = fn", "", "    def forward(self, *inputs):"]
    lines += [f"        {line}" for r in rules for line in r.prepare]
    lines += ["        return self._fast_forward(*inputs)", ""]
    return "\n".join(lines)


def _compatible(rules: list[Rule]) -> bool:
    groups = [r.group for r in rules if r.group]
    return len(groups) == len(set(groups)) and len({r.name for r in rules}) == len(rules)


class RulesProposer(Proposer):
    name = "rules"

    def _make(self, problem: Problem, parent: Candidate, names: list[str], facts: Facts) -> Candidate | None:
        rules = [BY_NAME[n] for n in names]
        if not _compatible(rules):
            return None
        own = rule_names(parent.technique)
        if own is not None:  # rules-built or the reference: rebuild from the problem, cleanly
            rules = sorted(rules, key=RULES.index)
            source = build_source(problem.source, "Model", rules, facts)
            technique = "+".join(r.name for r in rules)
        else:  # another proposer's candidate: layer the new rules on top of its ModelNew
            added = [r for r in rules if r.name not in parent.technique.split("+")]
            base = re.sub(r"\bModelNew\b", "_EvoBase", parent.source)
            source = build_source(base, "_EvoBase", added, facts)
            technique = parent.technique + "+" + "+".join(r.name for r in added)
        return Candidate(source=source, parents=(parent.id,), proposer=self.name, technique=technique,
                         generation=parent.generation + 1)

    def propose(self, problem: Problem, parents: list[Member], feedback: list[Member], n: int) -> list[Candidate]:
        facts = facts_for(problem, self.device)
        failed = {c.technique for c, _ in feedback}
        out: list[Candidate] = []
        if len(parents) >= 2:  # crossover: the union of both parents' rules
            a, b = (rule_names(p.technique) for p, _ in parents[:2])
            if a is not None and b is not None:
                cand = self._make(problem, parents[0][0], sorted(set(a) | set(b)), facts)
                if cand is not None and cand.technique not in failed:
                    out.append(cand)
        parent = parents[0][0]
        have = rule_names(parent.technique) or []
        options = [r for r in RULES if r.applies(facts) and r.name not in have]
        self.rng.shuffle(options)
        for rule in options:
            if len(out) >= n:
                break
            cand = self._make(problem, parent, have + [rule.name], facts)
            if cand is not None and cand.technique not in failed:
                out.append(cand)
        return out[:n]
