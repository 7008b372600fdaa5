"""D_G: the mirror of E_GI with Haar unpooling and two classwise modulations.

Decoder layers are named after the encoder layer they mirror. The path splits at the
first modulation: `head` (up to D_relu2.1) depends on the image alone and runs once per
image; `tail` runs per frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GeneratorConfig
from .affine import init_identity
from .layers import conv3x3
from .wavelet import HaarUnpool


class Decoder(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c1, c2, c3, c4 = (cfg.channels(k) for k in (1, 2, 3, 4))
        self.conv4_1 = nn.Conv2d(c4, c3, 3)
        self.conv3_4 = nn.Conv2d(c3, c3, 3)
        self.conv3_3 = nn.Conv2d(c3, c3, 3)
        self.conv3_2 = nn.Conv2d(c3, c3, 3)
        self.conv3_1 = nn.Conv2d(c3, c2, 3)
        self.conv2_2 = nn.Conv2d(c2, c2, 3)
        self.conv2_1 = nn.Conv2d(c2, c1, 3)
        self.conv1_2 = nn.Conv2d(c1, c1, 3)
        self.conv1_1 = nn.Conv2d(c1, cfg.out_channels, 3)
        if cfg.output == "affine":
            init_identity(self.conv1_1)
        self.unpool = HaarUnpool()

    def head(self, relu4_1: torch.Tensor, skips: list, sizes: list) -> torch.Tensor:
        """relu4_1 (B, C4, H/8, W/8) + skips of pools 2, 3 -> D_relu2.1 (B, C2, H/2, W/2)."""
        x = F.relu(conv3x3(relu4_1, self.conv4_1), inplace=True)
        x = self.unpool(x, skips[2], sizes[2])
        for conv in (self.conv3_4, self.conv3_3, self.conv3_2, self.conv3_1):
            x = F.relu(conv3x3(x, conv), inplace=True)
        x = self.unpool(x, skips[1], sizes[1])
        return F.relu(conv3x3(x, self.conv2_2), inplace=True)

    def image_high(self, skip1: tuple, size1: tuple) -> torch.Tensor:
        """The pool-1 high bands unpooled alone: (1, C1, H, W), fixed for an image."""
        zeros = torch.zeros_like(skip1[0])
        return self.unpool(zeros, skip1, size1)

    def middle(self, x: torch.Tensor, high1: torch.Tensor) -> torch.Tensor:
        """Modulated D_relu2.1 (B, C2, H/2, W/2) + image_high (1, C1, H, W) -> D_relu1.1 (B, C1, H, W).

        Haar unpooling is linear: unpool(x, skips) = low_only(x) + unpool(0, skips), and
        the second term depends on the image alone, so it is passed in precomputed.
        """
        x = F.relu(conv3x3(x, self.conv2_1), inplace=True)
        x = self.unpool.low_only(x, tuple(high1.shape[-2:])) + high1
        return F.relu(conv3x3(x, self.conv1_2), inplace=True)

    def to_rgb(self, x: torch.Tensor) -> torch.Tensor:
        """Modulated D_relu1.1 (B, C1, H, W) -> RGB (B, 3, H, W), or the affine head's
        (B, 12, H, W) colour matrices; no ReLU on the last conv."""
        return conv3x3(x, self.conv1_1)
