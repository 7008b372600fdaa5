"""Same view: a photo of the reference's own place changes as that place does.

A per-class transfer moves each class's mean and std, so the photo keeps its daytime
contrast at night. When the photo shows the reference's own view (a still from the same
webcam or tripod, taken at another time; or mirrored), the reference says exactly how
each part of it changes: where a window or a street lamp lights up, a night frame is
bright where the day was dark. So, in the manner of Shih et al. (SIGGRAPH Asia 2013),
who match a photo to a time-lapse frame taken at its time of day and transfer the
locally affine colour change of matched places:

1. anchor: the reference frame that looks most like the photo (its "time of day"), or
   the reference's mean frame if that is closer;
2. same view: the photo is compared with the anchor, as it is and mirrored, by the
   correlation of their edges (gradient magnitudes): the same view at another hour
   correlates 0.48-0.85, another place 0.0-0.34 (the validation cameras);
3. per reference frame, the change from the anchor to that frame is fitted cell by cell
   as an affine colour map (3x3 matrix + offset, least squares over a window of cells,
   ridge-regularised towards the window's mean change) and applied to the photo's own
   pixels at the same (or mirrored) place, in linear light where lamps add and night
   darkens by a factor.

Where the view is not the same, the class-by-class transfer holds (trust 0). Matching
another place densely (Shih et al.'s full method) is not done: on other cities'
references its patchwork of maps looked worse than the per-class transfer.

Shapes: images (B, 3, H, W) in [0, 1]; maps (B, 12, h, w) as affine.apply_affine reads them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .affine import apply_affine
from .color import linear_to_srgb, rgb_to_lab, srgb_to_linear

CELLS = 64          # cells along the long side
RADIUS = 1          # the affine map of a cell is fitted over (2 RADIUS + 1)^2 cells
RIDGE = 1e-3        # variance added to the fit: flat cells take the window's mean change
# Edge correlation at which the view counts as not the same (below) and as the same
# (above; linear in between), chosen on the validation cameras.
SAME_VIEW = (0.35, 0.45)
EDGE_SIZE = 128     # long side at which edges are compared


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


@dataclass
class AnchorCells:
    """The anchor's side of every fit, computed once: its linear colours and, per cell,
    their mean and regularised covariance over the cell's window."""
    linear: torch.Tensor  # (1, 3, H, W)
    mean: torch.Tensor    # (1, h, w, 3)
    cov: torch.Tensor     # (1, h, w, 3, 3), RIDGE on the diagonal
    grid: tuple[int, int]
    radius: int


def anchor_cells(anchor: torch.Tensor, grid: tuple[int, int], radius: int = RADIUS,
                 ridge: float = RIDGE) -> AnchorCells:
    """anchor (1, 3, H, W) in linear light."""
    x = anchor
    xx = (x[:, :, None] * x[:, None]).flatten(1, 2)                       # (1, 9, H, W)
    mean = _box(_cells(x, grid), radius).permute(0, 2, 3, 1)              # (1, h, w, 3)
    cov = _box(_cells(xx, grid), radius).permute(0, 2, 3, 1).unflatten(-1, (3, 3))
    cov = cov - mean[..., :, None] * mean[..., None, :]
    return AnchorCells(x, mean, cov + ridge * torch.eye(3, dtype=x.dtype, device=x.device), grid, radius)


