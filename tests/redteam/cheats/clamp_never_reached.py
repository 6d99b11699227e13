"""Exploit 15 (correct only on get_inputs()'s distribution): the clamp skipped, since standard normal
inputs never reach +-8. A scaled input does."""
import torch
from torch import nn

PROBLEM = "wide_clamp.py"
EXPECT = "accuracy"


class ModelNew(nn.Module):
    def forward(self, x):
        return x * 0.5
