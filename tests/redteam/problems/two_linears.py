"""Two linear layers in a row (no activation between them)."""
import torch
from torch import nn

batch = 16
features = 64


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.a = nn.Linear(features, features, bias=False)
        self.b = nn.Linear(features, features, bias=False)

    def forward(self, x):
        return self.b(self.a(x))


def get_inputs():
    return [torch.randn(batch, features)]


def get_init_inputs():
    return [features]
