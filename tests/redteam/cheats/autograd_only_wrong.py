"""Exploit 16 (one mode only): a fast path taken under no_grad (which the timing uses) and a wrong one
when autograd is on, as in training."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = "accuracy"
CONTAINS = "autograd"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        y = torch.relu(self.linear(x))
        return y if not torch.is_grad_enabled() else y * 1.01
