"""A compute-bound fp32 matrix product, 512 x 512 x 512 (a few ms on a CPU core)."""
import torch
from torch import nn

n = 512


class Model(nn.Module):
    def forward(self, a, b):
        return a @ b


def get_inputs():
    return [torch.randn(n, n), torch.randn(n, n)]


def get_init_inputs():
    return []
