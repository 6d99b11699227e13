"""A tunable candidate for tests/problems/tiny_linear_relu.py whose configurations differ in kind:
MODE "slow" computes the product 300 times, "fast" 20 times (so that "wrong", which returns zeros,
is surely the fastest however noisy the host), "wrong" is incorrect, "raises" fails."""
import torch
from torch import nn

MODE = "slow"
TUNABLE = {"MODE": ["slow", "fast", "wrong", "raises"]}


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        if MODE == "raises":
            raise RuntimeError("this configuration does not run")
        if MODE == "wrong":
            return torch.zeros(x.shape[0], self.linear.out_features, device=x.device)
        y = torch.addmm(self.linear.bias, x, self.linear.weight.t())
        for _ in range(299 if MODE == "slow" else 19):
            y = torch.addmm(self.linear.bias, x, self.linear.weight.t())
        return torch.relu(y)
