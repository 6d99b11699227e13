"""A tunable candidate for tests/problems/tiny_linear_relu.py: REPEAT applies the (idempotent) ReLU
more times; WRONG=1 transposes the weight, so that configuration fails verification."""
import torch
from torch import nn

REPEAT = 1
WRONG = 0
TUNABLE = {"REPEAT": [1, 2, 3], "WRONG": [0, 1]}


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        w = self.linear.weight if WRONG else self.linear.weight.t()
        y = torch.addmm(self.linear.bias, x, w)
        for _ in range(REPEAT):
            y = torch.relu(y)
        return y
