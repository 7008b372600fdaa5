"""Local colour transfer through dense matching (Shih et al., SIGGRAPH Asia 2013).

A per-class transfer moves each class's mean and std, so the photo keeps its daytime
contrast at night. The reference itself shows how each of its places changes: where a
lit window or a street lamp is, a night frame is bright where the day frame was dark.
So, as Shih et al. hallucinate times of day:

1. anchor: the reference frame that looks most like the photo (the photo's "time of day");
2. match: every cell of the photo is matched to cells of the anchor that look alike and
   are of the same class (soft: its K nearest, weighted by distance);
3. per reference frame, the change from the anchor to that frame is fitted, cell by
   cell, as an affine colour map (3x3 matrix + offset, least squares over a window of
   cells, regularised towards the window's mean change), and each photo cell takes the
   maps of its matches.

The maps live on a coarse grid of cells, so they cost little at any output size; they are
interpolated to full resolution and applied to the photo's own pixels, which keeps its
edges. Works in linear light, where lamps add and night darkens by a factor.

Shapes: images (B, 3, H, W) in [0, 1]; maps (B, 12, h, w) as affine.apply_affine reads them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .affine import apply_affine
from .color import linear_to_srgb, rgb_to_lab, srgb_to_linear

CELLS = 64          # matching grid: cells along the long side
RADIUS = 1          # the affine map of a cell is fitted over (2 RADIUS + 1)^2 cells
RIDGE = 1e-3        # variance added to the fit: flat cells take the window's mean change
NEIGHBOURS = 8      # matches per photo cell
CLASS_PENALTY = 1e3  # squared distance added between cells of different classes
ROW_WEIGHT = 0.5     # weight of the vertical position in a cell's descriptor
# Trust in a match falls as exp(-distance / TRUST): only a photo of the reference's own place
# (distance near 0) follows it place by place; elsewhere the class-by-class transfer holds.
TRUST = 0.005


def grid_size(size: tuple[int, int], cells: int = CELLS) -> tuple[int, int]:
    """(h, w) of the cell grid of an image of size (H, W)."""
    h, w = size
    scale = cells / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _cells(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Mean of x over each cell: (B, C, H, W) -> (B, C, h, w)."""
    return F.adaptive_avg_pool2d(x, grid)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows, borders averaging fewer: (B, C, h, w) -> same."""
    return F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)


def fit_maps(anchor: torch.Tensor, frames: torch.Tensor, grid: tuple[int, int],
             radius: int = RADIUS, ridge: float = RIDGE) -> torch.Tensor:
    """Per cell, the affine map from the anchor's colours to each frame's, least squares
    over the window's pixels. anchor (1, 3, H, W), frames (B, 3, H, W) in linear light
    -> (B, 12, h, w) in apply_affine's layout (row c: out_c = sum_i m[c, i] x_i + m[c, 3])."""
    b = frames.shape[0]
    x, y = anchor, frames
    # Cell means of x, x x^T, y and x y^T, then over each window of cells.
    xx = (x[:, :, None] * x[:, None]).flatten(1, 2)                       # (1, 9, H, W)
    xy = (x[:, :, None] * y[:, None]).flatten(1, 2)                       # (B, 9, H, W): [i, c]
    mx, mxx = _box(_cells(x, grid), radius), _box(_cells(xx, grid), radius)
    my, mxy = _box(_cells(y, grid), radius), _box(_cells(xy, grid), radius)
    h, w = grid
    mx_ = mx.permute(0, 2, 3, 1)                                          # (1, h, w, 3)
    my_ = my.permute(0, 2, 3, 1)                                          # (B, h, w, 3)
    cov_xx = mxx.permute(0, 2, 3, 1).view(1, h, w, 3, 3) - mx_[..., :, None] * mx_[..., None, :]
    cov_xy = mxy.permute(0, 2, 3, 1).view(b, h, w, 3, 3) - mx_[..., :, None] * my_[..., None, :]
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    a = torch.linalg.solve((cov_xx + ridge * eye).expand(b, -1, -1, -1, -1), cov_xy)  # (B, h, w, 3[i], 3[c])
    offset = my_ - (mx_[..., :, None] * a).sum(-2)                         # (B, h, w, 3)
    m = torch.cat([a.transpose(-1, -2), offset[..., None]], -1)           # (B, h, w, 3, 4)
    return m.flatten(-2).permute(0, 3, 1, 2).contiguous()


def descriptors(image: torch.Tensor, ids: torch.Tensor, num_classes: int, grid: tuple[int, int]) -> torch.Tensor:
    """What a cell looks like: its Lab colour, and the mean and spread of its 3x3 and 5x5
    neighbourhoods (the same seen mirrored), its class and its row; lightness relative to
    the image's own, so a darker photo still matches by structure.
    image (1, 3, H, W) sRGB, ids (H, W) in 0..K-1 (-1 none) -> (h*w, D)."""
    lab = _cells(rgb_to_lab(image), grid)                                  # (1, 3, h, w)
    lab = (lab - lab.mean((2, 3), keepdim=True)) / lab[:, 0].std().clamp(min=1.0)
    parts = [lab]
    for r in (1, 2):
        padded = F.pad(lab, (r, r, r, r), mode="replicate")
        mean = F.avg_pool2d(padded, 2 * r + 1, 1)
        spread = (F.avg_pool2d(padded.square(), 2 * r + 1, 1) - mean.square()).clamp(min=0).sqrt()
        parts += [mean, spread]
    h, w = grid
    cls = F.interpolate(ids[None, None].float(), size=grid, mode="nearest")[0, 0].long()
    cls = torch.where(cls < 0, num_classes, cls).flatten()
    onehot = F.one_hot(cls, num_classes + 1).to(image.dtype) * (CLASS_PENALTY / 2) ** 0.5
    rows = torch.linspace(0, 1, h, dtype=image.dtype, device=image.device)[:, None].expand(h, w).reshape(-1, 1)
    return torch.cat([torch.cat(parts, 1)[0].flatten(1).t(), onehot, ROW_WEIGHT * rows], 1)


