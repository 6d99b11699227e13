"""A degenerate problem: sigmoid(1e-4 x) is 0.5 +- 2.5e-5 x, so the constant 0.5 is within
atol + rtol*|ref| of every element and its relative error norm (~3e-5) is below rtol. Only a check
that outputs change with the inputs tells a constant from an answer."""
import torch
from torch import nn

rows = 32
cols = 128


class Model(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x * 1e-4)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
