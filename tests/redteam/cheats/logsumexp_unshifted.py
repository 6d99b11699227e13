"""Exploit 15 (correct only on get_inputs()'s distribution): log-sum-exp without taking the maximum
out first: exact for standard normal rows, infinite once the values are large."""
import torch
from torch import nn

PROBLEM = "logsumexp.py"
EXPECT = ("nan_mismatch", "mismatch", "accuracy")


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.log(torch.exp(x).sum(dim=-1))
