"""Honest: a workspace kept across calls for an intermediate, never returned: each call's output is
a new tensor."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ws = None

    def forward(self, x):
        if self.ws is None or self.ws.shape != x.shape:
            self.ws = torch.empty_like(x)
        torch.add(x * 1.5, 0.5, out=self.ws)
        return torch.tanh(nn.functional.gelu(self.ws))
