"""Honest: torch.compile inside the module (Inductor fuses the chain into one kernel)."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"


def chain(x):
    return torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.fn = torch.compile(chain)

    def forward(self, x):
        return self.fn(x)