@dataclass
class Matches:
    """For each photo cell, its NEIGHBOURS anchor cells and their weights (summing to 1)."""
    index: torch.Tensor    # (n, k) int64, flat anchor cell
    weight: torch.Tensor   # (n, k)
    distance: torch.Tensor  # (n,) squared descriptor distance to the nearest
    grid: tuple[int, int]  # the photo's cell grid (h, w), n = h * w


def match(photo_desc: torch.Tensor, anchor_desc: torch.Tensor, grid: tuple[int, int],
          k: int = NEIGHBOURS) -> Matches:
    """Soft nearest neighbours of each photo cell among the anchor's cells."""
    d = torch.cdist(photo_desc, anchor_desc, compute_mode="donot_use_mm_for_euclid_dist").square()  # (n, m)
    k = min(k, d.shape[1])
    dist, index = d.topk(k, 1, largest=False)
    scale = dist[:, :1].clamp(min=1e-3)                                     # the nearest's distance
    weight = torch.softmax(-dist / (2 * scale), 1)
    return Matches(index, weight, dist[:, 0], grid)


def warp(maps: torch.Tensor, matches: Matches) -> torch.Tensor:
    """Anchor cells' maps (B, 12, h', w') -> the photo cells' (B, 12, h, w)."""
    flat = maps.flatten(2)                                                 # (B, 12, m)
    picked = flat[:, :, matches.index]                                     # (B, 12, n, k)
    out = (picked * matches.weight).sum(-1)
    return out.view(*maps.shape[:2], *matches.grid)


@dataclass
class LocalTransfer:
    """What the photo and the anchor give every frame."""
    matches: Matches
    anchor: torch.Tensor        # (1, 3, h, w) the anchor frame, linear
    anchor_grid: tuple[int, int]
    trust: torch.Tensor         # (1, 1, H, W) in [0, 1]: how far each photo pixel follows its match


def prepare(image: torch.Tensor, ids: torch.Tensor, anchor: torch.Tensor, anchor_ids: torch.Tensor,
            num_classes: int) -> LocalTransfer:
    """image (1, 3, H, W) sRGB with ids (H, W); anchor (1, 3, h, w) sRGB with anchor_ids (h, w)."""
    grid, anchor_grid = grid_size(tuple(image.shape[-2:])), grid_size(tuple(anchor.shape[-2:]))
    matches = match(descriptors(image, ids, num_classes, grid),
                    descriptors(anchor, anchor_ids, num_classes, anchor_grid), grid)
    trust = torch.exp(-matches.distance / TRUST).view(1, 1, *grid)
    trust = F.interpolate(_box(trust, 1), size=image.shape[-2:], mode="bilinear", align_corners=False)
    return LocalTransfer(matches, srgb_to_linear(anchor), anchor_grid, trust)


def transfer(lt: LocalTransfer, frames: torch.Tensor, photo: torch.Tensor, classwise: torch.Tensor) -> torch.Tensor:
    """The photo (1 or B, 3, H, W) sRGB changed as the reference changes from its anchor to
    each of frames (B, 3, h, w) sRGB, where it is trusted; elsewhere `classwise` (B, 3, H, W),
    the class-by-class transfer -> (B, 3, H, W) sRGB in [0, 1]."""
    if float(lt.trust.max()) < 1e-3:
        return classwise
    maps = warp(fit_maps(lt.anchor, srgb_to_linear(frames), lt.anchor_grid), lt.matches)
    maps = F.interpolate(maps, size=photo.shape[-2:], mode="bilinear", align_corners=False)
    near = linear_to_srgb(apply_affine(maps, srgb_to_linear(photo)))
    return torch.lerp(classwise, near, lt.trust)


class AnchorPicker:
    """Streams over the reference's frames and keeps the one that looks most like the
    photo; the frames' mean is a candidate too (a photo taken in even light can be
    closest to the reference's average day)."""

    def __init__(self, photo: torch.Tensor) -> None:
        self.target = appearance(photo)
        self.best, self.best_distance = None, float("inf")
        self.total, self.count = None, 0

    def add(self, frame: torch.Tensor) -> None:
        """frame (1, 3, h, w) sRGB."""
        self._consider(frame)
        self.total = frame.clone() if self.total is None else self.total + frame
        self.count += 1

    def _consider(self, frame: torch.Tensor) -> None:
        d = float((appearance(frame) - self.target).norm())
        if d < self.best_distance:
            self.best, self.best_distance = frame, d

    def anchor(self) -> torch.Tensor | None:
        """(1, 3, h, w): the chosen frame, or None if no frame was added."""
        if self.count > 1:
            self._consider(self.total / self.count)
        return self.best


def appearance(frames: torch.Tensor) -> torch.Tensor:
    """What the anchor is chosen by: the Lab mean and std of each frame at 64 px.
    (B, 3, H, W) sRGB -> (B, 6)."""
    small = F.interpolate(frames, size=grid_size(tuple(frames.shape[-2:])), mode="area")
    lab = rgb_to_lab(small).flatten(2)
    return torch.cat([lab.mean(2), lab.std(2)], 1)

