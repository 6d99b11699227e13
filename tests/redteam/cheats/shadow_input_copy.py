"""Exploit 3 through exploit 5 (shadowing a method the harness calls): once timing starts, the input
tensor gets its own `copy_`, so the harness's refresh of the input contents would do nothing and a
cached result would stay right. The harness calls the unbound Tensor.copy_ and rejects inputs that
come back carrying attributes."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "patched_harness"
CONTAINS = "attributes on input"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.cached = None

    def forward(self, x):
        self.calls += 1
        if self.calls > 5:
            x.copy_ = lambda *args, **kwargs: x
            if self.cached is not None:
                return self.cached
        self.cached = torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))
        return self.cached
