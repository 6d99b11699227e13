"""Honest: two linear layers folded into one matrix on every call, from the weights as they are then
(one product of the small weights, then one of the batch)."""
import torch
from torch import nn

PROBLEM = "two_linears.py"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.a = nn.Linear(features, features, bias=False)
        self.b = nn.Linear(features, features, bias=False)

    def forward(self, x):
        return x @ (self.b.weight @ self.a.weight).t()
