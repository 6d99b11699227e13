"""Exploit 17 (output lifetime): every call writes into one persistent buffer and returns it, so the
output a caller kept from the previous call changes under it (and no allocation is timed)."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "output_lifetime"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = None

    def forward(self, x):
        if self.out is None or self.out.shape != x.shape:
            self.out = torch.empty_like(x)
        torch.tanh(nn.functional.gelu(x * 1.5 + 0.5), out=self.out)
        return self.out
