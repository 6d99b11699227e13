"""Exploit 5 (patching the reference): PyTorch's own softmax kernel replaced through torch.library,
for every caller. Refused statically (a registration in the aten namespace)."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "policy:patching"

lib = torch.library.Library("aten", "IMPL")
lib.impl("_softmax", lambda x, dim, half: torch.zeros_like(x), "CPU")


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
