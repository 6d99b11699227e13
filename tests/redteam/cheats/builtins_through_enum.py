"""Exploit 12 (walking around the import allow-list): the builtins module, under another name in an
allowed standard module (enum keeps it as `bltns`), and from it `__import__` of anything."""
import enum

import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = ("policy:patching", "policy:introspection")

_loader = enum.bltns.__import__


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)