def fit_maps(cells: AnchorCells, frames: torch.Tensor) -> torch.Tensor:
    """Per cell, the affine map from the anchor's colours to each frame's, least squares
    over the window's pixels. frames (B, 3, H, W) in linear light -> (B, 12, h, w) in
    apply_affine's layout (row c: out_c = sum_i m[c, i] x_i + m[c, 3])."""
    x, y = cells.linear, frames
    # Cell means of y and x y^T over each window of cells.
    xy = (x[:, :, None] * y[:, None]).flatten(1, 2)                       # (B, 9, H, W): [i, c]
    my = _box(_cells(y, cells.grid), cells.radius).permute(0, 2, 3, 1)    # (B, h, w, 3)
    mxy = _box(_cells(xy, cells.grid), cells.radius).permute(0, 2, 3, 1).unflatten(-1, (3, 3))
    cov_xy = mxy - cells.mean[..., :, None] * my[..., None, :]
    a = torch.linalg.solve(cells.cov.expand(y.shape[0], -1, -1, -1, -1), cov_xy)  # (B, h, w, 3[i], 3[c])
    offset = my - (cells.mean[..., :, None] * a).sum(-2)                   # (B, h, w, 3)
    m = torch.cat([a.transpose(-1, -2), offset[..., None]], -1)           # (B, h, w, 3, 4)
    return m.flatten(-2).permute(0, 3, 1, 2).contiguous()


def edges(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Gradient magnitude of the standardised lightness at `size`, zero-mean, unit norm:
    (1, 3, H, W) sRGB -> (h-1, w-1)."""
    y = rgb_to_lab(F.interpolate(image, size=size, mode="area"))[0, 0]
    y = (y - y.mean()) / y.std().clamp(min=1e-6)
    g = torch.sqrt((y[:-1, 1:] - y[:-1, :-1]).square() + (y[1:, :-1] - y[:-1, :-1]).square())
    g = g - g.mean()
    return g / g.norm().clamp(min=1e-12)


def same_view(photo: torch.Tensor, anchor: torch.Tensor) -> tuple[float, bool]:
    """How surely the photo (1, 3, H, W) shows the anchor's (1, 3, h, w) view: trust in
    [0, 1], and whether it is mirrored."""
    h, w = anchor.shape[-2:]
    scale = min(1.0, EDGE_SIZE / max(h, w))
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    a, p = edges(anchor, size), edges(photo, size)
    straight, mirrored = float((a * p).sum()), float((a * p.flip(-1)).sum())
    r = max(straight, mirrored)
    low, high = SAME_VIEW
    return min(1.0, max(0.0, (r - low) / (high - low))), mirrored > straight


@dataclass
class LocalTransfer:
    """What the photo and the anchor give every frame."""
    anchor: AnchorCells
    photo: torch.Tensor         # (1, 3, H, W) the photo, linear
    trust: float                # 0 (another place) .. 1 (the same view)
    mirrored: bool              # the photo is the view mirrored


def prepare(image: torch.Tensor, anchor: torch.Tensor, linear: torch.Tensor | None = None) -> LocalTransfer:
    """image (1, 3, H, W) and anchor (1, 3, h, w), sRGB; linear: the image in linear light,
    if already computed."""
    trust, mirrored = same_view(image, anchor)
    cells = anchor_cells(srgb_to_linear(anchor), grid_size(tuple(anchor.shape[-2:])))
    return LocalTransfer(cells, srgb_to_linear(image) if linear is None else linear, trust, mirrored)


def transfer(lt: LocalTransfer, frames: torch.Tensor, classwise: torch.Tensor | None,
             photo: torch.Tensor | None = None) -> torch.Tensor:
    """The photo changed as its view changes from the anchor to each of frames (B, 3, h, w)
    sRGB, blended by trust with `classwise` (B, 3, H, W), the class-by-class transfer (not
    needed at trust 1) -> (B, 3, H, W) sRGB in [0, 1]. photo (B, 3, H, W) sRGB: recolour
    these (e.g. with their sky moved) instead of the prepared one."""
    if lt.trust == 0:
        return classwise
    maps = fit_maps(lt.anchor, srgb_to_linear(frames))
    if lt.mirrored:
        maps = maps.flip(-1)
    # apply_affine interpolates the cells' maps to the photo's size (bilinear).
    near = apply_affine(maps, lt.photo if photo is None else srgb_to_linear(photo), post=linear_to_srgb)
    return near if lt.trust == 1 else torch.lerp(classwise, near, lt.trust)


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

