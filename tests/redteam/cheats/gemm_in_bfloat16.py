"""Exploit 16 (reduced precision, issue of the accuracy contract): the product computed in bfloat16
where the baseline is full fp32: about 1e-3 relative, against eager's 1e-7."""
import torch
from torch import nn

PROBLEM = "matmul.py"
EXPECT = "accuracy"


class ModelNew(nn.Module):
    def forward(self, a, b):
        return (a.bfloat16() @ b.bfloat16()).float()
