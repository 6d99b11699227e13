"""Honest: the row sum as a matrix-vector product with a vector of ones (another summation order)."""
import torch
from torch import nn

PROBLEM = "row_sum.py"


class ModelNew(nn.Module):
    def forward(self, x):
        return x @ torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
