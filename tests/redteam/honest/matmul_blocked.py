"""Honest: the matrix product as two half-K products added (a different accumulation order)."""
from torch import nn

PROBLEM = "matmul.py"


class ModelNew(nn.Module):
    def forward(self, a, b):
        k = a.shape[1] // 2
        return a[:, :k] @ b[:k] + a[:, k:] @ b[k:]
