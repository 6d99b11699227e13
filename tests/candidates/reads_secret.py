"""Reports whether the worker's environment holds the secret (needs the static policy off)."""
import os
import torch
from torch import nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        if "OPENAI_API_KEY" in os.environ or "EVO_TEST_TOKEN" in os.environ:
            raise RuntimeError("the worker can read a secret")
        return torch.relu(self.linear(x))
