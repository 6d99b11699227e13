"""A square fp32 matrix product (reduced-precision switches change its result)."""
import torch
from torch import nn

n = 128


class Model(nn.Module):
    def forward(self, a, b):
        return a @ b


def get_inputs():
    return [torch.randn(n, n), torch.randn(n, n)]


def get_init_inputs():
    return []
