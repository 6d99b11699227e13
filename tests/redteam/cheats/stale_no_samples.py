"""Exploit 10 (a speedup too good to be true): a cache keyed on the input's address, used only after
the six verification trials (from the 7th call on: trials allocate fresh inputs, and a repeated address
there would be caught as a repeated output), run where no timed output is re-checked
(checked_outputs: 0), so nothing else stops it. Handing back a cached tensor is far more than 10x
faster than a 512^3 matrix product: held by the audit."""
from torch import nn

PROBLEM = "big_matmul.py"
EXPECT = "audit"
CONTAINS = "exceeds the ceiling"
CONFIG = "no_samples.yaml"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.key = None
        self.value = None
        self.calls = 0

    def forward(self, a, b):
        self.calls += 1
        if self.calls <= 6 or a.data_ptr() != self.key:
            self.key = a.data_ptr()
            self.value = a @ b
        return self.value
