"""Night: daylight goes away and the lights come on.

A per-class colour transfer maps the photo's daytime contrast (sunlit vs. shadow) onto a
night frame's contrast, which at night comes from lamps: the sunlit facade stays the
brightest thing and nothing emits light. So a reference frame is read as two parts:

- emitters: its lit pixels (luminance > max(0.15, 4 x the frame's median), never sky),
  how many 8x8 blocks hold one (`share`) and their colours;
- ambient: every other pixel, whose per-class Lab mean/std the photo is transferred to.
  In daylight nothing is lit and this is exactly the classwise transfer.

The photo is rendered as ambient light on its own surfaces, with the day's large-scale
shading (sun vs. shadow) taken out in proportion to how dark the frame is (`night`),
plus light sprites (a sharp core and a soft glow, added in linear light) at fixed sites
on the photo. Sites are ranked once per photo from a prior map (the light head's logits,
see LightHead) with seeded Gumbel noise; a frame turns on the first share x cells of them,
so a light that is on stays in place and lights come on one by one as night falls. With a
pass over the whole reference first (DarkestNight), the share is the darkest frame's
times each frame's `night`, so lamps do not come and go with each night frame's count.
Lamps are raised where the frame they are added to is brighter than the reference frame
they come from, so they still stand out from it as they do there (lamp_gain).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .color import LAB_EPS, lab_to_rgb, linear_to_srgb, srgb_to_linear
from .modulation import Border, modulate

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights on sRGB values
LIT_FLOOR = 0.15                 # a lit pixel is brighter than this ...
LIT_RATIO = 4.0                  # ... and than this many times the frame's median
GRID = 32                        # light cells along the long side (8 px blocks at 256)
QUANTILES = 16                   # lit colours kept per reference frame
# Ambient luminance (mean over unlit pixels) of full daylight and of full night: between
# them the day's shading is taken out gradually.
DAY_AMBIENT, NIGHT_AMBIENT = 0.30, 0.08
# Share of lit cells at which a frame starts to count as night, and is fully night.
LIT_SHARE = (0.01, 0.06)
MIN_PIXELS = 16                  # fewer unlit pixels of a class: use the global statistics
# Share of the photo's remaining texture (lightness and colour) that is gone at full night:
# unlit surfaces at night are lit by weak, even light, so their daytime detail mostly fades.
# On the validation cameras' cross-scene check, 0.6 -> 0.8 lowers the daylight left (mean
# day r 0.04 -> 0.00; real nights: -0.3 to 0) at the same PSNR (16.16 dB).
TEXTURE_LOSS = 0.8
DIM_FLOOR = 0.3                  # the ambient keeps at least this share when lamps are added


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 1, H, W)."""
    w = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


