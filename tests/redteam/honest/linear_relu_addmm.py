"""Honest: the bias folded into addmm, the ReLU in place on that intermediate."""
import torch
from torch import nn

PROBLEM = "linear_relu.py"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.addmm(self.linear.bias, x, self.linear.weight.t()).relu_()
