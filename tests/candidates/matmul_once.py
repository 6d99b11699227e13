"""Half the work of problems/redundant_matmul.py: the product once."""
import torch
from torch import nn


class ModelNew(nn.Module):
    def forward(self, a, b):
        return a @ b
