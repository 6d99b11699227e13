"""A clamp at +-8 that get_inputs()'s standard normal values never reach."""
import torch
from torch import nn

rows = 64
cols = 256


class Model(nn.Module):
    def forward(self, x):
        return torch.clamp(x, -8.0, 8.0) * 0.5


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
