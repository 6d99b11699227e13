"""Exploit 8 (a global precision switch), past the static policy: CPU autocast to bfloat16 entered in
the constructor and never left, so the reference's product runs in bfloat16 too and is compared at
bfloat16's tolerance. The run-time check sees autocast switched on."""
import torch
from torch import nn

PROBLEM = "matmul.py"
EXPECT = "precision"
CONTAINS = "autocast"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ctx = torch.autocast("cpu", dtype=torch.bfloat16)
        self.ctx.__enter__()

    def forward(self, a, b):
        return a @ b
