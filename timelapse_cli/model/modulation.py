"""Classwise AdaIN and NoiseAdaIN.

Statistics are taken per semantic class so that, e.g., the sky of the image takes the
colour and change of the reference's sky and not of its buildings:

    AdaIN_s(x, y)      = sigma_s(y) * (x - mu_s(x)) / sigma_s(x) + mu_s(y)
    NoiseAdaIN_s(x, y) = sigma_s(y) * (x - mu_s(x)) / sigma_s(x) + mu_s(y) * z

Label maps are (H, W) int64 tensors with ids in 0..K-1; -1 marks pixels of no class.
Statistics are (B, C, K+1) tensors: column s for class s, and a last column holding the
statistics of the whole map, used for pixels of no class and for classes the other map
lacks. Per pixel they are gathered back with the label index (or broadcast when a single
region covers the map, the common one-class case, which then costs no gather at all).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SoftLabels:
    """A label map with soft borders: pixel p belongs to class ids[p] with weight 1 - weight[p]
    and to class other[p] with weight[p]. All (H, W); weight is 0 away from borders, so
    those pixels are exactly hard-labelled. Per-pixel values gathered from per-class
    statistics are blended by these weights instead of switching at the border.
    """
    ids: torch.Tensor     # (H, W) int64, the hard labels
    other: torch.Tensor   # (H, W) int64, the second class of a border pixel
    weight: torch.Tensor  # (H, W) float in [0, 1], the second class's share

    @property
    def shape(self) -> torch.Size:
        return self.ids.shape

    def to(self, device) -> "SoftLabels":
        return SoftLabels(self.ids.to(device), self.other.to(device), self.weight.to(device))


def _resize_ids(ids: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(ids.shape) == tuple(size):
        return ids
    return F.interpolate(ids[None, None].float(), size=size, mode="nearest")[0, 0].long()


class Regions:
    """A label map (hard, or SoftLabels) resized to a feature resolution `size` = (h, w).

    Class statistics always use the hard labels; SoftLabels only change `gather`, which
    blends the two classes of each border pixel.
    """

    def __init__(self, labels: torch.Tensor | SoftLabels, num_classes: int, size: tuple[int, int]) -> None:
        soft = labels if isinstance(labels, SoftLabels) else None
        labels = _resize_ids(soft.ids if soft else labels, size)
        self.size = tuple(size)
        self.num_classes = num_classes
        self.index = torch.where(labels < 0, num_classes, labels).flatten()  # (N,), no class -> K
        self.counts = torch.bincount(self.index, minlength=num_classes + 1).float()  # (K+1,)
        used = torch.nonzero(self.counts).flatten().tolist()
        # When one region covers everything, every column equals the global statistics.
        self.single = used[0] if len(used) == 1 else None
        self.onehot = None if self.single is not None else F.one_hot(self.index, num_classes + 1).float()
        # Border pixels of soft labels: their flat positions, own and second class, and the
        # second class's weight.
        self.blend = self.blend_own = self.blend_index = self.blend_weight = None
        if soft is not None and self.single is None:
            weight = soft.weight
            if tuple(weight.shape) != self.size:
                weight = F.interpolate(weight[None, None].float(), size=self.size, mode="bilinear",
                                       align_corners=False)[0, 0]
            other = _resize_ids(soft.other, self.size).flatten()
            weight = weight.flatten()
            self.blend = torch.nonzero(weight > 0).flatten()
            self.blend_own = self.index[self.blend]
            self.blend_index = torch.where(other < 0, num_classes, other)[self.blend]
            self.blend_weight = weight[self.blend]

    def to(self, device) -> "Regions":
        self.index = self.index.to(device)
        self.counts = self.counts.to(device)
        self.onehot = None if self.onehot is None else self.onehot.to(device)
        if self.blend is not None:
            self.blend, self.blend_own = self.blend.to(device), self.blend_own.to(device)
            self.blend_index = self.blend_index.to(device)
            self.blend_weight = self.blend_weight.to(device)
        return self

    def gather(self, stats: torch.Tensor, soft: bool = True) -> torch.Tensor:
        """(B, C, K+1) per-class values -> per pixel (B, C, h, w), or (B, C, 1, 1) if single;
        soft False: each pixel its own class's value, border pixels not blended."""
        b, c = stats.shape[:2]
        if self.single is not None:
            return stats[..., self.single, None, None]
        # Rows of a (B, K+1, C) table: each pixel copies C contiguous values, and the
        # (B, h, w, C) result is a channels_last view of (B, C, h, w), the model's layout.
        # (index_select along the last axis of (B, C, K+1) is ~3x slower.)
        table = stats.transpose(1, 2).contiguous()  # (B, K+1, C)
        rows = table.index_select(1, self.index)  # (B, h*w, C)
        if soft and self.blend is not None and len(self.blend):
            # Border pixels: lerp towards their second class (only these few rows are touched).
            mine = rows.index_select(1, self.blend)
            other = table.index_select(1, self.blend_index)
            weight = self.blend_weight.to(rows.dtype)[None, :, None]
            rows = rows.index_copy(1, self.blend, torch.lerp(mine, other, weight))
        return rows.view(b, *self.size, c).permute(0, 3, 1, 2)

    def has_border(self) -> bool:
        """Whether some pixels blend two classes (soft labels)."""
        return self.blend is not None and len(self.blend) > 0

    def border_affine(self, content: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                      border: "Border") -> torch.Tensor:
        """content * scale + shift with per-class scale and shift (B, C, K+1), where a soft
        border pixel is read as the two colours it mixes (`border`): each class transfers
        its own colour beside the pixel plus the pixel's detail d, mixed by the labels'
        weight w, lerp(T_own(own + d), T_other(other + d), w) with
        d = x - lerp(own, other, w). With own = other = x this is the plain soft blend.

        Read as sky, the ground's colour at a roof edge is a deviation of several of the
        sky's (small) sigmas from its mean; where the two classes' transfers differ a lot
        (at night) the blend of the two shows a dark red rim along the skyline."""
        out = torch.addcmul(self.gather(shift, soft=False), content, self.gather(scale, soft=False))
        b, c = out.shape[:2]
        flat = out.reshape(b, c, -1)                                      # (B, C, h*w)
        x = content.reshape(content.shape[0], c, -1).index_select(2, self.blend)  # (B or 1, C, n)
        w = self.blend_weight.to(out.dtype)
        detail = x - torch.lerp(border.own, border.other, w)
        mine = scale[..., self.blend_own] * (border.own + detail) + shift[..., self.blend_own]
        theirs = scale[..., self.blend_index] * (border.other + detail) + shift[..., self.blend_index]
        return flat.index_copy(2, self.blend, torch.lerp(mine, theirs, w)).view(b, c, *self.size)


