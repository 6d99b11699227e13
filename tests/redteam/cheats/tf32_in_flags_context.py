"""Exploit 8 (a global precision switch, scoped): cuDNN's flags context manager turns TF32 on for
the convolutions inside it (its allow_tf32 defaults to True) and restores the old flags on exit,
so no switch is left on after the call. Refused statically."""
import torch
from torch import nn

PROBLEM = "matmul.py"
EXPECT = "policy:precision"
CONTAINS = ".flags"


class ModelNew(nn.Module):
    def forward(self, a, b):
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=True):
            return a @ b
