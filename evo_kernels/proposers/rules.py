"""The offline rule library: named transforms kept as a data list, each with an applicability test.

Two kinds of rule. A wrapper rule subclasses the problem's `Model` (or another candidate's
`ModelNew`), adding lines to `__init__`, preparing the inputs or wrapping the forward (compile modes,
channels_last, cuDNN autotuning). A graph rule (`graph`) is one of fusion's rules (an anchor
template's, or one of fusion.GRAPH_RULES), which traces the
reference and rewrites its forward around Triton templates, library calls or SDPA. A candidate's
technique names its rules ("triton_gemm+fuse_chains+compile"): mutation adds a rule or perturbs one
tuned value, crossover takes the union of two parents' rules and keeps the tuned template values of
the parent with graph rules (e.g. a fused epilogue from one, a compile mode from the other);
tunables are searched by tuning.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..model import devices
from ..model.candidate import Candidate
from ..model.problem import Problem
from ..model.tunables import applied, bake, baked_params, satisfies, space_of, values_of, with_screen_first
from . import fusion
from .templates import ANCHORS, seed_alternatives, seed_params
from .base import Context, Member, Proposer


@dataclass(frozen=True)
class Facts:
    """What the applicability tests look at: the device, the reference's module types, and the graph
    rules that change something for this problem (fusion.build returned a candidate)."""

    device: str
    module_types: frozenset[str]
    graph_rules: frozenset[str] = frozenset()

    @property
    def gpu(self) -> bool:
        return devices.kind(self.device).triton if self.device != "auto" else False

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
    defs: str = ""  # module-level code the rule's lines use
    tunable: dict[str, list[Any]] = field(default_factory=dict)  # first value is the default
    group: str = ""  # at most one rule of a group in a candidate
    graph: bool = False  # a fusion rule (by this name): it rewrites the traced forward
    prior: float = 1.0  # how early mutation tries it (expected gain; ties broken at random)


def _compile_modes(facts: Facts) -> list[str]:
    # Not "default": that is the compile baseline itself, which a draft cannot beat.
    modes = ["max-autotune-no-cudagraphs"]
    return modes + ["reduce-overhead", "max-autotune"] if facts.gpu else modes


def _graph(name: str, gpu_only: bool = True) -> Callable[[Facts], bool]:
    return lambda f: name in f.graph_rules and (f.gpu or not gpu_only)


_CUDNN_BENCHMARK = '''
def _cudnn_autotuned(fn):
    # cuDNN benchmark mode (it times the convolution algorithms once per shape and keeps the fastest)
    # for this model's calls only: the process-wide switch is put back after each call.
    def run(*inputs):
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        out = fn(*inputs)
        torch.backends.cudnn.benchmark = before
        return out
    return run
'''

RULES: list[Rule] = [
    # Graph rules (fusion): applied first, to the reference's traced forward. Each anchor template
    # brings its own (templates/__init__.py); the others are fusion's.
    *[Rule(t.rule, _graph(t.rule), graph=True, prior=t.prior) for t in ANCHORS],
    Rule("sdpa", _graph("sdpa", gpu_only=False), graph=True, prior=3.0),
    Rule("fuse_chains", _graph("fuse_chains"), graph=True, prior=3.0),
    Rule("addmm", _graph("addmm", gpu_only=False), graph=True, prior=1.5),
    Rule("avgpool_conv", _graph("avgpool_conv", gpu_only=False), graph=True, prior=1.5),
    # Wrapper rules: around whatever ModelNew the graph rules (or another proposer) made.
    Rule("channels_last", lambda f: f.conv2d,
         init=("self.to(memory_format=torch.channels_last)",),
         prepare=("inputs = [x.contiguous(memory_format=torch.channels_last) "
                  "if isinstance(x, torch.Tensor) and x.dim() == 4 else x for x in inputs]",)),
    Rule("compile", lambda f: True,
         wrap="torch.compile(fn, mode=COMPILE_MODE, dynamic=False)",
         tunable={"COMPILE_MODE": ["max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune"]},
         group="compile"),
    Rule("compile_tuned", lambda f: f.gpu,
         wrap=("torch.compile(fn, dynamic=False, options={'coordinate_descent_tuning': COORDINATE_DESCENT, "
               "'epilogue_fusion': True, 'max_autotune': MAX_AUTOTUNE, 'triton.cudagraphs': CUDA_GRAPHS})"),
         tunable={"COORDINATE_DESCENT": [True, False], "MAX_AUTOTUNE": [False, True], "CUDA_GRAPHS": [False, True]},
         group="compile"),
    # Where the host is the device: Inductor's C++ options that change the code it writes.
    Rule("compile_cpu", lambda f: not f.gpu,
         wrap=("torch.compile(fn, dynamic=False, options={'cpp_wrapper': CPP_WRAPPER, 'max_autotune': MAX_AUTOTUNE, "
               "'aggressive_fusion': AGGRESSIVE_FUSION, 'epilogue_fusion': True})"),
         tunable={"CPP_WRAPPER": [True, False], "AGGRESSIVE_FUSION": [True, False], "MAX_AUTOTUNE": [False, True]},
         group="compile"),
    # Outermost, so that the switch is not inside a compiled region.
    Rule("cudnn_benchmark", lambda f: f.gpu and f.conv2d, wrap="_cudnn_autotuned(fn)", defs=_CUDNN_BENCHMARK,
         prior=1.5),
]
BY_NAME = {r.name: r for r in RULES}
# The template rules rewrite disjoint parts of a graph (GEMMs, convolutions, attention, the chains
# between them), so together they fuse everything the templates cover. From the reference, that
# combination is drafted first: on most problems it is the best single candidate, and a small
# budget should not have to find it by crossing singles.
_ALL_TEMPLATES = tuple(t.rule for t in ANCHORS) + ("sdpa", "fuse_chains")
_GRAPH_RULES = [r for r in RULES if r.graph]


def facts_for(problem: Problem, device: str) -> Facts:
    """Build the reference on the meta device (no memory), list its module types, and try each graph
    rule on its own."""
    import torch
    try:
        with torch.device("meta"):
            model = problem.Model(*problem.init_inputs())
        types = frozenset(type(m).__name__ for m in model.modules() if isinstance(m, nn.Module))
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta just gets fewer rules
        types = frozenset()
    def built(rules: list[str]) -> str | None:
        try:
            out = fusion.build(problem, rules)
        except Exception:  # noqa: BLE001 - a rule that fails on this problem does not apply to it
            return None
        return None if out is None else out[0]

    alone = {rule.name: built([rule.name]) for rule in _GRAPH_RULES}
    graph = {name for name, source in alone.items() if source is not None}
    # A template whose pattern the sdpa rewrite makes (the attention kernel, on attention written out
    # by hand) applies when it changes what sdpa alone builds.
    if "sdpa" in graph:
        graph |= {r.name for r in _GRAPH_RULES if r.name not in graph
                  and built([r.name, "sdpa"]) not in (None, alone["sdpa"])}
    return Facts(device=device, module_types=types, graph_rules=frozenset(graph))


def rule_names(technique: str) -> list[str] | None:
    """The rules of a rules-built technique, or None when the candidate was not built by rules."""
    if technique == "reference":
        return []
    names = technique.split("+")
    return names if all(n in BY_NAME for n in names) else None


# --- sources -------------------------------------------------------------------------------------------
def wrap_source(base_source: str, base_class: str, rules: list[Rule], facts: Facts) -> str:
    """`ModelNew` subclassing `base_class` (defined in `base_source`) with the wrapper rules."""
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
    lines += [r.defs for r in rules if r.defs]
    lines += ["", "", f"class ModelNew({base_class}):", "    def __init__(self, *args, **kwargs):",
              "        super().__init__(*args, **kwargs)"]
    lines += [f"        {line}" for r in rules for line in r.init]
    lines.append("        fn = super().forward")
    lines += [f"        fn = {r.wrap}" for r in rules if r.wrap]
    lines += ["        self._fast_forward = fn", "", "    def forward(self, *inputs):"]
    lines += [f"        {line}" for r in rules for line in r.prepare]
    lines += ["        return self._fast_forward(*inputs)", ""]
    return "\n".join(lines)


def build_source(problem: Problem, rules: list[Rule], facts: Facts, params: dict[str, Any] | None = None) -> str | None:
    """A candidate made of `rules` from the problem's reference: the graph rules rewrite its forward,
    the wrapper rules go around it. A graph candidate tuned before (`params`) keeps those values."""
    graph = [r for r in rules if r.graph]
    wrappers = [r for r in rules if not r.graph]
    if graph:
        built = fusion.build(problem, [r.name for r in graph])
        if built is None:
            return None
        base = built[0]
        # A parent's tuned values carry over when they cover this candidate's space (the same
        # templates): the child is then evaluated once, as it is; otherwise its space is tuned afresh.
        inherited = params if params and set(space_of(base)[0]) <= set(params) else None
        if wrappers and any(r.tunable for r in wrappers):
            base = bake(base, params or {})  # one TUNABLE per candidate: the wrappers' is searched
        elif inherited:
            base = bake(base, inherited)
        if not wrappers:
            return base
        return wrap_source(re.sub(r"\bModelNew\b", "_EvoBase", base), "_EvoBase", wrappers, facts)
    return wrap_source(problem.source, "Model", wrappers, facts)


def _compatible(rules: list[Rule]) -> bool:
    groups = [r.group for r in rules if r.group]
    return len(groups) == len(set(groups)) and len({r.name for r in rules}) == len(rules)


def _neighbour(values: list[Any], current: Any, rng: Any) -> Any:
    """A value next to `current` in a space's list (its order is the space's), or any other value."""
    if current in values and len(values) > 1:
        ordered = sorted(values, key=lambda v: (str(type(v)), v))
        i = ordered.index(current)
        near = [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
        return rng.choice(near)
    return rng.choice(values)


class RulesProposer(Proposer):
    name = "rules"

    def __init__(self, seed: int = 0, device: str = "cpu") -> None:
        super().__init__(seed, device)
        self._facts: dict[str, Facts] = {}
        self._techniques: dict[str, float] = {}  # the search's best speedup per technique (observe)
        self._flags: dict[str, Any] = {}  # the precision switches the baselines ran under (observe)

    def observe(self, context: Context) -> None:
        self._techniques = dict(context.techniques)
        self._flags = dict((context.baselines or {}).get("flags") or {})

    def _starting(self, source: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A template draft's starting values under the baselines' precision switches (e.g. rounded
        TF32 convolutions where cuDNN's run TF32), where its space holds them and they satisfy its
        constraints ({} otherwise: the space's defaults); and the templates' alternatives to them (the
        changes each makes) within the space and its constraints, which its screen tries first."""
        space, constraints = space_of(source)
        defaults = {k: v[0] for k, v in space.items()}
        seeds = {k: v for k, v in seed_params(self._flags).items() if v in space.get(k, ())}
        if not (seeds and satisfies({**defaults, **seeds}, constraints)):
            seeds = {}
        start = {**defaults, **seeds}
        return seeds, [alt for alt in seed_alternatives(self._flags)
                       if applied(alt, start, space, constraints) not in (None, start)]

    def losing_templates(self) -> set[str]:
        """Template rules that were slower than the faster baseline alone here (tuned: the screen chose
        their fastest configuration) and are in no candidate that reached it: not drafted again for
        this problem, so the budget goes to other ideas."""
        best = self._techniques
        lost = {t for t, s in best.items() if t in BY_NAME and BY_NAME[t].graph and s < 1.0}
        return {t for t in lost if not any(s >= 1.0 and t in name.split("+") for name, s in best.items())}

    def facts(self, problem: Problem) -> Facts:
        if problem.digest not in self._facts:
            self._facts[problem.digest] = facts_for(problem, self.device)
        return self._facts[problem.digest]

    def _make(self, problem: Problem, parent: Candidate, names: list[str], facts: Facts,
              params: dict[str, Any] | None = None) -> Candidate | None:
        rules = [BY_NAME[n] for n in names]
        if not _compatible(rules):
            return None
        own = rule_names(parent.technique)
        if own is not None:  # rules-built or the reference: rebuild from the problem, cleanly
            rules = sorted(rules, key=RULES.index)
            source = build_source(problem, rules, facts, params)
            technique = "+".join(r.name for r in rules)
        else:  # another proposer's candidate: layer the new wrapper rules on top of its ModelNew
            added = [r for r in rules if r.name not in parent.technique.split("+") and not r.graph]
            if not added:
                return None
            base = re.sub(r"\bModelNew\b", "_EvoBase", parent.source)
            source = wrap_source(base, "_EvoBase", added, facts)
            technique = parent.technique + "+" + "+".join(r.name for r in added)
        if source is None:
            return None
        seeds: dict[str, Any] = {}
        if own is not None and not params:  # a fresh template draft: its seeds, its screen's alternatives
            seeds, alternatives = self._starting(source)
            source = with_screen_first(source, alternatives)
        return Candidate(source=source, parents=(parent.id,), proposer=self.name, technique=technique,
                         generation=parent.generation + 1, params=seeds)

    def _perturb(self, parent: Candidate) -> Candidate | None:
        """The parent's tuned values with one of them moved to a neighbouring value of its space:
        a single evaluation next to a good configuration (optuna samples the space as a whole)."""
        space, constraints = space_of(parent.source)
        values = {**baked_params(parent.source), **parent.params}
        if not space or not values:
            return None
        current = {k: values.get(k, v[0]) for k, v in space.items()}
        for _ in range(10):
            key = self.rng.choice(sorted(space))
            trial = dict(current, **{key: _neighbour(space[key], current[key], self.rng)})
            if trial != current and satisfies(trial, constraints):
                source = bake(parent.source, trial)
                return Candidate(source=source, parents=(parent.id,), proposer=self.name,
                                 technique=parent.technique, generation=parent.generation + 1)
        return None

    def propose(self, problem: Problem, parents: list[Member], feedback: list[Member], n: int) -> list[Candidate]:
        facts = self.facts(problem)
        failed = {c.technique for c, _ in feedback}
        losing = self.losing_templates()

        def usable(cand: Candidate | None, stepped: bool = False) -> bool:
            # (a stepped value is worth trying after a failure of another configuration)
            return (cand is not None and (stepped or cand.technique not in failed)
                    and not losing & set(cand.technique.split("+")))

        out: list[Candidate] = []
        if len(parents) >= 2:  # crossover: the union of both parents' rules, the graph parent's values
            (pa, _), (pb, _) = parents[:2]
            a, b = rule_names(pa.technique), rule_names(pb.technique)
            if a is not None and b is not None:
                keep = pa if any(BY_NAME[r].graph for r in a) else pb
                cand = self._make(problem, pa, sorted(set(a) | set(b)), facts, values_of(keep.source, keep.params))
                if usable(cand):
                    out.append(cand)
        parent = parents[0][0]
        have = rule_names(parent.technique) or []
        values = values_of(parent.source, parent.params)
        together = [n for n in _ALL_TEMPLATES if BY_NAME[n].applies(facts) and n not in losing] \
            if parent.technique == "reference" else []
        if len(together) >= 2:
            cand = self._make(problem, parent, together, facts)
            if usable(cand):
                out.append(cand)
        if values and self.rng.random() < 0.3:  # sometimes: step a tuned value
            cand = self._perturb(parent)
            if usable(cand, stepped=True):
                out.append(cand)
        options = [r for r in RULES if r.applies(facts) and r.name not in have and r.name not in losing]
        noise = {r.name: self.rng.random() for r in options}
        options.sort(key=lambda r: -(r.prior + noise[r.name]))
        for rule in options:
            if len(out) >= n:
                break
            cand = self._make(problem, parent, have + [rule.name], facts, values)
            if usable(cand):
                out.append(cand)
        if not out and values:
            cand = self._perturb(parent)
            if usable(cand, stepped=True):
                out.append(cand)
        return out[:n]
