"""Haar wavelet pooling and unpooling (WCT2), as fixed depthwise convolutions.

Pooling splits each channel into four half-size bands with the orthonormal Haar kernels;
LL goes on down the encoder and (LH, HL, HH) skip to the decoder. Unpooling is the
transposed convolution with the same kernels, summed, which inverts pooling exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (4, 2, 2): LL, LH, HL, HH, each 1/2 * (+-1) so that the four kernels are orthonormal.
_HAAR = 0.5 * torch.tensor([
    [[1.0, 1.0], [1.0, 1.0]],      # LL: local average
    [[-1.0, 1.0], [-1.0, 1.0]],    # LH: horizontal change
    [[-1.0, -1.0], [1.0, 1.0]],    # HL: vertical change
    [[1.0, -1.0], [-1.0, 1.0]],    # HH: diagonal change
])


class HaarPool(nn.Module):
    """x (B, C, H, W) -> LL, (LH, HL, HH), each (B, C, ceil(H/2), ceil(W/2)).

    Odd sizes are reflect-padded to even first; HaarUnpool crops back to the size given.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernels", _HAAR.unsqueeze(1).clone(), persistent=False)  # (4,1,2,2)

    def forward(self, x: torch.Tensor):
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="reflect" if min(h, w) > 1 else "replicate")
        # Depthwise: every channel gets all four kernels -> (B, C*4, H/2, W/2), band-minor.
        k = self.kernels.repeat(c, 1, 1, 1).to(x.dtype)
        bands = F.conv2d(x, k, stride=2, groups=c)
        bands = bands.reshape(b, c, 4, bands.shape[-2], bands.shape[-1])
        ll, lh, hl, hh = bands.unbind(2)
        return ll, (lh, hl, hh)


class HaarUnpool(nn.Module):
    """Inverse of HaarPool: (LL, (LH, HL, HH)) at (h, w) -> (B, C, 2h, 2w), cropped to `size`."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernels", _HAAR.unsqueeze(1).clone(), persistent=False)

    def forward(self, ll: torch.Tensor, high: tuple, size: tuple[int, int] | None = None):
        b, c, h, w = ll.shape
        bands = torch.stack((ll, *high), dim=2).reshape(b, c * 4, h, w)
        k = self.kernels.repeat(c, 1, 1, 1).to(ll.dtype)
        x = F.conv_transpose2d(bands, k, stride=2, groups=c)
        if size is not None:
            x = x[..., : size[0], : size[1]]
        return x

    @staticmethod
    def low_only(ll: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Unpooling of the LL band alone: every value spread over its 2x2 block times 1/2.

        Unpooling is linear, so unpool(ll, high) = low_only(ll) + unpool(0, high); the
        decoder caches the second term when the high bands come from the image alone.
        """
        x = F.interpolate(ll, scale_factor=2.0, mode="nearest").mul_(0.5)
        return x if size is None else x[..., : size[0], : size[1]]
