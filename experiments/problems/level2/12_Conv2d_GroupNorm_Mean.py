"""Conv2d 3x3 -> GroupNorm -> mean over the spatial dims: (48, 64, 128, 128) -> (48, 128)."""
import torch
import torch.nn as nn

batch_size = 48
in_channels = 64
out_channels = 128
height = 128
width = 128
kernel_size = 3
num_groups = 16

# conv ~2*48*128*128*128*64*9 FLOP = 116 GFLOP -> ~2.6 ms on H100 fp32;
# GroupNorm (3 passes) + mean (1) on a 403 MB output = 1.6 GB -> ~0.65 ms; total ~3.2 ms
# (the mean is over H and W only: a mean over a whole group would be ~0 after GroupNorm, a degenerate output)
# measured: 3.98 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, num_groups):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.gn = nn.GroupNorm(num_groups, out_channels)

    def forward(self, x):
        x = self.conv(x)
        x = self.gn(x)
        return x.mean(dim=(2, 3))


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, num_groups]
