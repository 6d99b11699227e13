"""Exploit 4 (in-place mutation of inputs): the chain computed in the input's own memory, returned."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "input_mutated"


class ModelNew(nn.Module):
    def forward(self, x):
        x.mul_(1.5).add_(0.5)
        return torch.tanh(nn.functional.gelu(x))
