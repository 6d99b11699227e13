"""Exploit 3 (stale results after N calls): honest for the first 6 calls (the correctness trials and
the warm-up), then the last result forever."""
from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "stale_output"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.last = None

    def forward(self, x):
        self.calls += 1
        if self.calls <= 6 or self.last is None:
            self.last = x.sum(dim=1)
        return self.last
