"""Tiny VGG: 3 blocks of [conv3x3 -> ReLU -> conv3x3 -> ReLU -> MaxPool2d(2)], then Linear -> ReLU -> Linear."""
import torch
import torch.nn as nn

batch_size = 64
in_channels = 3
image_size = 128
block_channels = [32, 64, 128]
hidden = 512
num_classes = 10

# convs 2*64*(32*128^2*(27 + 288) + 64*64^2*(288 + 576) + 128*32^2*(576 + 1152)) = 79 GFLOP,
# classifier 2*64*32768*512 = 2 GFLOP -> ~1.8 ms on H100 fp32; ReLUs and pools ~1.5 GB -> ~0.6 ms; total ~2.4 ms
# measured: 4.88 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, image_size, block_channels, hidden, num_classes):
        super().__init__()
        layers = []
        current = in_channels
        for c in block_channels:
            layers += [
                nn.Conv2d(current, c, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            current = c
        self.features = nn.Sequential(*layers)
        spatial = image_size // (2 ** len(block_channels))
        self.classifier = nn.Sequential(
            nn.Linear(current * spatial * spatial, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def get_inputs():
    return [torch.randn(batch_size, in_channels, image_size, image_size)]


def get_init_inputs():
    return [in_channels, image_size, block_channels, hidden, num_classes]
