"""Transposed 2D convolution, 3x3, stride 2, padding 1, output padding 1 (2x upsampling, as in a decoder):
(64, 128, 64, 64) -> (64, 64, 128, 128)."""
import torch
import torch.nn as nn

batch_size = 64
in_channels = 128
out_channels = 64
height = 64
width = 64
kernel_size = 3
stride = 2
padding = 1
output_padding = 1

# ~2*64*128*(64*64)*64*9 FLOP = 38.7 GFLOP (every input pixel times every tap; the phases of a 3x3
# filter at stride 2 hold 1, 2, 2 and 4 taps) -> ~0.9 ms on an H100 at fp32 peak; input 134 MB,
# output 268 MB. Transposed convolutions are where cuDNN may run an fp32 FMA kernel with TF32 allowed
# (level2/17 on an H200: 3.3 ms for 69 GFLOP).


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, output_padding):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                     output_padding=output_padding)

    def forward(self, x):
        return self.up(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, padding, output_padding]
