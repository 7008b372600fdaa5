"""A soft sky matte: the segmenter's hard sky border refined to the photo's own edges.

A hard sky/ground map is off by a pixel or two at tree tops and roof edges, and those
pixels then take the other class's colour change (bright rims around dark trees at dusk).
The guided filter (He, Sun and Tang, TPAMI 2013) turns the hard mask into an alpha that
follows the photo's edges: locally alpha = a . I + b, a linear function of the photo's
colour, fitted to the hard mask in each window (leaving out the pixels right at the hard
border, which may be on the wrong side). It is computed at a working resolution of
WORK_SIDE px on the long side and its coefficients upsampled ("fast guided filter", He and
Sun 2015), so a 4000x3000 photo costs what a small one does.

Away from the border (more than BAND working pixels) alpha is snapped back to the hard
mask, so a matte can never reach into the sky's interior or far into the ground.
Pure torch: runs on the photo's device. Shapes: photo (1, 3, H, W) in [0, 1]; maps (H, W).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model.modulation import SoftLabels

WORK_SIDE = 384   # working resolution of the filter (long side)
RADIUS = 4        # window radius, working pixels
EPS = 1e-4        # regularisation: larger gives a smoother, less edge-following alpha
UNSURE = 3        # the hard border may be this far off (working pixels): not fitted
BAND = 6          # alpha may differ from the hard mask only this close to its border


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows, clipped at the image border: (B, C, H, W) -> same."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Colour guided filter. guide (1, 3, h, w), src (1, 1, h, w) -> the linear coefficients
    (1, 4, h, w): output = a . guide + b with (a, b) = the returned channels (a0, a1, a2, b).

    Per window: a = (Cov(I) + eps) ^ -1 Cov(I, p), b = mean(p) - a . mean(I); then a and b
    are averaged over the windows that hold each pixel, weighted by the window's Var(p). With `weight` (1, 1, h, w) the
    window statistics are weighted: pixels of weight 0 (an uncertain band) do not shape the
    fit but still get its output.
    """
    w = torch.ones_like(src) if weight is None else weight
    norm = box(w, r).clamp(min=1e-6)

    def mean(x):  # weighted window mean
        return box(w * x, r) / norm

    mean_i = mean(guide)                                          # (1, 3, h, w)
    mean_p = mean(src)                                            # (1, 1, h, w)
    cov_ip = mean(guide * src) - mean_i * mean_p                  # (1, 3, h, w)
    # The 3x3 covariance of the guide per pixel, as (h, w, 3, 3).
    outer = guide[:, :, None] * guide[:, None, :]                 # (1, 3, 3, h, w)
    cov = mean(outer.flatten(1, 2)).view(1, 3, 3, *guide.shape[-2:])
    cov = cov - mean_i[:, :, None] * mean_i[:, None, :]
    cov = cov[0].permute(2, 3, 0, 1) + eps * torch.eye(3, dtype=guide.dtype, device=guide.device)
    a = torch.linalg.solve(cov, cov_ip[0].permute(1, 2, 0)[..., None])[..., 0]  # (h, w, 3)
    a = a.permute(2, 0, 1)[None]                                  # (1, 3, h, w)
    b = mean_p - (a * mean_i).sum(1, keepdim=True)
    # Average (a, b) over the windows holding each pixel, weighting each window by the
    # variance of src in it: a window on one side of the border only (src constant) says
    # nothing about where the border is, and would pull border pixels to its own side.
    v = (mean(src * src) - mean_p * mean_p).clamp(min=0) + 1e-4
    ab = box(torch.cat([a, b], 1) * v, r) / box(v, r)
    return ab


def _working_size(h: int, w: int) -> tuple[tuple[int, int], float]:
    scale = min(1.0, WORK_SIDE / max(h, w))
    return (max(1, round(h * scale)), max(1, round(w * scale))), scale


def _to_size(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "bilinear":
        return F.interpolate(x, size=size, mode=mode, align_corners=False)
    return F.interpolate(x, size=size, mode=mode)


def sky_alpha(photo: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Soft sky alpha (H, W) in [0, 1] from the photo (1, 3, H, W) and a hard mask (H, W) bool.

    Equal to the hard mask except within BAND working pixels of its border.
    """
    h, w = sky.shape
    size, _ = _working_size(h, w)
    hard = sky[None, None].to(photo.dtype)
    small = _to_size(hard, size, "area")
    # The hard border may be off by a few pixels: pixels within UNSURE of it do not shape
    # the fit, so the colours on either side decide where the sky ends.
    near = box(small, UNSURE)
    sure = ((near < 1e-3) | (near > 1 - 1e-3)).to(photo.dtype)
    coeffs = guided_filter(_to_size(photo, size, "area"), small, RADIUS, EPS, weight=sure)
    coeffs = _to_size(coeffs, (h, w), "bilinear")
    alpha = ((coeffs[:, :3] * photo).sum(1, keepdim=True) + coeffs[:, 3:]).clamp(0, 1)
    # The border band: where the mask, blurred over BAND working pixels, is neither 0 nor 1.
    near = _to_size(box(small, BAND), (h, w), "bilinear")
    band = (near > 1e-3) & (near < 1 - 1e-3)
    return torch.where(band, alpha, hard)[0, 0]


def soft_sky_labels(photo: torch.Tensor, ids: torch.Tensor, sky_id: int) -> SoftLabels | torch.Tensor:
    """The photo's labels (H, W) with a soft border between the sky (class `sky_id`) and the
    rest; the labels unchanged if the photo has no sky or nothing else.

    A ground pixel's second class is the sky (weight alpha); a sky pixel's is the commonest
    other class near it (weight 1 - alpha).
    """
    sky = ids == sky_id
    if not sky.any() or sky.all():
        return ids
    alpha = sky_alpha(photo, sky)
    # The commonest non-sky class near each pixel: box-filtered one-hot maps at the working
    # size, argmax, brought back by nearest neighbour.
    h, w = ids.shape
    size, _ = _working_size(h, w)
    k = int(ids.max()) + 1
    onehot = F.one_hot(ids.clamp(min=0), k).permute(2, 0, 1)[None].to(photo.dtype)
    onehot[:, sky_id] = 0
    nearby = box(_to_size(onehot, size, "area"), 2 * BAND)
    nearby = _to_size(nearby, (h, w), "nearest")[0]
    other = torch.where(sky, nearby.argmax(0), torch.full_like(ids, sky_id))
    weight = torch.where(sky, 1 - alpha, alpha)
    # A sky pixel with no other class nearby keeps the sky.
    weight = torch.where(sky & (nearby.amax(0) == 0), torch.zeros_like(weight), weight)
    return SoftLabels(ids, other, weight)
