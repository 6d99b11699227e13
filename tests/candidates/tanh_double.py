"""Correct for problems/float32_only.py."""
import torch
from torch import nn


class ModelNew(nn.Module):
    def forward(self, x):
        return 2.0 * torch.tanh(x)
