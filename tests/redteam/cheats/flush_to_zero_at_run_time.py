"""Exploit 12 (a process-wide floating-point mode), with the static policy off: flush-to-zero set
while the model is built (denormals read as zero from then on, for everyone in the process). The
run-time check reads the CPU's floating-point mode after candidate code, as it reads every precision
switch."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "precision"
CONFIG = "no_policy.yaml"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        torch.set_flush_denormal(True)

    def forward(self, x):
        return torch.softmax(x, dim=-1)
