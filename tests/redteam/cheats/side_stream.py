"""Exploit 7 (work hidden from CUDA events): the kernel launched on a new stream that the events on
the current stream do not wait for. Refused statically (streams); the run-time side is in
experiments/redteam_gpu.py."""
import torch
from torch import nn

PROBLEM = "elementwise_chain.py"
EXPECT = "policy:streams"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.side = torch.cuda.Stream()

    def forward(self, x):
        with torch.cuda.stream(self.side):
            return torch.tanh(nn.functional.gelu(x * 1.5 + 0.5))
