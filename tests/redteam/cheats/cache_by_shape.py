"""Exploit 3 (caching keyed on the input's shape): every trial has the same shape, so from the second
trial on it returns the first trial's result."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"
EXPECT = "constant_output"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.cache = {}

    def forward(self, x):
        key = tuple(x.shape)
        if key not in self.cache:
            self.cache[key] = torch.relu(self.linear(x))
        return self.cache[key]
