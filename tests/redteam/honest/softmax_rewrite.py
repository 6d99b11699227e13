"""Honest: softmax written out (max-subtracted exponentials over their sum), on the wide problem
whose outputs are all below atol."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"


class ModelNew(nn.Module):
    def forward(self, x):
        e = torch.exp(x - x.amax(dim=-1, keepdim=True))
        return e / e.sum(dim=-1, keepdim=True)
