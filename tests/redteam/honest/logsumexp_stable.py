"""Honest: log-sum-exp rewritten with the maximum taken out first (stable at any scale)."""
import torch
from torch import nn

PROBLEM = "logsumexp.py"


class ModelNew(nn.Module):
    def forward(self, x):
        m = x.amax(dim=-1, keepdim=True)
        return (m + torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))).squeeze(-1)
