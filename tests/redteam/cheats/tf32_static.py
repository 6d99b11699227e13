"""Exploit 8 (a global precision switch): TF32 for matrix products, which also changes the
reference's result. Refused statically."""
import torch
from torch import nn

PROBLEM = "matmul.py"
EXPECT = "policy:precision"


class ModelNew(nn.Module):
    def forward(self, a, b):
        torch.backends.cuda.matmul.allow_tf32 = True
        return a @ b
