"""The ``cls-resnet`` classifier: a compact 3D ResNet on the (1, layers, alpha, r) image of voxels / E_inc.

ResNet-18's layout in 3D (four stages of ``blocks`` basic blocks, widths 32/64/64/128, the first stage at full
resolution, each later one halving every axis), global average pooling, then log10 E_inc through a BatchNorm1d is
concatenated before the final linear layer, as in the CaloChallenge's CNN classifier.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BasicBlock3d(nn.Module):
    """conv-BN-ReLU-conv-BN plus the (projected when the shape changes) input, then ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm3d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels_out, channels_out, 3, padding=1, bias=False),
            nn.BatchNorm3d(channels_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv3d(channels_in, channels_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm3d(channels_out))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ShowerResNet(nn.Module):
    """Logit of "this shower is Geant4" from (image (B, 1, layers, alpha, r), log10 E_inc (B, 1))."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 64, 128), blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm3d(widths[0]),
                                  nn.ReLU(inplace=True))
        stages, channels = [], widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            for j in range(n_blocks):
                stages.append(BasicBlock3d(channels, width, stride=2 if (i > 0 and j == 0) else 1))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.energy_norm = nn.BatchNorm1d(1)
        self.head = nn.Linear(channels + 1, 1)

    def forward(self, inputs: tuple[Tensor, Tensor]) -> Tensor:
        image, log_e = inputs
        features = self.pool(self.stages(self.stem(image))).flatten(1)
        return self.head(torch.cat([features, self.energy_norm(log_e)], dim=1))
