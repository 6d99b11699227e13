"""Exploit 3 (results computed ahead): torch.initial_seed() tells the seed the inputs were just drawn
with. If timed repetitions drew from consecutive seeds, the inputs of every repetition to come, and so
their outputs, could be computed once, in the first timed call, and handed out after that at no cost.
Honest during the correctness trials. The harness draws every repetition's seed at random and
replaces torch's seed once the inputs are drawn, so the outputs handed out are for other inputs."""
import torch
from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "stale_output"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.ahead = []

    def forward(self, x):
        self.calls += 1
        if self.calls <= 5:
            return x.sum(dim=1)
        if not self.ahead:
            seed = torch.initial_seed()
            for s in range(seed + 1, seed + 200):
                torch.manual_seed(s)
                self.ahead.append(torch.randn(x.shape).sum(dim=1))
            return x.sum(dim=1)
        return self.ahead.pop(0)
