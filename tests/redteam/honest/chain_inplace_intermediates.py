"""Honest: the elementwise chain with every step in place on one intermediate (never on the input)."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"


class ModelNew(nn.Module):
    def forward(self, x):
        y = x * 1.5
        y.add_(0.5)
        y = nn.functional.gelu(y)
        return y.tanh_()
