"""Exploit 5 (patching the reference), past the static policy: a torch function mode entered in the
constructor and never left, so every torch.softmax in the process (the reference's included)
returns zeros, and so does the candidate. The run-time check finds a mode left active."""
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

PROBLEM = "wide_softmax.py"
EXPECT = "patched_harness"
CONTAINS = "torch function modes"


class Zeros(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.softmax:
            return torch.zeros_like(args[0])
        return func(*args, **(kwargs or {}))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.mode = Zeros()
        self.mode.__enter__()

    def forward(self, x):
        return torch.softmax(x, dim=-1)
