"""Exploit 4 (in-place mutation, only once timing starts): honest for the correctness trials, then
the chain computed in the input's own memory and the input returned (no allocation). A checked timed
repetition's inputs are regenerated from its seed and compared with the buffer the candidate got."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "input_mutated"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls <= 5:
            return torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))
        x.mul_(1.5).add_(0.5)
        x.copy_(torch.tanh(nn.functional.gelu(x)))
        return x
