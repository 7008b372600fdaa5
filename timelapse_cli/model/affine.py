"""The affine output head: the decoder predicts a 3x4 colour matrix per pixel.

out(p) = A(p) [base(p); 1], A (3, 4). Predicting a colour transform of an image instead
of the frame itself (as joint bilateral learning does for photorealistic transfer) keeps
every edge of the photo: the decoder cannot blur or invent structure, only recolour it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# A flattened row by row: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]].
IDENTITY = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def apply_affine(coeffs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """coeffs (B, 12, H, W), base (1 or B, 3, H, W) -> (B, 3, H, W)."""
    b, _, h, w = coeffs.shape
    a = coeffs.view(b, 3, 4, h, w)
    out = a[:, :, 3] + a[:, :, 0] * base[:, 0:1]
    out = out + a[:, :, 1] * base[:, 1:2]
    return out + a[:, :, 2] * base[:, 2:3]


def init_identity(conv: torch.nn.Conv2d) -> None:
    """Make a 12-channel conv output the identity matrix everywhere (weights 0)."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor(IDENTITY))


def smooth(coeffs: torch.Tensor, block: int) -> torch.Tensor:
    """Average (B, 12, H, W) coefficients over block x block cells and interpolate them back
    bilinearly: a correction with no detail finer than the block (block 1: unchanged)."""
    if block == 1:
        return coeffs
    size = coeffs.shape[-2:]
    low = F.avg_pool2d(coeffs, block, ceil_mode=True)
    return F.interpolate(low, size=size, mode="bilinear", align_corners=False)
