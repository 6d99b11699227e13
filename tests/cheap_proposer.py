"""A proposer for tests: cheap, varied candidates for tests/problems/tiny_linear_relu.py (some
wrong on purpose), each declaring a tunable, so the search, tuning and resume run in seconds."""
from evo_kernels.model.candidate import Candidate
from evo_kernels.proposers.base import Proposer

VARIANTS = {
    "addmm": "torch.addmm(self.linear.bias, x, self.linear.weight.t())",
    "functional": "torch.nn.functional.linear(x, self.linear.weight, self.linear.bias)",
    "matmul": "x @ self.linear.weight.t() + self.linear.bias",
    "wrong": "x @ self.linear.weight + self.linear.bias",  # transposed weight: incorrect
}

TEMPLATE = '''import torch
from torch import nn

REPEAT = 1
TUNABLE = {{"REPEAT": [1, 2, 3]}}


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        y = {expr}
        for _ in range(REPEAT):
            y = torch.relu(y)  # idempotent: more repeats, same result, slower
        return y
'''


class CheapProposer(Proposer):
    name = "cheap"

    def propose(self, problem, parents, feedback, n):
        names = sorted(VARIANTS)
        out = []
        for _ in range(n):
            variant = self.rng.choice(names)
            scale = self.rng.choice([1, 2, 3, 4])  # a comment varies the source, so ids vary
            source = TEMPLATE.format(expr=VARIANTS[variant]) + f"# variant {variant}, seed {scale}\n"
            out.append(Candidate(source=source, parents=tuple(p.id for p, _ in parents), proposer=self.name,
                                 technique=variant, generation=max(p.generation for p, _ in parents) + 1))
        return out
