"""Swish / SiLU written out as x * sigmoid(x) on a (8192, 32768) tensor."""
import torch
import torch.nn as nn

batch_size = 8192
dim = 32768

# 268M elements = 1.07 GB; eager: sigmoid (r+w) + mul (2 r + w) = 5 x 1.07 GB = 5.4 GB -> ~2.1 ms at 2.5 TB/s
# measured: 1.79 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x * torch.sigmoid(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
