"""Exploit 14 (weights tested only at their initial values): the residual branch dropped, because its
layer scale starts at 1e-6: the output differs from the input by about a millionth, within fp32's
old tolerance. Trained, the scale is no longer small."""
import torch
from torch import nn

PROBLEM = "layer_scale.py"
EXPECT = ("accuracy", "input_passthrough")


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.gamma = nn.Parameter(torch.full((features,), 1e-6))

    def forward(self, x):
        return x * 1.0
