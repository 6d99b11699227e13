"""A model whose forward has no float64 path (as an operator without a float64 kernel would): the
float64 oracle cannot run, and the harness says so."""
import torch
from torch import nn


class Model(nn.Module):
    def forward(self, x):
        if x.dtype == torch.float64:
            raise NotImplementedError("no float64 kernel for this operator")
        return torch.tanh(x) * 2.0


def get_inputs():
    return [torch.randn(32, 16)]


def get_init_inputs():
    return []
