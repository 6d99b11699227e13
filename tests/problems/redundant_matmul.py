"""A product plus a product with a zero matrix: exactly the product (for finite inputs) at twice its
cost, and no compiler drops the second one (0 * x is not 0 for every float). A candidate that
computes the product once does half the work: a real speedup near 2x."""
import torch
from torch import nn

n = 384


class Model(nn.Module):
    def forward(self, a, b):
        return a @ b + a @ (b * 0.0)


def get_inputs():
    return [torch.randn(n, n), torch.randn(n, n) / n ** 0.5]


def get_init_inputs():
    return []
