"""Clouds that move with the reference: the reference's sky motion, applied to the photo's sky.

1. `reference_sky_velocity`: dense optical flow (OpenCV's DIS) between consecutive reference
   frames, read in the reference's sky only. A pair counts only if its sky is bright and
   textured enough to track (not a night frame, not a clear sky) and the flow explains the
   change (warping by it removes at least 30% of the frame difference; webcam frames
   hours apart, and clouds too fast or changing too much to follow, do not pass). The velocity is the median over the counted pairs of each pair's median sky
   flow, in units of the frame's long side per reference frame, so it scales to any
   photo. None when fewer than MIN_PAIRS pairs, or under MIN_SHARE of the trackable
   ones, count, or the sky is still.
2. `SkyMotion`: moves the photo's sky at that velocity. The sky is first extended under
   the ground and past tall objects (a push-pull fill of the matte-weighted photo), so a
   displaced sample never picks up a tower. Two copies of it drift with phases half a
   period apart and are cross-faded (each weighs 0 when it jumps back), the looping
   scheme of cinemagraphs: the texture never stretches or tears, and after a whole number
   of periods the sky is where it started. Speed falls off towards the horizon (far
   clouds move slowly), so nothing rises from under it. The moving sky replaces the still
   one by the soft matte, so the ground never moves; thin dark things in the sky (wires,
   birds) stay where they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

MIN_PAIRS = 2          # pairs with trackable sky needed to trust a velocity
MIN_SHARE = 0.25       # and this share of the trackable pairs must be explained by the flow:
EXPLAINS = 0.7         # warping by it leaves under this share of the frame difference
MIN_SPEED = 0.0005     # long sides per reference frame (0.13 px at 256): slower is "still"
# Faster is not clouds drifting between consecutive frames but frames far apart (a webcam
# every half hour) whose flow happened to match: moving the sky by it smears it.
MAX_SPEED = 0.05
MIN_SKY = 0.03         # sky share of the reference frame needed to measure anything
DARK = 0.12            # a sky darker than this (mean, 0..1) is not tracked (night)
TEXTURE = 2.0          # local detail (RMS gray levels) that optical flow can follow
MIN_TEXTURED = 0.1     # share of the sky that must have it (a clear sky has none)
PERIOD_SHIFT = 0.08    # a period moves the sky this share of the long side (ghosting vs. resets)
MIN_PERIOD, MAX_PERIOD = 8, 240  # frames
CLEAR = 3              # pixels between the sky's border and the colours that fill under it
RAMP = 0.25            # share of the height over which the speed rises from the horizon
THIN = 0.012           # things narrower than this share of the long side and
DARKER = 0.06          # darker than their surroundings by this much (0..1)
HALF = 0.5             # and under this share of their brightness stay still


@dataclass(frozen=True)
class SkyVelocity:
    dx: float    # long sides per reference frame, + = rightwards
    dy: float    # + = downwards
    pairs: int   # frame pairs it was measured on

    @property
    def speed(self) -> float:
        return math.hypot(self.dx, self.dy)

    @property
    def degrees(self) -> float:
        """Direction in image coordinates: 0 = rightwards, 90 = downwards."""
        return math.degrees(math.atan2(self.dy, self.dx))


def reference_sky_velocity(frames: Iterable[np.ndarray], sky: np.ndarray) -> SkyVelocity | None:
    """The reference's cloud motion from its frames ((h, w, 3) uint8, the size of `sky`) and
    its sky mask (h, w) bool; None if it cannot be measured or the sky is still."""
    import cv2

    if sky.mean() < MIN_SKY:
        return None
    # Leave out the sky's border: flow there mixes the sky with what stands in front of it.
    inner = cv2.erode(sky.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inner.sum() < 64:
        return None
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    side = max(sky.shape)
    found, tracked, prev, prev_textured = [], 0, None, None
    for frame in frames:
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        textured = inner & _texture(gray)
        if (prev is not None and _trackable(prev, inner, prev_textured) and _trackable(gray, inner, textured)
                and not np.array_equal(prev, gray)):  # a repeated frame says nothing
            tracked += 1
            flow = dis.calc(prev, gray, None)  # (h, w, 2): prev(p) ~ gray(p + flow(p))
            if _explains(prev, gray, flow, inner):
                # Only textured pixels tell motion: on a smooth gradient any brightening
                # "moves" along the gradient (the aperture problem of a clear sky at dawn).
                found.append(np.median(flow[prev_textured], axis=0) / side)
        prev, prev_textured = gray, textured
    # A few lucky pairs among many unexplained ones (a webcam sampled hourly) are noise.
    if len(found) < max(MIN_PAIRS, MIN_SHARE * tracked):
        return None
    dx, dy = np.median(np.array(found), axis=0).tolist()
    velocity = SkyVelocity(dx, dy, len(found))
    return velocity if MIN_SPEED <= velocity.speed <= MAX_SPEED else None


def mean_flow(frames: list[np.ndarray], mask: np.ndarray) -> tuple[tuple[float, float], float]:
    """Optical flow of a clip ((H, W, 3) uint8 frames) inside mask (H, W) bool, averaged over
    its pixels and consecutive frame pairs: the mean flow vector (dx, dy) and the mean flow
    length, in px per frame. How `benchmark` checks that an output's sky moves and its
    ground does not."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    vectors, lengths = [], []
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    for a, b in zip(gray, gray[1:]):
        flow = dis.calc(a, b, None)[mask]
        vectors.append(flow.mean(0))
        lengths.append(np.linalg.norm(flow, axis=1).mean())
    if not vectors:
        return (0.0, 0.0), 0.0
    dx, dy = np.mean(vectors, 0).tolist()
    return (dx, dy), float(np.mean(lengths))


