"""Honest: the clamp and the scale in one expression (the bounds halved, the scale first)."""
import torch
from torch import nn

PROBLEM = "wide_clamp.py"


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.clamp(x * 0.5, -4.0, 4.0)
