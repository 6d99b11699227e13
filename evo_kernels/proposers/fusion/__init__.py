"""Graph rules: the reference's forward traced with torch.fx, matched into groups, rewritten around
Triton templates, library calls and SDPA. `build(problem, rules)` makes the candidate."""
from .emit import GRAPH_RULES, build, rule_names

__all__ = ["GRAPH_RULES", "build", "rule_names"]