@dataclass
class Border:
    """The colours each soft border pixel of a Regions mixes (its n blend pixels)."""
    own: torch.Tensor    # (1 or B, C, n) its own class's colour beside it
    other: torch.Tensor  # (1 or B, C, n) its second class's colour beside it


def border_content(content: torch.Tensor, regions: Regions, reach: float = 1 / 32, side: int = 256) -> Border | None:
    """The colours the two classes of each soft border pixel have beside it: content
    (1, C, H, W) at `regions`' size; None without soft borders.

    A class's colour beside a pixel is the mean of that class's pixels within `reach` of
    the long side (about twice the soft matte's band), weighted by how surely they are
    that class ((1 - their own blend weight)^4: a half-and-half pixel counts 1/16), read
    on a grid of `side` px (it is smooth); where none is that near, the class's mean."""
    if not regions.has_border():
        return None
    h, w = regions.size
    scale = min(1.0, side / max(h, w))
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    r = max(1, round(reach * max(small)))
    sure = torch.ones(h * w, dtype=content.dtype, device=content.device)
    sure[regions.blend] = (1 - regions.blend_weight.to(content.dtype)) ** 4
    ys = (regions.blend // w * small[0] // h).clamp(max=small[0] - 1)
    xs = (regions.blend % w * small[1] // w).clamp(max=small[1] - 1)
    classes = (regions.blend_own, regions.blend_index)                 # (n,) each
    near = [content.new_zeros(1, content.shape[1], len(regions.blend)) for _ in classes]
    for k in torch.cat(classes).unique().tolist():
        weight = ((regions.index == k).to(content.dtype) * sure).view(1, 1, h, w)
        num, den = content[:1] * weight, weight
        if scale < 1:
            num, den = F.adaptive_avg_pool2d(num, small), F.adaptive_avg_pool2d(den, small)
        num = F.avg_pool2d(num, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
        den = F.avg_pool2d(den, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
        whole = (content[:1] * weight).sum((2, 3)) / weight.sum().clamp(min=1e-6)   # (1, C)
        for o, cls in zip(near, classes):
            pick = cls == k
            n, d = num[0][:, ys[pick], xs[pick]], den[0][:, ys[pick], xs[pick]]    # (C, m), (1, m)
            o[0][:, pick] = torch.where(d > 1e-3, n / d.clamp(min=1e-6), whole[0][:, None])
    return Border(*near)


def class_stats(feat: torch.Tensor, regions: Regions, eps: float):
    """Per-class mean and std of feat (B, C, h, w) -> two (B, C, K+1) tensors.

    Column K, and any class with no pixels, hold the statistics of the whole map. Class
    sums are matrix products with the one-hot label map, taken on deviations from the
    global mean so that E[d^2] - E[d]^2 keeps its digits; std = sqrt(var + eps) is never 0.
    """
    b, c = feat.shape[:2]
    k1 = regions.num_classes + 1
    # Global statistics from 4-D reductions (fast in any memory layout; var_mean is slower).
    gmean = feat.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
    d = feat - gmean
    gvar = d.square().mean((2, 3))[..., None]  # (B, C, 1)
    gmean = gmean[..., 0]                      # (B, C, 1)
    if regions.single is not None:
        return gmean.expand(b, c, k1), torch.sqrt(gvar.expand(b, c, k1) + eps)
    onehot = regions.onehot.to(feat.dtype)  # (N, K+1)
    n = regions.counts.to(feat.dtype).clamp(min=1)
    if d.is_contiguous(memory_format=torch.channels_last):
        x = d.permute(0, 2, 3, 1).reshape(b, -1, c)  # (B, N, C), a view: no copy

        def class_mean(t):  # (B, N, C) -> (B, C, K+1)
            return (onehot.T @ t).transpose(1, 2) / n
    else:
        x = d.reshape(b, c, -1)  # (B, C, N)

        def class_mean(t):  # (B, C, N) -> (B, C, K+1)
            return (t @ onehot) / n
    mean_d = class_mean(x)
    var = (class_mean(x.square()) - mean_d.square()).clamp(min=0)
    present = regions.counts > 0
    present[-1] = False  # the last column is always the global one
    mean = torch.where(present, gmean + mean_d, gmean)
    var = torch.where(present, var, gvar)
    return mean, torch.sqrt(var + eps)


def modulate(content: torch.Tensor, regions: Regions, style: torch.Tensor, style_regions: Regions,
             eps: float, noise: torch.Tensor | None = None, content_stats: tuple | None = None,
             style_stats: tuple | None = None, border: Border | None = None) -> torch.Tensor:
    """Classwise AdaIN (noise None) or NoiseAdaIN (noise z of shape (B, 1, H, W)).

    content: (1 or B, C, H, W) with label `regions`; style: (B, C, h, w) with its own
    `style_regions` (any size). `content_stats` may hold class_stats(content) computed
    earlier (the image-only part of the decoder caches them); `style_stats` the target
    statistics (B, C, K+1) in place of class_stats(style) (style is then unused);
    `border` (Regions.border_affine): the colours each soft border pixel mixes (None:
    both classes act on the pixel itself). Returns (B, C, H, W).
    """
    c_mean, c_std = content_stats if content_stats is not None else class_stats(content, regions, eps)
    s_mean, s_std = style_stats if style_stats is not None else class_stats(style, style_regions, eps)
    # sigma_y (x - mu_x) / sigma_x + mu_y z  ==  x * scale + shift + mu_y z, per pixel,
    # in two fused passes (addcmul) over the full-size tensor.
    scale = s_std / c_std
    shift = -c_mean * scale
    if border is not None and regions.has_border():
        out = regions.border_affine(content, scale, shift, border)
    else:
        out = torch.addcmul(regions.gather(shift), content, regions.gather(scale))
    mean = regions.gather(s_mean)
    return out.addcmul_(mean, noise) if noise is not None else out.add_(mean)
