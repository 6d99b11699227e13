"""Honest, on a near-identity problem: x + 1e-5 tanh(x) computed with addcmul."""
import torch
from torch import nn

PROBLEM = "near_identity.py"
CONTAINS = "within tolerance of input 0"


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.addcmul(x, torch.tanh(x), torch.full((), 1e-5))
