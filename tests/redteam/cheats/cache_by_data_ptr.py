"""Exploit 3 (caching keyed on the input's address): the allocator hands the same address back, and
timing reuses one input buffer. Each correctness trial gets a new clone, so the cache misses there;
it hits on every timed repetition. Timed inputs get fresh contents, and a sample of timed outputs is
checked against the reference."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = ("stale_output", "constant_output")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.key = None
        self.value = None

    def forward(self, x):
        if x.data_ptr() != self.key:
            self.key = x.data_ptr()
            self.value = torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))
        return self.value
