"""Example problem: Linear -> add bias -> GELU (tanh approximation written out) -> scale.

Sized to run in milliseconds on a GPU and in well under a second on a laptop CPU.
"""
import math

import torch
from torch import nn

batch_size = 2048
in_features = 1024
out_features = 1024
scale = 0.5


class Model(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)
        self.scale = scale

    def forward(self, x):
        y = self.linear(x) + self.bias
        inner = math.sqrt(2.0 / math.pi) * (y + 0.044715 * y * y * y)
        y = 0.5 * y * (1.0 + torch.tanh(inner))
        return y * self.scale


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, scale]
