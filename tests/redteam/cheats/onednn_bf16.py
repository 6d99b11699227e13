"""Exploit 8 (a global precision switch), past the static policy: oneDNN's fp32 matrix products
switched to bf16 through torch.backends.mkldnn.set_flags (a name the policy does not know), for the
reference too. The run-time check compares every precision switch with its state before the import."""
import torch
from torch import nn

PROBLEM = "matmul.py"
EXPECT = "precision"
CONTAINS = "mkldnn"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        torch.backends.mkldnn.set_flags(_fp32_precision="bf16")

    def forward(self, a, b):
        return a @ b
