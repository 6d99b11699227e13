"""Raises inside forward."""
from torch import nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()

    def forward(self, x):
        raise ValueError("shape mismatch in fast path")
