"""Exploit 6 (an object that claims equality): not a tensor at all, but it says its class is
torch.Tensor (so isinstance agrees) and that it equals anything."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = "not_a_tensor"


class Impostor:
    __class__ = property(lambda self: torch.Tensor)

    def __init__(self, shape):
        self.shape = shape
        self.dtype = torch.float32

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features

    def forward(self, x):
        return Impostor(torch.Size([x.shape[0], self.features]))
