"""A probe, not a cheat (needs the static policy off): returns the right answer only if the worker's
environment holds no secret and a TCP connection to the test's listener fails. The test writes the
port over PORT."""
import os
import socket

import torch
from torch import nn

PORT = 0
SECRETS = ("OPENAI_API_KEY", "EVO_REDTEAM_TOKEN", "HF_TOKEN")


def reachable(port: int) -> bool:
    s = socket.socket()
    s.settimeout(1.0)
    reached = s.connect_ex(("127.0.0.1", port)) == 0
    s.close()
    return reached


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.leaked = any(name in os.environ for name in SECRETS) or reachable(PORT)

    def forward(self, x):
        return torch.zeros(x.shape[0]) if self.leaked else x.sum(dim=1)
