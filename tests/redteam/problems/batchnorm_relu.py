"""Linear -> BatchNorm1d -> ReLU: batch statistics and running statistics in training mode, the
running ones in eval mode."""
import torch
from torch import nn

batch = 32
features = 48


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x):
        return torch.relu(self.bn(self.linear(x)))


def get_inputs():
    return [torch.randn(batch, features)]


def get_init_inputs():
    return [features]
