"""Moving the photo's sky along a motion field, as a seamless loop whose sources stay in the sky.

The photo's sky is advected along a per-pixel field (pixels per clock unit, from the
reference's clouds: motion.py) in the Eulerian way of cinemagraphs (Holynski et al., CVPR
2021): a frame samples the photo at p - age * field(p). Two copies of the sky run half a
period apart and are cross-faded, each weighing 0 when it jumps back, so the loop never
stretches or tears and repeats after a whole period.

Where does a copy's source lie? Each copy's age runs from -period/2 to +period/2, not from
0 to period: at any moment one copy samples upstream (age > 0) and the other downstream
(age < 0), each at most half a period's travel away, and the copy at full weight is the
photo itself (age 0). Near a border where clouds enter the frame the upstream copy's
source leaves the sky; each copy's weight is then scaled by how surely its source is sky
(1 well inside the photo's sky, 0 outside the frame, on the ground or behind a tower), so
the other copy, whose source is inside, takes over. Nothing is ever taken from outside the
frame: no mirrored band, no seam of a reflection, no streak of a clamped edge. What
enters the frame is the photo's own sky from a little downstream.

Cross-fading two shifted copies halves the texture's variance at mid-fade (a faint double
cloud); the blend restores it around the local mean (the variance-preserving blending of
Heitz and Neyret, HPG 2018), counting the copies as independent only where they are
shifted apart by more than the texture's grain.

The sky plate behind the photo's sky is a push-pull fill of the sure sky (`fill_sky`), so
a copy sampling just behind a tower reads sky colours, not the tower. The moving sky
replaces the still one by the soft matte: the ground never moves; thin dark things in the
sky (wires, birds) stay where they are. Pure torch; images (B, 3, H, W) in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

PERIOD_SHIFT = 0.2     # a period moves the fastest sky this share of the long side (ghosting vs. resets)
MIN_PERIOD, MAX_PERIOD = 8, 240  # clock units (reference frames)
CLEAR = 3              # pixels between the sky's border and the colours that fill under it
RAMP = 0.25            # share of the height over which the speed rises from the horizon
SURE_RAMP = 0.03       # a source this share of the long side inside the sure sky counts fully (a wide
                       # hand-over: the copies trade places gradually, not along a seam)
GRAIN = 0.012          # texture grain (share of the long side): copies shifted further are independent
LOCAL = 0.03           # the blend restores detail finer than this (share of the long side)
THIN = 0.012           # things narrower than this share of the long side and
DARKER = 0.06          # darker than their surroundings by this much (0..1)
HALF = 0.5             # and under this share of their brightness stay still
STILL = 1e-3           # weight of the still sky among the two moving copies


def loop_period(speed: float, total: float | None = None) -> float:
    """Clock units per period of the two-copy loop, for a sky whose fastest part moves `speed`
    long sides per clock unit: long enough that the jumps back are rare, short enough that
    the two cross-faded copies stay close (PERIOD_SHIFT). With `total` (the clock's whole run
    in a seamless loop) a whole number of periods fits it exactly."""
    period = min(max(PERIOD_SHIFT / max(speed, 1e-9), MIN_PERIOD), MAX_PERIOD)
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


def sure_sky(alpha: torch.Tensor) -> torch.Tensor:
    """(H, W) in [0, 1]: how surely a source pixel is sky. 0 outside the frame and on the
    ground (alpha < 0.98), rising to 1 over SURE_RAMP of the long side inside: a copy
    whose source nears a border fades out gradually instead of switching."""
    r = max(1, round(SURE_RAMP * max(alpha.shape)))
    sure = (alpha >= 0.98).to(alpha.dtype)[None, None]
    # Zero padding: the frame's border counts as not sky, so sources fade out before it.
    # A box mean, as two 1-D passes (a 63 px square at 1024 px would cost 30x more).
    inside = F.avg_pool2d(sure, (2 * r + 1, 1), stride=1, padding=(r, 0), count_include_pad=True)
    inside = F.avg_pool2d(inside, (1, 2 * r + 1), stride=1, padding=(0, r), count_include_pad=True)
    return ((inside - 0.5) * 2).clamp(0, 1)[0, 0] * sure[0, 0]


class SkyMotion:
    """Moves the sky of frames (B, 3, H, W) along `field` (H, W, 2) = (dx, dy) pixels per
    clock unit (a reference frame; see retime.motion_clock), looping every `period` units."""

    def __init__(self, alpha: torch.Tensor, field: torch.Tensor, period: float) -> None:
        self.alpha = alpha            # (H, W) soft sky matte of the photo
        h, w = alpha.shape
        # The plate is filled from sure sky only, a few pixels clear of the border: a
        # border pixel's colour is part ground, and would drift into the sky as a stripe.
        sure = (alpha >= 0.98).to(alpha.dtype)[None, None]
        self.source = 1 - F.max_pool2d(1 - sure, 2 * CLEAR + 1, stride=1, padding=CLEAR)[0, 0]
        self.trust = sure_sky(alpha)  # (H, W): how surely a copy's source is sky
        self.period = float(period)   # clock units per loop period
        self.ramp = horizon_ramp(alpha)  # (H, 1): full speed high up, none at the horizon
        self.field = field * self.ramp[:, :, None]  # (H, W, 2) px per clock unit
        # Where the sky does not move (at the horizon) the frame stays the image itself, not
        # the plate (whose fill replaces what is not sure sky): composite by alpha times a
        # steeper ramp.
        self.weight = alpha * (self.ramp * 4).clamp(max=1)
        moving = torch.nonzero(self.weight.amax(1) > 0).flatten()
        self.rows = (int(moving[0]), int(moving[-1]) + 1) if len(moving) else (0, 0)
        r0, r1 = self.rows
        ys, xs = torch.meshgrid(torch.arange(r0, r1, dtype=alpha.dtype, device=alpha.device),
                                torch.arange(w, dtype=alpha.dtype, device=alpha.device), indexing="ij")
        # Sampling grid of the moving rows in grid_sample's [-1, 1] units, and the field in
        # those units: per call only base - age * step remains.
        scale = torch.tensor([2.0 / w, 2.0 / h], dtype=alpha.dtype, device=alpha.device)
        self._base = (torch.stack([xs, ys], -1) + 0.5) * scale - 1       # (r1 - r0, W, 2)
        self._step = self.field[r0:r1] * scale                           # (r1 - r0, W, 2)
        # Two copies half a period apart are shifted by this much: where it exceeds the
        # texture's grain they are independent and the blend restores their contrast; where
        # the sky barely moves (the horizon) they are the same picture and it must not.
        apart = self.field[r0:r1].norm(dim=-1) * self.period / 2         # (r1 - r0, W) px
        self._alike = torch.exp(-(apart / (GRAIN * max(h, w))) ** 2)     # 1: the same, 0: independent
        self._reach = max(1, round(LOCAL * max(h, w)))
        self._plate_of = self._plate = None

    def copies(self, t: float) -> list[tuple[float, float]]:
        """(age, weight) of the two copies at clock time t: ages in [-period/2, period/2),
        weights summing to 1, a copy weighing 1 at age 0 and 0 when it jumps back."""
        out = []
        for offset in (0.0, 0.5):
            phase = (t / self.period + offset) % 1.0
            out.append(((phase - 0.5) * self.period, 1.0 - abs(2.0 * phase - 1.0)))
        return out

    def _plates(self, images: torch.Tensor) -> torch.Tensor:
        """(1 or B, 7, H, W): the sky plate, its local mean and the trust map, sampled together."""
        if images.shape[0] == 1 and self._plate_of is images:
            return self._plate  # the same photo every batch: fill once
        plate = fill_sky(images, self.source)
        k = self._reach  # the local mean: a box of 2k+1 px, computed on a grid k apart
        mean = F.interpolate(F.avg_pool2d(plate, 2 * k + 1, stride=k, padding=k, count_include_pad=False),
                             size=plate.shape[-2:], mode="bilinear", align_corners=False)
        stack = torch.cat([plate, mean, self.trust.to(plate.dtype).expand(plate.shape[0], 1, -1, -1)], 1)
        if images.shape[0] == 1:
            self._plate_of, self._plate = images, stack
        return stack

    def move(self, images: torch.Tensor, times: list[float]) -> torch.Tensor:
        """images (1 or B, 3, H, W), one clock time per output frame -> (B, 3, H, W), sky moved."""
        b = len(times)
        r0, r1 = self.rows  # only the rows that hold moving sky are resampled
        if r1 == r0:
            return images.expand(b, -1, -1, -1).clone()
        stack = self._plates(images)
        grids, weights = [], []
        for t in times:
            for age, weight in self.copies(t):
                grids.append(self._base - age * self._step)  # where this copy's sky came from
                weights.append(weight)
        source = stack.expand(2 * b, -1, -1, -1) if stack.shape[0] == 1 else stack.repeat_interleave(2, 0)
        # "border" padding never shows: a source outside the frame has trust 0 (the trust
        # map is 0 along the frame's edge) and the other copy, or the still sky, takes its place.
        sampled = F.grid_sample(source, torch.stack(grids), mode="bilinear", padding_mode="border",
                                align_corners=False).view(b, 2, 7, r1 - r0, -1)
        plate, mean, trust = sampled[:, :, :3], sampled[:, :, 3:6], sampled[:, :, 6:]
        # A copy counts by its time weight and by how surely its source is sky. A third
        # candidate, the still sky, weighs STILL: it shows only where neither copy's source
        # is sky (a corner where clouds enter along one border and leave by the other, deep
        # behind a tower).
        w = torch.tensor(weights, dtype=images.dtype, device=images.device).view(b, 2, 1, 1, 1) * trust
        total = w.sum(1) + STILL                                              # (B, 1, rows, W)
        w0, w1 = w[:, 0] / total, w[:, 1] / total
        # Variance-preserving blend: the moving copies' detail around their local mean is
        # scaled by k so that it keeps the standard deviation of one copy of their joint
        # weight m, which two independent copies w0 + w1 = m do not (sqrt(w0^2 + w1^2) < m).
        m = w0 + w1
        k = m / (w0 * w0 + w1 * w1 + 2 * w0 * w1 * self._alike).sqrt().clamp(min=1e-6)
        sky = (STILL / total) * stack[:, :3, r0:r1] \
            + w0 * (k * plate[:, 0] + (1 - k) * mean[:, 0]) + w1 * (k * plate[:, 1] + (1 - k) * mean[:, 1])
        # Swap the still sky for the moving one by the matte: at a border pixel, which is
        # alpha sky + (1 - alpha) tree, only the sky's share changes (a plain blend of the
        # image and the moving sky would paint the tree's share over with sky: bright rims).
        out = images.expand(b, -1, -1, -1).clone()
        out[:, :, r0:r1] += self.weight[r0:r1].to(images.dtype) * (sky - stack[:, :3, r0:r1])
        return out.clamp_(0, 1)
