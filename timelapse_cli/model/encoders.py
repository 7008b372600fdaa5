"""VGG-19 encoders: E_GI (the image, Haar pooling) and E_GV (a 3-frame window).

Layer names follow VGG-19 (conv1_1 ... conv4_1) so ImageNet weights map one to one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GeneratorConfig
from .layers import ImageNetNorm, conv3x3
from .wavelet import HaarPool

# VGG-19 up to conv4_1: (name, input level, output level); "pool" between levels.
# Level k has GeneratorConfig.channels(k) channels; level 0 is the RGB input.
VGG19_LAYERS = (
    ("conv1_1", 0, 1), ("conv1_2", 1, 1), "pool",
    ("conv2_1", 1, 2), ("conv2_2", 2, 2), "pool",
    ("conv3_1", 2, 3), ("conv3_2", 3, 3), ("conv3_3", 3, 3), ("conv3_4", 3, 3), "pool",
    ("conv4_1", 3, 4),
)


def _channels(cfg: GeneratorConfig, level: int, in_channels: int = 3) -> int:
    return in_channels if level == 0 else cfg.channels(level)


class VGGEncoder(nn.Module):
    """VGG-19 conv1_1 .. relu4_1 with reflection padding.

    pool="haar" is E_GI: the three max-pools become Haar pools whose high bands are kept
    as skips for the decoder. pool="max" is the plain VGG-19 used as a loss network.
    """

    def __init__(self, cfg: GeneratorConfig, pool: str = "haar") -> None:
        super().__init__()
        self.pool = pool
        self.norm = ImageNetNorm(1, cfg.imagenet_norm)
        for layer in VGG19_LAYERS:
            if layer != "pool":
                name, lin, lout = layer
                setattr(self, name, nn.Conv2d(_channels(cfg, lin), _channels(cfg, lout), 3))
        self.haar = HaarPool()

    def forward(self, x: torch.Tensor):
        """x (B, 3, H, W) in [0, 1] -> (relu4_1, skips, sizes, relus).

        relu4_1: (B, C4, H/8, W/8). skips[i]: the (LH, HL, HH) bands of pool i+1 (at
        H/2, H/4, H/8), sizes[i]: the (h, w) before that pool, relus: relu1_1 .. relu4_1.
        """
        x = self.norm(x)
        skips, sizes, relus = [], [], []
        for layer in VGG19_LAYERS:
            if layer == "pool":
                sizes.append(tuple(x.shape[-2:]))
                if self.pool == "haar":
                    x, high = self.haar(x)
                    skips.append(high)
                else:
                    x = F.max_pool2d(x, 2, ceil_mode=True)
                continue
            name = layer[0]
            x = F.relu(conv3x3(x, getattr(self, name)))
            if name.endswith("_1"):
                relus.append(x)
        return x, skips, sizes, relus


class VideoEncoder(nn.Module):
    """E_GV: VGG-19 conv1_1 .. relu2_1 on a window of 3 frames stacked on channels.

    Only channel statistics of its outputs are used, so the window may be any size. It
    keeps VGG's own zero padding (built into the convs, so no padded copy is made): no
    decoder sees these features, so reflection padding buys nothing here.
    """

    frames = 3

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c1, c2 = cfg.channels(1), cfg.channels(2)
        self.norm = ImageNetNorm(self.frames, cfg.imagenet_norm)
        self.conv1_1 = nn.Conv2d(3 * self.frames, c1, 3, padding=1)
        self.conv1_2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.conv2_1 = nn.Conv2d(c1, c2, 3, padding=1)

    def forward(self, window: torch.Tensor):
        """window (B, 9, h, w) in [0, 1] -> relu1_1 (B, C1, h, w), relu2_1 (B, C2, h/2, w/2)."""
        x = self.norm(window)
        relu1_1 = F.relu(self.conv1_1(x), inplace=True)
        x = F.relu(self.conv1_2(relu1_1), inplace=True)
        # VGG's own max-pool: conv2_1's ImageNet weights expect max-pooled input.
        x = F.max_pool2d(x, 2, ceil_mode=True)
        relu2_1 = F.relu(self.conv2_1(x), inplace=True)
        return relu1_1, relu2_1
