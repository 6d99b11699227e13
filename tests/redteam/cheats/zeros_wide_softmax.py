"""Exploit 1 (constant output): zeros on the wide softmax, where every reference output is below
atol, so zeros pass allclose(atol=1e-4). Caught by the relative error norm, named as a constant."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "constant_output"


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
