"""A residual block whose branch is a hundredth of the skip: an error in the branch is a hundred
times smaller in the output."""
import torch
from torch import nn

batch = 16
features = 64


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return x + 0.01 * torch.nn.functional.gelu(self.linear(x))


def get_inputs():
    return [torch.randn(batch, features)]


def get_init_inputs():
    return [features]
