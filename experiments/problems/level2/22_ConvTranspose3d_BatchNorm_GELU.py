"""ConvTranspose3d (stride 2, doubling each spatial dim) -> BatchNorm3d -> GELU, a volumetric decoder
stage: (8, 32, 16, 64, 64) -> (8, 16, 32, 128, 128)."""
import torch
import torch.nn as nn

batch_size = 8
in_channels = 32
out_channels = 16
depth = 16
height = 64
width = 64

# transposed conv: 2 x 67M outputs x 32 input channels x 27/8 taps on average = 14.5 GFLOP -> ~0.28 ms
# at 51 TFLOP/s fp32; input 134 MB, output 67M elements = 268 MB; the norm's statistics and the
# GELU read it twice and write it once more: ~0.2 ms at 4.8 TB/s when fused after the conv.


class Model(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.deconv = nn.ConvTranspose3d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm3d(out_channels)

    def forward(self, x):
        return torch.nn.functional.gelu(self.bn(self.deconv(x)))


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels]
