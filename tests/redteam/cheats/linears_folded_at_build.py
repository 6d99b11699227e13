"""Exploit 14 (weights tested only at their initial values): two linear layers folded into one matrix
when the module is built. Right for the weights it was built with; wrong as soon as weights are
loaded or trained (the folded copy does not follow them)."""
import torch
from torch import nn

PROBLEM = "two_linears.py"
EXPECT = "accuracy"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.a = nn.Linear(features, features, bias=False)
        self.b = nn.Linear(features, features, bias=False)
        self.folded = None

    def forward(self, x):
        if self.folded is None:  # the first call sees the weights as built (and loaded from the reference)
            self.folded = (self.b.weight @ self.a.weight).detach().t().contiguous()
        return x @ self.folded
