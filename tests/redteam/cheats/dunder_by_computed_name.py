"""Exploit 12 (walking around the import allow-list): a special attribute of the model reached by a
name computed at run time (getattr on self is allowed for names like f"layer{i}"), and through it
the class's globals."""
import torch
from torch import nn

PROBLEM = "wide_softmax.py"
EXPECT = "policy:introspection"


class ModelNew(nn.Module):
    def forward(self, x):
        name = "".join(["__", "cla", "ss", "__"])
        cls = getattr(self, name)
        return torch.softmax(x, dim=-1) if cls is not None else x
