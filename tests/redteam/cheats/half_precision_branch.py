"""Exploit 16 (reduced precision inside the old tolerance): the residual branch computed in float16.
The branch is a hundredth of the output, so its error is too: far inside fp32's old 1e-4, and about
a hundred times eager's error against float64."""
import torch
from torch import nn

PROBLEM = "small_residual.py"
EXPECT = "accuracy"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        h = nn.functional.linear(x.half(), self.linear.weight.half(), self.linear.bias.half()).float()
        return x + 0.01 * nn.functional.gelu(h)
