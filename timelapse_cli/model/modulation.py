"""Classwise AdaIN and NoiseAdaIN.

Statistics are taken per semantic class so that, e.g., the sky of the image takes the
colour and change of the reference's sky and not of its buildings.

Label maps are (H, W) int64 tensors with ids in 0..K-1; -1 marks pixels of no class.
A `Regions` holds a label map's one-hot masks at one feature resolution; every statistic
is a matmul with them: (B, C, N) @ (N, K+1) -> (B, C, K+1). The extra last column holds
global statistics, used for pixels of no class and for classes the style lacks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Regions:
    """One-hot masks of a label map resized (nearest) to `size` = (h, w)."""

    def __init__(self, labels: torch.Tensor, num_classes: int, size: tuple[int, int]) -> None:
        if tuple(labels.shape) != tuple(size):
            labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
        labels = torch.where(labels < 0, num_classes, labels)  # no class -> the global column
        self.size = tuple(size)
        self.num_classes = num_classes
        self.onehot = F.one_hot(labels.flatten(), num_classes + 1).to(torch.float32)  # (N, K+1)
        self.counts = self.onehot.sum(0)  # (K+1,)

    def to(self, device, dtype=torch.float32) -> "Regions":
        self.onehot = self.onehot.to(device, dtype)
        self.counts = self.counts.to(device, dtype)
        return self


def class_stats(feat: torch.Tensor, regions: Regions, eps: float):
    """Per-class mean and std of feat (B, C, h, w) -> two (B, C, K+1) tensors.

    Column K (and any class with no pixels) holds the statistics of the whole map.
    Variance is centred (two passes) for accuracy; std = sqrt(var + eps) is never 0.
    """
    b, c = feat.shape[:2]
    x = feat.reshape(b, c, -1)  # (B, C, N)
    onehot, counts = regions.onehot.to(feat.dtype), regions.counts.to(feat.dtype)
    present = counts[:-1] > 0  # (K,)
    n = counts.clamp(min=1)
    mean = (x @ onehot) / n  # (B, C, K+1)
    gmean = x.mean(-1, keepdim=True)  # (B, C, 1)
    mean = torch.cat([torch.where(present, mean[..., :-1], gmean), gmean], -1)
    centred = x - mean @ onehot.T  # each pixel minus its class mean
    var = (centred * centred) @ onehot / n
    gvar = x.var(-1, unbiased=False, keepdim=True)
    var = torch.cat([torch.where(present, var[..., :-1], gvar), gvar], -1)
    return mean, torch.sqrt(var + eps)


def normalize(feat: torch.Tensor, regions: Regions, eps: float) -> torch.Tensor:
    """(x - mu_s(x)) / sigma_s(x) for every class s; same shape as feat."""
    mean, std = class_stats(feat, regions, eps)
    b, c = feat.shape[:2]
    onehot_t = regions.onehot.to(feat.dtype).T
    x = feat.reshape(b, c, -1)
    return ((x - mean @ onehot_t) / (std @ onehot_t)).reshape(feat.shape)


def modulate(normalized: torch.Tensor, content: Regions, style: torch.Tensor, style_regions: Regions,
             eps: float, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Classwise (Noise)AdaIN on already normalised content features.

    normalized: (1 or B, C, H, W); style: (B, C, h, w) features of the reference;
    noise: None (AdaIN) or z (B, 1, H, W) multiplying the style mean (NoiseAdaIN).
    Returns (B, C, H, W) = sigma_s(y) * normalized + mu_s(y) [* z].
    """
    # class_stats already gives a class the style lacks the style's global statistics.
    s_mean, s_std = class_stats(style, style_regions, eps)  # (B, C, K+1)
    b, c = style.shape[:2]
    h, w = normalized.shape[-2:]
    onehot_t = content.onehot.to(style.dtype).T  # (K+1, N)
    mean_px = (s_mean @ onehot_t).view(b, c, h, w)
    std_px = (s_std @ onehot_t).view(b, c, h, w)
    if noise is not None:
        mean_px = mean_px * noise
    return std_px * normalized + mean_px
