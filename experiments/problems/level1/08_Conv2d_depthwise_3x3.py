"""Depthwise 2D convolution (groups = channels), 3x3, padding 1: (64, 384, 112, 112) -> same shape."""
import torch
import torch.nn as nn

batch_size = 64
channels = 384
height = 112
width = 112
kernel_size = 3

# memory bound: read 1.23 GB + write 1.23 GB = 2.5 GB -> ~1.0 ms at 2.5 TB/s (3.7 GFLOP);
# cuDNN's fp32 depthwise kernels are usually well below bandwidth, expect ~1.5-2 ms
# measured: 2.97 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x):
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, kernel_size]
