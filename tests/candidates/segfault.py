"""Crashes the process: a write through a null pointer with ctypes (needs the static policy off)."""
import ctypes
from torch import nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()

    def forward(self, x):
        ctypes.memset(0, 0, 16)
        return x
