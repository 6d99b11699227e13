"""Exploit 6 (a plain tensor that lies about itself): a real torch.Tensor (not a subclass) whose
instance attributes shadow the methods the harness would call on it: untyped_storage() reports an
empty storage elsewhere, so the output could alias the input unnoticed. Outputs must carry no
instance attributes."""
import torch
from torch import nn

PROBLEM = "relu_of_positive.py"
EXPECT = "not_a_tensor"
CONTAINS = "instance attributes"


class ModelNew(nn.Module):
    def forward(self, x):
        out = x.view(x.shape)
        out.untyped_storage = lambda: torch.empty(0).untyped_storage()
        out.numel = lambda: 0
        return out
