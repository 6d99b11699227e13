"""Exploit 10 (faster than the hardware allows): a stale result for an 8 MB reduction, with no timed
output re-checked and no speedup ceiling (speed_of_light.yaml). Returning a cached tensor takes less
time than reading 8 MB at the measured memory bandwidth: held by the audit."""
from torch import nn

PROBLEM = "big_sum.py"
EXPECT = "audit"
CONTAINS = "speed-of-light"
CONFIG = "speed_of_light.yaml"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.key = None
        self.value = None

    def forward(self, x):
        if x.data_ptr() != self.key:
            self.key = x.data_ptr()
            self.value = x.sum(dim=1)
        return self.value
