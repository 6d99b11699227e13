"""Exploit 7 (work hidden from the timer): the result filled in by a background thread after forward
returns. Refused statically (threading)."""
import threading

import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "policy:threads"


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        threading.Thread(target=lambda: out.copy_(torch.tanh(nn.functional.gelu(x * 1.5 + 0.5)))).start()
        return out
