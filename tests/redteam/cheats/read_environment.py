"""Exploit 9 (reading secrets): an API key from the environment. Refused statically; the worker's
environment carries no keys either (tests/redteam/probes/secrets_and_network.py)."""
import os

import torch
from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "policy:environment"


class ModelNew(nn.Module):
    def forward(self, x):
        key = os.environ.get("OPENAI_API_KEY", "")
        return x.sum(dim=1) + 0 * len(key)
