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


def apply_affine(coeffs: torch.Tensor, base: torch.Tensor, post=None) -> torch.Tensor:
    """coeffs (B, 12, h, w), base (1 or B, 3, H, W) -> (B, 3, H, W); post: an elementwise
    function applied to the result (e.g. linear_to_srgb), fused with it.

    Coefficients smaller than the base (a coarse grid, or the network's working size) are
    interpolated bilinearly to it (align_corners=False, as F.interpolate), a band of rows
    at a time: along x once for the whole grid, along y per band. A band's coefficients
    and result stay in the CPU's cache, where a frame's worth of 12 planes would take 12x
    a frame's memory (GBs at 4K) and pass through it many times."""
    b = coeffs.shape[0]
    size = tuple(base.shape[-2:])
    if tuple(coeffs.shape[-2:]) == size:
        out = _affine(coeffs.view(b, 3, 4, *size), base)
        return out if post is None else post(out)
    h, (height, width) = coeffs.shape[-2], size
    wide = F.interpolate(coeffs, size=(h, width), mode="bilinear", align_corners=False)  # (B, 12, h, W)
    src = ((torch.arange(height, device=coeffs.device, dtype=coeffs.dtype) + 0.5) * (h / height) - 0.5).clamp(min=0)
    top = src.floor().long().clamp(max=h - 1)
    below, t = (top + 1).clamp(max=h - 1), (src - top).clamp(0, 1)
    out = torch.empty(b, 3, height, width, dtype=base.dtype, device=base.device)
    rows = max(1, BAND_PIXELS // (b * width))
    starts = top.tolist()
    r = 0
    while r < height:  # a band: rows between the same two grid rows (i, i + 1), at most `rows`
        i = starts[r]
        end = min(height, r + rows)
        while starts[end - 1] != i:
            end -= 1
        band = slice(r, end)
        a = torch.lerp(wide[:, :, i:i + 1], wide[:, :, int(below[r]):int(below[r]) + 1], t[band].view(1, 1, -1, 1))
        o = _affine(a.view(b, 3, 4, -1, width), base[:, :, band])
        out[:, :, band] = o if post is None else post(o)
        r = end
    return out


BAND_PIXELS = 1 << 16  # pixels (frames x rows x width) of a band: its 12 planes take 3 MB


def _affine(a: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """a (B, 3, 4, H, W) matrices, base (1 or B, 3, H, W) -> A [base; 1]: (B, 3, H, W)."""
    out = a[:, :, 3] + a[:, :, 0] * base[:, 0:1]
    out = out + a[:, :, 1] * base[:, 1:2]
    return out + a[:, :, 2] * base[:, 2:3]


def init_identity(conv: torch.nn.Conv2d) -> None:
    """Make a 12-channel conv output the identity matrix everywhere (weights 0)."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor(IDENTITY))


def smooth(coeffs: torch.Tensor, block: int) -> torch.Tensor:
    """Average (B, 12, H, W) coefficients over block x block cells: (B, 12, H/block, W/block),
    which apply_affine interpolates bilinearly to the image it acts on, so the correction
    has no detail finer than the block (block 1: unchanged)."""
    if block == 1:
        return coeffs
    return F.avg_pool2d(coeffs, block, ceil_mode=True)
