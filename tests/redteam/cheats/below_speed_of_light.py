"""Exploit 10 (faster than the hardware allows): a stale result for an 8 MB reduction, with no timed
output re-checked and no speedup ceiling (speed_of_light.yaml). Returning a cached tensor takes less
time than reading 8 MB at the measured memory bandwidth: held by the audit.

The cache is keyed by the input tensor itself, kept alive: timing refills one tensor in place, so
every timed call hits it, while each verification trial's tensor is another object and is summed
honestly. (Keyed by address, a trial's tensor could reuse the last trial's freed memory, and the
stale sum would be caught earlier, as a constant output, leaving the audit untested.)"""
from torch import nn

PROBLEM = "big_sum.py"
EXPECT = "audit"
CONTAINS = "speed-of-light"
CONFIG = "speed_of_light.yaml"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.last = None
        self.value = None

    def forward(self, x):
        if x is not self.last:
            self.last = x
            self.value = x.sum(dim=1)
        return self.value
