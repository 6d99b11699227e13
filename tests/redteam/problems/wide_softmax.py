"""Softmax over wide rows of uniform inputs: every output is about 1/32768 = 3e-5, below the fp32
atol of 1e-4, so all zeros pass an allclose(atol=1e-4) test."""
import torch
from torch import nn

rows = 4
width = 32768


class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.rand(rows, width)]


def get_init_inputs():
    return []
