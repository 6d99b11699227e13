"""Small CNN classifier: 4 x [conv3x3 -> BatchNorm -> ReLU -> MaxPool2d(2)], global average pool, Linear head."""
import torch
import torch.nn as nn

batch_size = 128
in_channels = 3
height = 128
width = 128
channels = [32, 64, 128, 256]
num_classes = 100

# convs 2*128*(32*128^2*27 + 64*64^2*288 + 128*32^2*576 + 256*16^2*1152) = 62 GFLOP -> ~1.4 ms on H100 fp32
# (the 3-channel first conv runs far below peak); BatchNorm/ReLU/pool on 268/134/67/34 MB activations
# ~3.2 GB -> ~1.3 ms; total ~2.7 ms
# measured: 5.11 ms eager fp32 on an H100 80GB HBM3 (torch 2.11, TF32 off, median of 15)


class Model(nn.Module):
    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        layers = []
        current = in_channels
        for c in channels:
            layers += [
                nn.Conv2d(current, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            current = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(current, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = self.pool(x).flatten(1)
        return self.fc(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, channels, num_classes]
