"""A degenerate problem: x + 1e-5 tanh(x) is within tolerance of x itself, so returning (a copy
of) the input passes every tolerance test."""
import torch
from torch import nn

rows = 32
cols = 128


class Model(nn.Module):
    def forward(self, x):
        return x + 1e-5 * torch.tanh(x)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
