"""ConvNeXt block: depthwise 7x7 -> channels-last LayerNorm -> Linear 4x -> GELU -> Linear -> layer scale, + x."""
import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
channels = 192
height = 56
width = 56
layer_scale = 0.5

# pointwise Linears 2 x 2*(32*56*56)*192*768 = 59 GFLOP -> ~1.3 ms on H100 fp32, depthwise 7x7 1.9 GFLOP;
# LayerNorm, GELU on the 308 MB hidden, layer scale, permutes and residual ~1.6 GB -> ~0.65 ms; total ~2.3 ms
# (layer_scale is 0.5, not ConvNeXt's 1e-6: with 1e-6 the output would be x to within the tolerance)
# measured: 2.81 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, channels, layer_scale):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x):
        y = self.dwconv(x)
        y = y.permute(0, 2, 3, 1)
        y = self.norm(y)
        y = self.pwconv2(F.gelu(self.pwconv1(y)))
        y = self.gamma * y
        y = y.permute(0, 3, 1, 2)
        return x + y


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, layer_scale]
