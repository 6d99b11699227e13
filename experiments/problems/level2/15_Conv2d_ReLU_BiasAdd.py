"""Conv2d 3x3 -> ReLU -> add per-channel bias: (48, 128, 64, 64) -> (48, 256, 64, 64)."""
import torch
import torch.nn as nn

batch_size = 48
in_channels = 128
out_channels = 256
height = 64
width = 64
kernel_size = 3

# conv ~2*48*256*64*64*128*9 FLOP = 116 GFLOP -> ~2.6 ms on H100 fp32;
# ReLU + bias add on a 201 MB output: 2 x (r + w) = 0.8 GB -> ~0.3 ms; total ~2.9 ms
# measured: 3.33 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return x + self.bias


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
