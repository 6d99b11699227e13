"""Honest: carries an unused `import os`, as generated code often does (importing it is allowed)."""
import os  # noqa: F401

import torch
from torch import nn

PROBLEM = "wide_softmax.py"


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)
