"""The video discriminator D: fully convolutional, so any input size works.

Input: two 3-frame clips stacked on channels, (B, 18, H, W) - the reference window and
either its flipped copy (real) or the generated frames (fake). Output: a map of logits
(B, 1, H/8, W/8), one per patch. The reference code ended in a Linear layer hard-wired
to 256x256 input (126M parameters); a 1x1 conv head works at any size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VideoDiscriminator(nn.Module):
    def __init__(self, frames: int = 6, width: int = 64) -> None:
        super().__init__()
        chans = (3 * frames, width, 2 * width, 4 * width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "conv": nn.Conv2d(cin, cout, 3, padding=1),
                "norm": nn.InstanceNorm2d(cout, affine=True),
            })
            for cin, cout in zip(chans[:-1], chans[1:])
        )
        self.head = nn.Conv2d(chans[-1], 1, 1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips
        for block in self.blocks:
            x = F.leaky_relu(block["norm"](block["conv"](x)), 0.2)
            x = F.max_pool2d(x, 2, ceil_mode=True)
        return self.head(x)