def lit_pixels(rgb: torch.Tensor, samples: int | None = None) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) bool: luminance > max(0.15, 4 x the frame's median)
    (read from about `samples` pixels, see lit_threshold)."""
    y = luminance(rgb)
    return y > lit_threshold(y, samples).view(-1, 1, 1, 1)


MEDIAN_SAMPLES = 1 << 16  # the model's own lit tests on its frames: medians from 65k pixels


def lit_threshold(y: torch.Tensor, samples: int | None = None) -> torch.Tensor:
    """(B, 1, H, W) luminance -> (B,): max(0.15, 4 x each frame's median), what is lit.
    samples: read the median from about this many pixels on a regular grid (a large
    frame's median barely moves, and the exact one costs a sort of every pixel)."""
    flat = y.flatten(1)
    if samples is not None and flat.shape[1] > samples:
        flat = flat[:, :: flat.shape[1] // samples]
    return (LIT_RATIO * flat.median(1).values).clamp(min=LIT_FLOOR)


def lit_share(rgb: torch.Tensor, ground: torch.Tensor) -> torch.Tensor:
    """Share of light cells holding a lit pixel of the ground (weight (1, 1, H, W), the sky
    0): (B, 3, H, W) sRGB -> (B,), as read_night counts the reference's."""
    lit = lit_pixels(rgb, MEDIAN_SAMPLES) & (ground > 0.5)
    return F.max_pool2d(lit.to(rgb.dtype), cell_size(tuple(rgb.shape[-2:])), ceil_mode=True).flatten(1).mean(1)


def cell_size(size: tuple[int, int]) -> int:
    """Side of a light cell in pixels of an image of `size` = (H, W)."""
    return max(1, round(max(size) / GRID))


def cell_grid(size: tuple[int, int]) -> tuple[int, int, int]:
    """(cell, gh, gw): a light cell's side and how many cells cover an image of `size`
    = (H, W) down and across (the last ones may hang over its border)."""
    cell = cell_size(size)
    return cell, -(-size[0] // cell), -(-size[1] // cell)


@dataclass
class NightLight:
    """What a batch of B reference frames says about their light."""
    night: torch.Tensor    # (B,) 0 = daylight .. 1 = night: the share of daylight gone
    share: torch.Tensor    # (B,) share of light cells holding a lit pixel
    colours: torch.Tensor  # (B, QUANTILES, 3) linear RGB of the lit pixels, darkest to brightest
    mean: torch.Tensor     # (B, 3, K+1) Lab mean of the unlit pixels per class (+ global)
    std: torch.Tensor      # (B, 3, K+1) and their std
    ground: torch.Tensor   # (B,) mean linear luminance of the frame outside its sky, lamps included
    threshold: torch.Tensor  # (B,) the frame's lit threshold (lit_threshold): its lamps are above it


def read_night(frames: torch.Tensor, lab: torch.Tensor, index: torch.Tensor, num_classes: int,
               sky: torch.Tensor | None, eps: float) -> NightLight:
    """frames (B, 3, h, w) sRGB and their Lab; index (h*w,) class per pixel (K = none);
    sky (h, w) bool or None: the reference's sky, never an emitter."""
    lit, share = _emitters(frames, sky)                      # (B, 1, h, w), (B,)
    unlit = (~lit).flatten(1)                                  # (B, N)
    keep = unlit.to(frames.dtype)
    y = luminance(frames).flatten(1)
    ambient = (y * keep).sum(1) / keep.sum(1).clamp(min=1)
    # Dark ambient light, or lights on (a city's night glow can keep the ambient bright).
    night = torch.maximum((DAY_AMBIENT - ambient) / (DAY_AMBIENT - NIGHT_AMBIENT),
                          (share - LIT_SHARE[0]) / (LIT_SHARE[1] - LIT_SHARE[0])).clamp(0, 1)
    mean, std = _ambient_stats(lab.flatten(2), unlit, index, num_classes, night, eps)
    linear = luminance(srgb_to_linear(frames)).flatten(1)
    ground_w = torch.ones_like(linear) if sky is None else (~sky).flatten().to(frames.dtype)[None]
    ground = (linear * ground_w).sum(1) / ground_w.sum(1).clamp(min=1)
    threshold = lit_threshold(y.view(-1, 1, *frames.shape[-2:]))
    return NightLight(night, share, _lit_colours(frames, lit, y), mean, std, ground, threshold)


def _emitters(frames: torch.Tensor, sky: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference's lit pixels outside its sky (B, 1, h, w) bool, and the share of light
    cells holding one (B,)."""
    lit = lit_pixels(frames)
    if sky is not None:
        lit = lit & ~sky.view(1, 1, *sky.shape)
    cell = cell_size(tuple(frames.shape[-2:]))
    return lit, F.max_pool2d(lit.to(frames.dtype), cell, ceil_mode=True).flatten(1).mean(1)


BLACK_FRAME = 0.01


class DarkestNight:
    """Streams over a reference's frames and keeps the lit share of the darkest one (by
    mean luminance), as read_night reads it: how many lamps are on at full night.

    A webcam's lit share changes from one night frame to the next with weather, exposure
    and the season; lamps drawn frame by frame would come and go with it. With this share,
    `night` alone says how many are on: none by day, more as night falls, the darkest
    frame's count at full night, and a lamp that is on stays on through the night. Black
    frames (a fade from or to black, a dead frame: mean luminance below BLACK_FRAME) show
    no night and are passed over; the darkest real night here is 0.018."""

    def __init__(self, sky: torch.Tensor | None = None) -> None:
        self.sky = sky                      # (h, w) bool: the reference's sky, never lit
        self.luminance = float("inf")
        self.share: float | None = None     # None until a frame was added
        self.fill: float | None = None      # share of a lit cell's pixels that are lit (window_map)

    def add(self, frame: torch.Tensor) -> None:
        """frame (1, 3, h, w) sRGB."""
        y = float(luminance(frame).mean())
        if BLACK_FRAME <= y < self.luminance:
            self.luminance = y
            sky = None if self.sky is None else self.sky.to(frame.device)
            lit, share = _emitters(frame, sky)
            self.share = float(share[0])
            per_cell = F.avg_pool2d(lit.to(frame.dtype), cell_size(tuple(frame.shape[-2:])), ceil_mode=True)
            self.fill = float(per_cell[per_cell > 0].mean()) if bool((per_cell > 0).any()) else None


def _ambient_stats(lab: torch.Tensor, keep: torch.Tensor, index: torch.Tensor, k: int, night: torch.Tensor,
                   eps: float):
    """Per-class Lab statistics of the unlit pixels: lab (B, 3, N), keep (B, N) bool, index
    (N,) in 0..K, night (B,) -> mean, std (B, 3, K+1); column K (and classes with fewer than
    MIN_PIXELS unlit pixels) the whole frame's.

    At night, pixels just under the lit threshold (lit windows, glowing streets) still
    stretch the upper tail of the lightness; they are light, not the surfaces' ambient
    spread. So as `night` rises the spread moves from the plain std to a robust one: the
    lightness's RMS distance below its median, and the colours' median absolute deviation.
    """
    b = lab.shape[0]
    mean = lab.new_zeros(b, 3, k + 1)
    std = lab.new_zeros(b, 3, k + 1)
    for i in range(b):
        whole = _spread(lab[i][:, keep[i]] if keep[i].sum() >= MIN_PIXELS else lab[i], night[i])
        for c in range(k + 1):
            m = keep[i] & (index == c)
            mean[i, :, c], std[i, :, c] = _spread(lab[i][:, m], night[i]) if c < k and m.sum() >= MIN_PIXELS else whole
    return mean, torch.sqrt(std.square() + eps)


def _spread(x: torch.Tensor, night: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (3, n) Lab -> mean (3,), std (3,): the plain std in daylight, robust at night."""
    mean, plain = x.mean(1), x.std(1, unbiased=False)
    if night <= 0:
        return mean, plain
    median = x.median(1).values
    below = (median[0] - x[0]).clamp(min=0)
    l_std = torch.sqrt(below.square().sum() / (x[0] <= median[0]).sum().clamp(min=1))
    ab_std = 1.4826 * (x[1:] - median[1:, None]).abs().median(1).values
    return mean, torch.lerp(plain, torch.cat([l_std[None], ab_std]), night)


def _lit_colours(frames: torch.Tensor, lit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear RGB of each frame's lit pixels at QUANTILES luminance quantiles: (B, Q, 3);
    a frame with no lit pixel gets warm white (its share is 0, so it is not drawn)."""
    out = []
    q = (torch.arange(QUANTILES, dtype=frames.dtype, device=frames.device) + 0.5) / QUANTILES
    for f, m, lum in zip(frames, lit.flatten(1), y):
        pix = f.flatten(1)[:, m]                               # (3, n)
        if pix.shape[1] == 0:
            out.append(torch.tensor([[1.0, 0.8, 0.6]], dtype=f.dtype, device=f.device).expand(QUANTILES, 3))
            continue
        order = lum[m].argsort()
        pick = order[(q * (len(order) - 1)).round().long()]
        out.append(srgb_to_linear(pix[:, pick].T))
    return torch.stack(out)


# ----------------------------------------------------------------------- the photo


def class_blur(values: torch.Tensor, masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Normalised Gaussian blur within each class: values (1, C, H, W), masks (1, K, H, W)
    soft class weights -> (1, C, H, W); a pixel averages only pixels of its own classes."""
    num = gaussian_blur(values[:, :, None] * masks[:, None], sigma)   # (1, C, K, H, W)
    den = gaussian_blur(masks[:, None], sigma).clamp(min=1e-4)
    return ((num / den) * masks[:, None]).sum(2)


def gaussian_blur(x: torch.Tensor, sigma: float, along: str = "xy") -> torch.Tensor:
    """Separable Gaussian blur of (..., H, W), replicate edges; sigma in pixels; along "x"
    or "y" only blurs along that axis."""
    shape = x.shape
    x = x.reshape(-1, 1, *shape[-2:])
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    if "x" in along:
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    if "y" in along:
        x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x.reshape(shape)


def shading(lab: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The day's large-scale lightness of the photo relative to its class mean: (1, 1, H, W).

    Sunlit and shadowed areas differ by this; surface texture (reflectance) is what is
    left. Computed at a quarter of the size (it is smooth) and resized back."""
    h, w = lab.shape[-2:]
    small = F.interpolate(lab[:, :1], scale_factor=0.25, mode="area") if min(h, w) >= 16 else lab[:, :1]
    m = F.interpolate(masks, size=small.shape[-2:], mode="area")
    sigma = max(small.shape[-2:]) / 24
    low = class_blur(small, m, sigma)
    mean = (small * m).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True).clamp(min=1e-6)
    low = low - (mean * m).sum(1, keepdim=True)
    return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------- lights


class LightHead(nn.Module):
    """Where lights go: a logit per pixel from the photo's light cues (light_cues),
    (B, CUES, h, w) -> (B, 1, h, w). One linear layer; it starts at zero, so an untrained
    head gives every cell the same logit: lights anywhere but the sky.

    Why so small: the day and night frames of 13 webcams are all there is to learn from.
    Left out one camera at a time, a head reading E_GI's relu3_1 ranked the left-out
    camera's lit cells no better than the edge cues alone, and worse on the validation
    cameras (weights/README.md); the edge cues are what carries over to a new place."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Conv2d(CUES, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, cues: torch.Tensor) -> torch.Tensor:
        return self.out(cues)


CUES = 2


def light_cues(lab: torch.Tensor, sky: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, CUES, h, w) cues at `size` (default a quarter of the photo's) from its Lab (B, 3, H, W) and sky weight
    (B, 1, H, W): the density of vertical and of horizontal edges in the lightness. Built
    things (facades, windows, streets, signs) have many straight edges; sky, water, lawns
    and plain walls few. Each cue is standardised over the photo's ground (sky weight
    below 0.5): where, not how much, is what ranks the cells."""
    size = size or (max(1, lab.shape[-2] // 4), max(1, lab.shape[-1] // 4))
    light = lab[:, :1]
    dx = F.interpolate((light[..., :, 1:] - light[..., :, :-1]).abs(), size=size, mode="area")
    dy = F.interpolate((light[..., 1:, :] - light[..., :-1, :]).abs(), size=size, mode="area")
    cues = torch.cat([dx, dy], 1)
    ground = (F.interpolate(sky, size=size, mode="area") < 0.5).to(lab.dtype)
    n = ground.sum((2, 3), keepdim=True).clamp(min=1)
    mean = (cues * ground).sum((2, 3), keepdim=True) / n
    std = ((cues - mean).square() * ground).sum((2, 3), keepdim=True).div(n).sqrt()
    return (cues - mean) / std.clamp(min=1e-6)


def greenery(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, 1, H, W) weight of green vegetation (a* below GREEN_A, b* not
    blue): grass and tree crowns, where lamps do not hang. The webcams that teach the light
    head hold little vegetation, so it does not learn this; the builtin segmenter has no
    vegetation class."""
    return ((lab[:, 1:2] < GREEN_A) & (lab[:, 2:3] > -5)).to(lab.dtype)


GREEN_A = -4.0


# Logits are multiplied by this before the Gumbel draw: above 1, lights keep more to the
# head's likeliest places than a plain draw from softmax(logits) would. Chosen on the
# validation cameras' cross-scene check (mean lift of the 4 pairs, lamps at the darkest
# frame's count): 1.35 at 8, 1.48 at 32, 1.47 at 1000.
SHARPNESS = 32.0


@dataclass
class LightSites:
    """Fixed light positions on the photo, in the order they switch on."""
    index: torch.Tensor  # (M,) flat pixel index in the (H, W) image
    colour: torch.Tensor  # (M,) long: which lit-colour quantile each light takes
    cells: int           # light cells of the whole image (share x cells lights are on)
    size: tuple[int, int]
    windows: torch.Tensor | None = None  # (1, 1, H, W) window_map: what a lit cell lights instead of its lamp
    window_cells: torch.Tensor | None = None  # (1, 1, H, W) bool: pixels of cells that hold a window


def place_lights(logits: torch.Tensor, sky: torch.Tensor, size: tuple[int, int], seed: int,
                 last: torch.Tensor | None = None) -> LightSites:
    """logits (1, 1, h, w) from the light head (any size), sky (1, 1, H, W) weight -> sites;
    last (1, 1, H, W) weight, e.g. greenery: its cells come after all others.

    Cells are ranked by logit + Gumbel noise (a draw without replacement from softmax(logits));
    sky cells never hold a light. Within its cell a light sits at a seeded spot."""
    h, w = size
    cell, gh, gw = cell_grid(size)
    score = F.adaptive_avg_pool2d(logits.float(), (gh, gw)).flatten().cpu()
    skyw = F.adaptive_avg_pool2d(sky.float(), (gh, gw)).flatten().cpu()
    g = torch.Generator().manual_seed((seed & 0xFFFFFFFF) * 7_919 + 17)
    gumbel = -torch.log(-torch.log(torch.rand(gh * gw, generator=g).clamp(1e-9, 1 - 1e-9)))
    score = score * SHARPNESS + gumbel
    if last is not None:  # after every other cell: scores above all others' are shifted below them
        lastw = F.adaptive_avg_pool2d(last.float(), (gh, gw)).flatten().cpu()
        score = torch.where(lastw < 0.5, score, score - (score.max() - score.min()) - 1)
    score = torch.where(skyw < 0.5, score, torch.full_like(score, -float("inf")))
    order = score.argsort(descending=True)[: int((skyw < 0.5).sum())]
    off = torch.rand(2, len(order), generator=g) * 0.8 + 0.1           # anywhere inside the cell but its rim
    ys = ((order // gw).float() + off[0]) * cell
    xs = ((order % gw).float() + off[1]) * cell
    ys, xs = ys.long().clamp(max=h - 1), xs.long().clamp(max=w - 1)
    colour = torch.randint(0, QUANTILES, (len(order),), generator=g)
    return LightSites((ys * w + xs).to(logits.device), colour.to(logits.device), gh * gw, size)


# Sprite shape, in pixels of a 256 px long side (scaled with the image): a sharp core
# whose centre takes the light's colour, and the light it throws on the surfaces around
# it, at two reaches (peak gain per unit of the light's colour). What it throws shows the
# photo's own surfaces (their albedo), so a lamp lights a patch of facade or street.
# The gains were chosen on the validation cameras' cross-scene check: a lamp in a plausible
# but wrong place costs in proportion to the light it throws, and at 0.4 / 0.02 the glows
# cost 1.2 dB against the real nights (15.0 -> 16.2 dB at 0.1 / 0.005). A core of sigma 0.45
# (a point: 0.6 spilled a quarter of it on each neighbour) costs 0.16 dB less there.
CORE_SIGMA, NEAR_SIGMA, FAR_SIGMA = 0.45, 3.0, 12.0
NEAR_GAIN, FAR_GAIN = 0.1, 0.005


def render_lights(sites: LightSites, light: NightLight) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The lamps (B, 3, H, W) and the light they throw (B, 3, H, W), both linear, of the
    sites lit in each frame; None when no light is on."""
    h, w = sites.size
    on = (light.share[:, None] * sites.cells - torch.arange(len(sites.index), device=light.share.device)).clamp(0, 1)
    if len(sites.index) == 0 or not bool((on > 0).any()):
        return None
    amp = light.colours[:, sites.colour] * on[..., None]         # (B, M, 3)
    scale = max(h, w) / 256
    lamps = _glow(amp, sites, CORE_SIGMA * scale)
    if sites.windows is not None:  # a cell with windows lights them instead of a point
        lamps = torch.where(sites.window_cells, _cell_fill(amp, sites) * sites.windows, lamps)
    thrown = NEAR_GAIN * _glow(amp, sites, NEAR_SIGMA * scale) + FAR_GAIN * _glow(amp, sites, FAR_SIGMA * scale)
    return lamps, thrown


def _cell_fill(amp: torch.Tensor, sites: LightSites) -> torch.Tensor:
    """Each light's amplitude amp (B, M, 3) over its whole cell: (B, 3, H, W)."""
    w = sites.size[1]
    cell, gh, gw = cell_grid(sites.size)
    cells = (sites.index // w) // cell * gw + (sites.index % w) // cell
    grid = torch.zeros(amp.shape[0], 3, gh * gw, dtype=amp.dtype, device=amp.device)
    grid.index_add_(2, cells, amp.transpose(1, 2))
    return _upsample_cells(grid.view(-1, 3, gh, gw), sites.size)


def with_windows(sites: LightSites, windows: torch.Tensor) -> LightSites:
    """The sites with the photo's window_map (1, 1, H, W) and, once per photo, which pixels
    are in a light cell that holds a window (the others keep a point lamp)."""
    held = F.max_pool2d(windows, cell_size(sites.size), ceil_mode=True) > 0
    return replace(sites, windows=windows, window_cells=_upsample_cells(held, sites.size))


def _upsample_cells(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, gh, gw) values per light cell -> (B, C, H, W), each cell's value on its pixels."""
    cell = cell_size(size)
    return grid.repeat_interleave(cell, -2).repeat_interleave(cell, -1)[..., :size[0], :size[1]]


# Lit windows. At night a lit building shows its windows, not one point: in a lit cell,
# the photo's small features darker than the wall around them (window panes, doors,
# arcades by day: darker than a blur of a quarter cell along each axis by at least
# WINDOW_CONTRAST L*; a thin line or an edge's dark side is not, it streaked)
# light up, the most marked first. How many follows the reference: FILL_SCALE of the
# share of a lit cell's pixels that its darkest frame lights (DarkestNight.fill; most of
# those are a lamp's dim halo, these take the lamp's full colour), WINDOW_FILL without a
# scan of the reference. A cell with no such feature (a street, a square) keeps its point
# lamp. On the validation cameras' cross-scene check (mean PSNR 16.10 dB with points),
# FILL_SCALE 0.1 gives 16.00, 0.25 15.40 and 1 14.30: a window in a plausible but wrong
# place costs what it adds.
WINDOW_CONTRAST = 4.0
FILL_SCALE = 0.1
WINDOW_FILL = 0.04


def window_map(lab: torch.Tensor, ground: torch.Tensor, fill: float | None = None) -> torch.Tensor:
    """(1, 3, H, W) Lab of the photo, (1, 1, H, W) weight of where windows may be (its
    ground) -> (1, 1, H, W) 0/1: the pixels a lit cell lights; fill: their share of a
    cell's pixels at most."""
    h, w = lab.shape[-2:]
    cell, gh, gw = cell_grid((h, w))
    light = lab[:, :1]
    # Darker than its neighbours across both axes: a pane is, the dark side of an edge or
    # a long thin line (a shadow's border, a road marking) is not.
    sigma = max(cell / 4, 0.5)
    across = torch.minimum(gaussian_blur(light, sigma, "x"), gaussian_blur(light, sigma, "y"))
    dark = (across - light).clamp(min=0) * (ground > 0.5)
    # The n-th most marked pixel of each cell (n = fill x its pixels) sets its threshold.
    n = max(1, round((WINDOW_FILL if fill is None else fill * FILL_SCALE) * cell * cell))
    cells = F.pad(dark, (0, gw * cell - w, 0, gh * cell - h)).view(gh, cell, gw, cell)
    nth = cells.permute(0, 2, 1, 3).reshape(gh, gw, -1).topk(n, -1).values[..., -1]    # (gh, gw)
    return ((dark >= WINDOW_CONTRAST) & (dark >= _upsample_cells(nth[None, None], (h, w)))).to(lab.dtype)


def _glow(amp: torch.Tensor, sites: LightSites, sigma: float) -> torch.Tensor:
    """The lights of amplitudes amp (B, M, 3) at the sites, spread by a Gaussian of peak 1
    (a lone pixel keeps its value) and this sigma in pixels: (B, 3, H, W).

    A wide one is drawn on a grid f times coarser, where its sigma is about 3 px, and
    resized back (bilinear): a 4K frame's glow then costs what a 1K frame's does, and
    the full-size grid of impulses is never made."""
    h, w = sites.size
    sigma = max(sigma, 0.5)
    f = max(1, min(int(sigma // 3), min(h, w) // 4))
    gh, gw = -(-h // f), -(-w // f)
    cells = (sites.index // w) // f * gw + (sites.index % w) // f
    grid = torch.zeros(amp.shape[0], 3, gh * gw, dtype=amp.dtype, device=amp.device)
    grid.index_add_(2, cells, amp.transpose(1, 2) / (f * f))   # the cell's mean, as avg_pool2d gives it
    grid = gaussian_blur(grid.view(-1, 3, gh, gw), sigma / f)
    if f > 1:
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
    return grid * (2 * torch.pi * sigma ** 2)


# Share of the photo's own variation kept in the surfaces thrown light shows (the rest is
# their mean colour): a day photo's contrast is partly the sun's shading, which a lamp does
# not repeat. On the validation cameras' cross-scene check, 1 -> 0.5 lowers the daylight
# left (mean day r 0.10 -> -0.08, every pair at or below 0.01; real nights: -0.3 to 0) for 0.14 dB.
ALBEDO_CONTRAST = 0.5


def albedo(lab: torch.Tensor, shade: torch.Tensor) -> torch.Tensor:
    """The photo's surface colour (reflectance) for thrown light, in linear light, from the
    photo's Lab (1, 3, H, W) and its daytime shading (1, 1, H, W, L* about the class mean,
    see `shading`): the shading taken out of the lightness, scaled so that a mid-grey surface
    reflects about half, its variation about the mean colour cut to ALBEDO_CONTRAST,
    capped at 1.

    A lamp lights a sunlit and a shadowed patch of the same wall alike. On the validation
    cameras' cross-scene check, taking the shading out lowers the daylight left (mean day r
    -0.05 -> -0.08) at the same PSNR (16.01 -> 16.02 dB)."""
    linear = srgb_to_linear(lab_to_rgb(torch.cat([lab[:, :1] - shade, lab[:, 1:]], 1)))
    a = linear / luminance(linear).mean().clamp(min=1e-3) * 0.5
    return torch.lerp(a.mean((2, 3), keepdim=True), a, ALBEDO_CONTRAST).clamp(max=1)


def add_light(rgb: torch.Tensor, lights: tuple[torch.Tensor, torch.Tensor] | None, surface: torch.Tensor,
              ground: torch.Tensor, light: NightLight) -> torch.Tensor:
    """sRGB frames (B, 3, H, W) plus the lamps and the light they throw on `surface`
    (albedo, (1, 3, H, W)), added in linear light -> sRGB in [0, 1].

    The frame's light is shared out, not added to: the photo's ground (weights (1, 1, H, W))
    should hold on average what the reference frame's ground holds, lamps included
    (`light.ground`). The thrown light is scaled down when it alone would exceed what the
    ambient may give up (down to DIM_FLOOR of itself), then the ambient is dimmed by the
    rest; lamps themselves are never dimmed.
    """
    if lights is None:
        return rgb
    lamps, thrown = lights
    ambient = srgb_to_linear(rgb)
    thrown = thrown * surface
    wsum = ground.sum().clamp(min=1)

    def ground_mean(x):
        return (luminance(x) * ground).sum((1, 2, 3)) / wsum

    amb, throw = ground_mean(ambient), ground_mean(thrown)
    gain = torch.ones_like(amb).view(-1, 1, 1, 1)
    for _ in range(2):  # the lamps' gain depends on the frame without them, and that on the gain
        lamp = ground_mean(lamps * gain)
        room = (light.ground - DIM_FLOOR * amb - lamp).clamp(min=0)
        share = (room / throw.clamp(min=1e-6)).clamp(max=1)
        dim = ((light.ground - lamp - share * throw) / amb.clamp(min=1e-6)).clamp(DIM_FLOOR, 1)
        unlit = ambient * dim.view(-1, 1, 1, 1) + thrown * share.view(-1, 1, 1, 1)
        gain = torch.maximum(gain, lamp_gain(unlit, light.threshold))
    return linear_to_srgb(unlit + lamps * gain)


SPILL_SLACK = 0.03  # glow that lights up to 3% more cells than asked is left as it is


def light_up(rgb: torch.Tensor, sites: LightSites, surface: torch.Tensor, ground: torch.Tensor,
             light: NightLight, already: torch.Tensor | None = None) -> torch.Tensor:
    """add_light of the lamps at `sites` that `light.share` turns on, with as many lit cells
    as it asks for: on a dark night a lamp's glow can light a neighbouring cell too, so
    where the frame holds more lit cells than the lamps' share (plus `already` (B,), the
    share lit before them), fewer lamps are drawn, in proportion, once."""
    lights = render_lights(sites, light)
    if lights is None:  # no lamp on (daylight): nothing to count
        return rgb
    out = add_light(rgb, lights, surface, ground, light)
    before = torch.zeros_like(light.share) if already is None else already
    made = (lit_share(out, ground) - before).clamp(min=1e-6)
    ratio = (light.share / made).clamp(max=1)
    if not bool((ratio < 1 - SPILL_SLACK).any()):
        return out
    fewer = replace(light, share=light.share * ratio)
    return add_light(rgb, render_lights(sites, fewer), surface, ground, fewer)


def lamp_gain(unlit: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1) gain of the lamps on linear frames without them (B, 3, H, W).

    A reference's lamps are brighter than its lit threshold (4 x its median). Where the
    frame they are added to has a higher median (a brighter ambient, or the light the
    lamps throw), they are raised by as much, so they still stand out as they do there;
    never lowered. The median is read at a quarter of the size (a whole-frame figure)."""
    small = F.avg_pool2d(unlit, 4, ceil_mode=True) if min(unlit.shape[-2:]) >= 16 else unlit
    ratio = (lit_threshold(luminance(linear_to_srgb(small)), MEDIAN_SAMPLES) / threshold).clamp(min=1)
    return (ratio ** 2.2).view(-1, 1, 1, 1)  # a ratio of sRGB values -> of linear ones


def night_transfer(lab: torch.Tensor, regions, lab_stats: tuple, class_mean: torch.Tensor, shade: torch.Tensor,
                   light: NightLight, border: Border | None = None) -> torch.Tensor:
    """The classwise Lab transfer of the photo to the frames' ambient light, with the day's
    shading taken out by each frame's `night`: lab (1, 3, H, W) with its class_stats
    `lab_stats`, class_mean = regions.gather(lab_stats[0]) (the photo's, computed once),
    shade (1, 1, H, W), border: the colours beside soft border pixels (border_content)
    -> sRGB (B, 3, H, W). In daylight (night 0, nothing lit) this is
    `lab_transfer`."""
    b = light.night.shape[0]
    lab = lab.expand(b, -1, -1, -1)
    apart = None  # by day no border pixel is read apart (_night_border)
    if bool((light.night > 0).any()):
        # Lightness about its class mean: shading out, then the texture flattened.
        n = light.night.view(-1, 1, 1, 1)
        mean = class_mean
        fade = 1 - TEXTURE_LOSS * n
        lightness = mean[:, :1] + (lab[:, :1] - mean[:, :1] - n * shade) * fade
        lab = torch.cat([lightness, mean[:, 1:] + (lab[:, 1:] - mean[:, 1:]) * fade], 1)
        if border is not None:
            apart = _night_border(lab, regions, lab_stats[0], border, light.night, fade)
    return lab_to_rgb(modulate(lab, regions, None, None, LAB_EPS, content_stats=lab_stats,
                               style_stats=(light.mean, light.std), border=apart))


def _night_border(lab: torch.Tensor, regions, class_means: torch.Tensor, border: Border, night: torch.Tensor,
                  fade: torch.Tensor) -> Border:
    """The colours soft border pixels mix (border_content), as the frames (B,) see them:
    flattened by `fade` (B, 1, 1, 1) about their own class's mean like the photo `lab`
    (B, 3, H, W), and read as such in proportion to `night`; by day each pixel is itself.

    At night the classes' transfers differ most (the sky's spread shrinks about 4x, the
    ground's 20x), and a border pixel's mixed colour read by both shows as a rim. With the
    colours read apart the night frames' band error against hand-drawn borders
    (`benchmark --borders`) is 10-38% lower on four of its five photos (in51: +1%); read
    apart by day too, the day frames' was 3-5% higher on four of them, so by day each
    pixel stays itself."""
    x = lab.flatten(2)[..., regions.blend]                            # (B, 3, n)
    f, n = fade.view(-1, 1, 1), night.view(-1, 1, 1)
    own, other = class_means[..., regions.blend_own], class_means[..., regions.blend_index]
    return Border(torch.lerp(x, own + (border.own - own) * f, n), torch.lerp(x, other + (border.other - other) * f, n))
