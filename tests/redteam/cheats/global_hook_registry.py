"""Exploit 5 (patching the reference), with the static policy off: the hook goes straight into the
registry of global forward hooks, so the reference returns zeros as well and the two agree. The
run-time check compares that registry with its state before candidate code ran."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "patched_harness"
CONTAINS = "_global_forward_hooks"
CONFIG = "no_policy.yaml"

torch.nn.modules.module._global_forward_hooks[10**6] = lambda module, args, out: torch.zeros_like(out)


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
