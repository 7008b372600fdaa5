"""sRGB <-> CIE L*a*b* (D65), for the colour-transfer baselines.

Lab separates lightness from the two colour axes and is roughly perceptually uniform, so
matching mean and std per channel there (Reinhard et al. 2001) moves colour without the
cross-channel casts the same matching gives in RGB. Pure torch: runs on the frames'
device, batched. Shapes: (B, 3, H, W), sRGB in [0, 1]; L in [0, 100], a and b about +-100.
"""
from __future__ import annotations

import torch

from .modulation import modulate

# Linear sRGB -> XYZ, and the D65 white point (IEC 61966-2-1 / CIE 15).
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_WHITE = (0.95047, 1.0, 1.08883)
_DELTA = 6 / 29  # where the cube root of Lab's f(t) meets its linear toe


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel 3x3 matrix: (3, 3) @ (B, 3, H, W) -> (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", m, x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB values (clipped to [0, 1]) -> linear light."""
    rgb = rgb.clamp(0, 1)
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear light (clipped to [0, 1]) -> sRGB values in [0, 1]."""
    linear = linear.clamp(0, 1)
    rgb = torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    return linear_to_lab(srgb_to_linear(rgb))


def linear_to_lab(linear: torch.Tensor) -> torch.Tensor:
    """Linear light (B, 3, H, W) -> Lab: rgb_to_lab for an image already in linear light."""
    xyz = _apply(_matrix(_RGB_TO_XYZ, linear), linear) / _matrix(_WHITE, linear)[:, None, None]
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp(min=_DELTA ** 3) ** (1 / 3), xyz / (3 * _DELTA ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_lab; colours outside sRGB are clipped to [0, 1]."""
    L, a, b = lab.unbind(1)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], 1)
    xyz = torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4 / 29)) * _matrix(_WHITE, lab)[:, None, None]
    return linear_to_srgb(_apply(torch.linalg.inv(_matrix(_RGB_TO_XYZ, lab)), xyz))


# Variance floor of the Lab statistics, in Lab units (std 0.1): keeps flat regions finite
# without visible effect.
LAB_EPS = 1e-2


def lab_transfer(lab: torch.Tensor, regions, frame: torch.Tensor, frame_regions,
                 lab_stats: tuple | None = None) -> torch.Tensor:
    """Classwise mean/std colour transfer in Lab (Reinhard et al. 2001, per class).

    lab (1, 3, H, W): the photo in Lab with its `regions`; frame (B, 3, h, w): reference
    frames in sRGB [0, 1] with `frame_regions`; lab_stats: class_stats(lab) if already
    computed. Returns (B, 3, H, W) sRGB in [0, 1]. This is classwise AdaIN on Lab pixels.
    """
    return lab_to_rgb(modulate(lab, regions, rgb_to_lab(frame), frame_regions, LAB_EPS,
                               content_stats=lab_stats))
