"""Small building blocks shared by the encoders and the decoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ImageNet statistics the VGG-19 weights were trained with (RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv3x3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """3x3 convolution with reflection padding (replicate where a side is 1 pixel)."""
    mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
    return conv(F.pad(x, (1, 1, 1, 1), mode=mode))


class ImageNetNorm(nn.Module):
    """(B, 3*frames, H, W) RGB in [0, 1] -> ImageNet-normalised, frame by frame."""

    def __init__(self, frames: int = 1, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        mean = torch.tensor(IMAGENET_MEAN * frames).view(1, -1, 1, 1)
        std = torch.tensor(IMAGENET_STD * frames).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std if self.enabled else x