def _texture(gray: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels with detail (cloud edges, not a smooth gradient): the local RMS
    of the gray levels minus their blur exceeds TEXTURE."""
    import cv2

    g = gray.astype(np.float32)
    sigma = 3 * max(g.shape) / 256
    detail = g - cv2.GaussianBlur(g, (0, 0), sigma)
    return np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), sigma)) > TEXTURE


def _trackable(gray: np.ndarray, inner: np.ndarray, textured: np.ndarray) -> bool:
    values = gray[inner]
    return values.mean() >= DARK * 255 and textured.sum() >= MIN_TEXTURED * inner.sum()


def _explains(prev: np.ndarray, gray: np.ndarray, flow: np.ndarray, inner: np.ndarray) -> bool:
    """True if warping `gray` back by `flow` matches `prev` clearly better than `gray` does."""
    import cv2

    h, w = prev.shape
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32) + flow
    warped = cv2.remap(gray, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    before = np.abs(gray.astype(np.float32) - prev)[inner].mean()
    after = np.abs(warped.astype(np.float32) - prev)[inner].mean()
    return after < EXPLAINS * before


def loop_period(step: float, total: float | None = None) -> float:
    """Clock units per period of the two-phase loop, for a sky that moves `step` long sides
    per clock unit: long enough that the jumps back are rare, short enough that the two
    cross-faded copies stay close (PERIOD_SHIFT). With `total` (the clock's whole run in a
    seamless loop) a whole number of periods fits it exactly."""
    period = min(max(PERIOD_SHIFT / max(step, 1e-9), MIN_PERIOD), MAX_PERIOD)
    if total:
        period = total / max(1, round(total / period))
    return period


def fill_sky(image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The sky of image (B, 3, H, W) extended over the rest: a push-pull fill of the
    alpha-weighted (H, W) image. Sky pixels (alpha 1) keep their colour; elsewhere colours
    come from the nearest sky, smoothly."""
    weight = alpha[None, None].to(image.dtype)
    levels = []
    x, w = image * weight, weight
    while min(x.shape[-2:]) > 1:
        levels.append((x, w))
        x = F.avg_pool2d(x, 2, ceil_mode=True)
        w = F.avg_pool2d(w, 2, ceil_mode=True)
    colour = x / w.clamp(min=1e-6)
    for x, w in reversed(levels):
        up = F.interpolate(colour, size=x.shape[-2:], mode="bilinear", align_corners=False)
        sure = (w * 4).clamp(max=1)  # a block a quarter sky already trusts its own mean
        colour = sure * (x / w.clamp(min=1e-6)) + (1 - sure) * up
    return colour


def thin_objects(photo: torch.Tensor) -> torch.Tensor:
    """(H, W) float mask of thin dark things in photo (1, 3, H, W): wires, birds, antennas
    and twigs against the sky, which a segmenter leaves in the sky but must not drift with
    the clouds. A black top-hat (closing minus the image) of the luma, with a structuring
    element THIN of the long side: what is darker than its surroundings and narrower than
    that, and under half as bright. Wide dark clouds are not thin; blue gaps between white
    clouds are not that dark."""
    luma = (photo * torch.tensor([0.299, 0.587, 0.114], dtype=photo.dtype, device=photo.device)[:, None, None]).sum(1, keepdim=True)
    r = max(1, round(THIN * max(photo.shape[-2:]) / 2))
    k = 2 * r + 1
    closed = -F.max_pool2d(-F.max_pool2d(luma, k, 1, r), k, 1, r)  # dilate, then erode
    # Under half as bright as around them: a wire or a bird, not the blue between clouds.
    found = (((closed - luma) > DARKER) & (luma < HALF * closed)).to(photo.dtype)
    return F.max_pool2d(found, 3, 1, 1)[0, 0]  # and a pixel around them


def horizon_ramp(alpha: torch.Tensor) -> torch.Tensor:
    """(H, 1) speed factor per row: 0 at and below the horizon, rising smoothly to 1 over
    RAMP of the height above it. Clouds near the horizon are far away and move slowly; and
    nothing from below the horizon (the fill, a hazy strip of land taken for sky) ever
    rises into the sky. The horizon is the row above which 90% of the columns are sky-free
    no more: the 90th percentile of the columns' lowest sky row, so towers do not lift it."""
    h, w = alpha.shape
    rows = torch.arange(h, dtype=alpha.dtype, device=alpha.device)
    sky = alpha > 0.5
    lowest = torch.where(sky, rows[:, None], torch.full_like(alpha, -1)).amax(0)  # (W,), -1: no sky
    lowest = lowest[lowest >= 0]
    if lowest.numel() == 0:
        return torch.zeros(h, 1, dtype=alpha.dtype, device=alpha.device)
    horizon = torch.quantile(lowest, 0.9)
    x = ((horizon - rows) / max(1.0, RAMP * h)).clamp(0, 1)
    return (x * x * (3 - 2 * x))[:, None]


class SkyMotion:
    """Moves the sky of frames (B, 3, H, W) by `step` = (dx, dy) pixels per clock unit (a
    reference frame; see retime.motion_clock), looping every `period` units."""

    def __init__(self, alpha: torch.Tensor, step: tuple[float, float], period: float) -> None:
        self.alpha = alpha            # (H, W) soft sky matte of the photo
        # The plate is filled from sure sky only, a few pixels clear of the border: a
        # border pixel's colour is part ground, and would drift into the sky as a stripe.
        sure = (alpha >= 0.98).to(alpha.dtype)[None, None]
        self.source = 1 - F.max_pool2d(1 - sure, 2 * CLEAR + 1, stride=1, padding=CLEAR)[0, 0]
        self.step = step              # pixels per clock unit
        self.period = float(period)   # clock units per loop period
        h, w = alpha.shape
        self.ramp = horizon_ramp(alpha)  # (H, 1): full speed high up, none at the horizon
        # Where the sky does not move (at the horizon) the frame stays the image itself, not
        # the plate (whose fill replaces what is not sure sky): composite by alpha times a
        # steeper ramp.
        self.weight = alpha * (self.ramp * 4).clamp(max=1)
        moving = torch.nonzero(self.weight.amax(1) > 0).flatten()
        self.rows = (int(moving[0]), int(moving[-1]) + 1) if len(moving) else (0, 0)
        r0, r1 = self.rows
        ys, xs = torch.meshgrid(torch.arange(r0, r1, dtype=alpha.dtype, device=alpha.device),
                                torch.arange(w, dtype=alpha.dtype, device=alpha.device), indexing="ij")
        # Sampling grid of the moving rows in grid_sample's [-1, 1] units, and how far a
        # shift of one pixel moves it there (times the row's speed factor): per call only
        # base - shift * per_pixel remains.
        self._scale = torch.tensor([2.0 / w, 2.0 / h], dtype=alpha.dtype, device=alpha.device)
        self._base = (torch.stack([xs, ys], -1) + 0.5) * self._scale - 1   # (r1 - r0, W, 2)
        self._per_pixel = self.ramp[r0:r1, :, None] * self._scale           # (r1 - r0, 1, 2)
        self._plate_of = self._plate = None

    def shifts(self, t: float) -> list[tuple[float, float, float]]:
        """(dx, dy, weight) of the two copies at clock time t (weights sum to 1)."""
        out = []
        for offset in (0.0, 0.5):
            phase = (t / self.period + offset) % 1.0
            age = phase * self.period  # clock units since this copy jumped back
            out.append((self.step[0] * age, self.step[1] * age))
        # Each copy weighs 0 when it jumps back and 1 half a period later, linearly: both
        # copies always drift the same way, so the blend drifts too (a faster cross-fade
        # reads as a jump back).
        a = 1.0 - abs(2.0 * ((t / self.period) % 1.0) - 1.0)
        return [(*out[0], a), (*out[1], 1.0 - a)]

    def move(self, images: torch.Tensor, times: list[float]) -> torch.Tensor:
        """images (1 or B, 3, H, W), one clock time per output frame -> (B, 3, H, W), sky moved."""
        if images.shape[0] == 1 and self._plate_of is images:
            plate = self._plate  # the same photo every batch: fill once
        else:
            plate = fill_sky(images, self.source)
            if images.shape[0] == 1:
                self._plate_of, self._plate = images, plate
        h, w = self.alpha.shape
        r0, r1 = self.rows  # only the rows that hold moving sky are resampled
        if r1 == r0:
            return images.expand(len(times), -1, -1, -1).clone()
        grids, weights = [], []
        for t in times:
            for dx, dy, weight in self.shifts(t):
                shift = torch.tensor([dx, dy], dtype=images.dtype, device=images.device)
                grids.append(self._base - shift * self._per_pixel)  # where the sky came from
                weights.append(weight)
        b = len(times)
        source = plate.expand(2 * b, -1, -1, -1) if plate.shape[0] == 1 else plate.repeat_interleave(2, 0)
        moved = F.grid_sample(source, torch.stack(grids), mode="bilinear", padding_mode="reflection",
                              align_corners=False)                          # (2B, 3, r1 - r0, W)
        weights = torch.tensor(weights, dtype=images.dtype, device=images.device).view(b, 2, 1, 1, 1)
        sky = (moved.view(b, 2, 3, r1 - r0, w) * weights).sum(1)
        # Swap the still sky for the moving one by the matte: at a border pixel, which is
        # alpha sky + (1 - alpha) tree, only the sky's share changes (a plain blend of the
        # image and the moving sky would paint the tree's share over with sky: bright rims).
        out = images.expand(b, -1, -1, -1).clone()
        out[:, :, r0:r1] += self.weight[r0:r1].to(images.dtype) * (sky - plate[:, :, r0:r1])
        return out.clamp_(0, 1)
