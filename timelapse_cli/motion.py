"""How the reference's clouds move: a smooth motion field over its sky.

`reference_sky_flow` reads dense optical flow (OpenCV's DIS, coarse to fine up to the
reference's own resolution) between consecutive reference frames, in the reference's sky:

1. A pair counts only if both frames can be tracked: the sky is not dark (night), has
   detail somewhere (a clear sky has none: on a smooth gradient any brightening "moves"),
   and the two frames' sky brightness differs by under JUMP (an exposure jump or a frame
   hours later). Smaller brightness changes are divided out before the flow is computed.
2. Each counted pair gives a velocity: the mean flow over the sky, each pixel weighted by
   its detail (smooth patches say little, but soft clouds still count).
3. Temporal consistency over the clip: real clouds drift alike from pair to pair; a webcam
   sampled every half hour gives flows that scatter. The pairs whose mean velocity agrees
   with the clip's median velocity, or whose field (below) agrees with the clip's median
   field (within AGREE of its size), must be at least MIN_SHARE of the counted ones, else
   the sky is "still". A field over MAX_SPEED (frames far apart whose flow happened to
   agree) is no cloud motion either.
4. How fast: the clip's plain drift, its mean flow vector over all pairs in the sky at
   DRIFT_SIDE px (`mean_flow`, what `benchmark` measures outputs with), must reach
   MIN_SPEED, and the agreeing pairs' field must carry it (at least AGREE of its speed:
   a webcam's scattered pairs have a mean, but no clouds). The agreeing pairs' own speed
   is no gauge of it: a slow drift's pairs agree with each other as well as a real one's. Clouds that converge or turn have a small mean
   vector, so a field whose RMS speed over the sky reaches CONVERGING x MIN_SPEED moves too.
5. The field: the agreeing pairs' flow averaged (detail-weighted) in a coarse GRID x GRID
   grid of cells over the sky's bounding box, read between cell centres bilinearly. It
   follows clouds that speed up towards the zenith (perspective), converge, diverge, turn,
   or move in two layers at different speeds; a cell with little sky takes the motion of
   the sky cells nearest to it.

Units: long sides of the reference frame per reference frame, so the field scales to any
photo; positions u, v in [-1, 1] across the sky's bounding box (0 = its centre).
`mean_flow` is the plain flow of a clip in a region, as `benchmark` measures outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

MIN_SKY = 0.03         # sky share of the reference frame needed to measure anything
DARK = 0.12            # a sky darker than this (mean, 0..1) is not tracked (night)
JUMP = 0.1             # relative change of the sky's mean brightness between frames that is no exposure drift
TEXTURE = 1.0          # local detail (RMS gray levels) at which a pixel fully counts
MIN_TEXTURED = 0.1     # share of the sky that must have it (a clear sky has none)
FLOOR = 0.05           # weight of a pixel with no detail at all
AGREE = 0.5            # a pair agrees with the clip when its velocity or field is this close (share of the median's size)
AGREE_FLOOR = 0.002    # ... or this close (long sides per frame), for slow skies
MIN_PAIRS = 4          # agreeing pairs needed to trust a field
MIN_SHARE = 0.5        # and this share of the counted pairs
# 0.5 px per frame at 128 px: slower drifts are as large as what the light's changes and
# compression make of the flow in a still sky (measured on the 48 sky clips).
MIN_SPEED = 0.5 / 128
# Faster is not clouds drifting between consecutive frames but frames far apart (a webcam
# every half hour) whose flow happened to match: moving the sky by it smears it.
MAX_SPEED = 0.05
DRIFT_SIDE = 128       # long side (px) at which the clip's drift is measured
DRIFT_ERODE = 4        # px the sky is shrunk by there (and from the frame's edges): its border mixes sky and skyline
CONVERGING = 2         # a field this many times MIN_SPEED (RMS) moves whatever its mean
STRIDE = 3             # pixels between the flow samples the field is made of
GRID = 4               # cells per side of the field's grid: smooth, yet a sky's halves can differ
ENOUGH = 0.2           # a cell with under this share of a typical sky cell's weight borrows from its neighbours


@dataclass(frozen=True, eq=False)
class SkyFlow:
    """The reference's cloud motion: `grid` (2, G, G) holds the flow (dx, dy) at the centres
    of G x G cells over the sky's bounding box (row = v, column = u); and the clip's velocity."""
    grid: np.ndarray
    dx: float    # long sides per reference frame, + = rightwards (the agreeing pairs' mean)
    dy: float    # + = downwards
    pairs: int   # frame pairs it was measured on

    @property
    def speed(self) -> float:
        return math.hypot(self.dx, self.dy)

    @property
    def degrees(self) -> float:
        """Direction in image coordinates: 0 = rightwards, 90 = downwards."""
        return math.degrees(math.atan2(self.dy, self.dx))

    def at(self, u, v) -> tuple[np.ndarray, np.ndarray]:
        """The field at box positions u, v (arrays of one shape, -1..1): (dx, dy) of that
        shape, bilinear between cell centres, constant beyond the outer ones."""
        g = self.grid.shape[-1]
        x = np.clip((np.asarray(u, float) + 1) / 2 * g - 0.5, 0, g - 1)
        y = np.clip((np.asarray(v, float) + 1) / 2 * g - 0.5, 0, g - 1)
        x0, y0 = np.minimum(x.astype(int), g - 2), np.minimum(y.astype(int), g - 2)
        fx, fy = x - x0, y - y0
        c = self.grid
        out = (c[:, y0, x0] * (1 - fx) * (1 - fy) + c[:, y0, x0 + 1] * fx * (1 - fy)
               + c[:, y0 + 1, x0] * (1 - fx) * fy + c[:, y0 + 1, x0 + 1] * fx * fy)
        return out[0], out[1]


def sky_box(sky: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the bounding box of sky (h, w) bool in pixel edges."""
    ys, xs = np.nonzero(sky)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def box_position(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (x, y) -> positions (u, v) in the box, -1..1 (clamped outside it)."""
    x0, y0, x1, y1 = box
    u = (x + 0.5 - x0) / max(x1 - x0, 1) * 2 - 1
    v = (y + 0.5 - y0) / max(y1 - y0, 1) * 2 - 1
    return np.clip(u, -1, 1), np.clip(v, -1, 1)


def reference_sky_flow(frames: Iterable[np.ndarray], sky: np.ndarray) -> SkyFlow | None:
    """The reference's cloud motion from its frames ((h, w, 3) uint8, the size of `sky`) and
    its sky mask (h, w) bool; None if it cannot be measured or the sky is still."""
    import cv2

    if sky.mean() < MIN_SKY:
        return None
    # Leave out the sky's border: flow there mixes the sky with what stands in front of it.
    inner = cv2.erode(sky.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if inner.sum() < 64:
        return None
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)  # the pyramid ends at the reference's own resolution, not half of it
    side = max(sky.shape)
    # The samples the field is fitted to: every STRIDE-th inner sky pixel.
    pick = inner & (np.arange(sky.shape[0])[:, None] % STRIDE == 0) & (np.arange(sky.shape[1]) % STRIDE == 0)
    ys, xs = np.nonzero(pick)
    u, v = box_position(xs, ys, sky_box(inner))
    velocities, samples, tracked, prev = [], [], 0, None
    scale = DRIFT_SIDE / side
    small_size = (max(1, round(sky.shape[1] * scale)), max(1, round(sky.shape[0] * scale)))
    small = []  # (DRIFT_SIDE-sized frames) for the clip's drift
    for frame in frames:
        small.append(cv2.resize(np.ascontiguousarray(frame), small_size, interpolation=cv2.INTER_AREA))
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        level = float(gray[inner].mean())
        detail = _detail(gray)
        if prev is not None:
            prev_gray, prev_level, prev_detail = prev
            both_lit = min(level, prev_level) >= DARK * 255
            textured = (prev_detail[inner] >= TEXTURE).mean() >= MIN_TEXTURED
            if both_lit and textured and not np.array_equal(prev_gray, gray):  # a repeated frame says nothing
                tracked += 1
                if abs(level / prev_level - 1) < JUMP:
                    # Divide out the brightness drift: the flow then follows the clouds, not the light.
                    matched = np.clip(gray * (prev_level / level), 0, 255).astype(np.uint8)
                    pair = dis.calc(prev_gray, matched, None)  # (h, w, 2): prev(p) ~ gray(p + pair(p))
                    weight = np.clip(prev_detail / TEXTURE, FLOOR, 1)
                    w = weight[inner]
                    velocities.append((pair[inner] * w[:, None]).sum(0) / w.sum() / side)
                    samples.append((pair[pick] / side, weight[pick]))
        prev = gray, level, detail
    if not velocities:
        return None
    velocities = np.array(velocities)                       # (pairs, 2)
    # A pair agrees with the clip if its mean velocity is near the clip's median velocity,
    # or its whole field near the clip's median field (RMS over the cells): clouds that
    # diverge from a still middle have a mean velocity of about nothing that scatters, but
    # a field that holds. Each tolerance is AGREE of the median's size (or AGREE_FLOOR).
    middle = np.median(velocities, axis=0)
    near = np.linalg.norm(velocities - middle, axis=1) <= max(AGREE * np.linalg.norm(middle), AGREE_FLOOR)
    fields = np.stack([cell_means(u, v, f, w, mean) for (f, w), mean in zip(samples, velocities)])  # (pairs, 2, G, G)
    median = np.median(fields, axis=0)
    apart = np.sqrt(((fields - median) ** 2).sum(1).mean((1, 2)))                                # (pairs,)
    agree = near | (apart <= max(AGREE * np.sqrt((median ** 2).sum(0).mean()), AGREE_FLOOR))
    # A few lucky pairs among many scattered ones (a webcam sampled hourly) are noise.
    if agree.sum() < max(MIN_PAIRS, MIN_SHARE * tracked):
        return None
    dx, dy = velocities[agree].mean(0).tolist()
    flows = np.concatenate([s[0] for s, ok in zip(samples, agree) if ok])       # (n, 2)
    weights = np.concatenate([s[1] for s, ok in zip(samples, agree) if ok])     # (n,)
    n = int(agree.sum())
    grid = cell_means(np.tile(u, n), np.tile(v, n), flows, weights, (dx, dy))
    flow = SkyFlow(grid, dx, dy, n)
    fx, fy = flow.at(u, v)
    typical = float(np.sqrt(np.mean(fx * fx + fy * fy)))  # the field's RMS speed over the sky
    if typical > MAX_SPEED:
        return None
    # The drift must be the clouds' that the agreeing pairs track (their field at least
    # AGREE of its speed), not a webcam's scattered pairs, whose mean is no motion.
    # Clouds that converge from both sides move, though their mean vector is nil.
    drift = math.hypot(*clip_drift(small, sky))
    moving = MIN_SPEED <= drift <= typical / AGREE or typical >= CONVERGING * MIN_SPEED
    return flow if moving else None


def clip_drift(frames: list[np.ndarray], sky: np.ndarray) -> tuple[float, float]:
    """The clip's drift: `mean_flow`'s mean vector (dx, dy) over all its pairs, in its sky
    shrunk by DRIFT_ERODE px, in long sides per frame. frames: (h, w, 3) uint8 at
    DRIFT_SIDE px; sky: (H, W) bool at any size."""
    import cv2

    h, w = frames[0].shape[:2]
    mask = cv2.resize(sky.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    inner = cv2.erode(mask, cross, iterations=DRIFT_ERODE, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if not inner.any():
        return 0.0, 0.0
    (dx, dy), _ = mean_flow(frames, inner)
    return dx / max(h, w), dy / max(h, w)


def cell_means(u: np.ndarray, v: np.ndarray, flow: np.ndarray, weight: np.ndarray,
               mean: tuple[float, float]) -> np.ndarray:
    """(2, GRID, GRID): the weighted mean of flow (n, 2) at box positions u, v (n,) in each
    cell. A cell with under ENOUGH of a typical sky cell's weight (sky hidden behind a
    mountain, or none in that corner of the box) takes the mean of its neighbours that
    have one, the nearest first: the motion of the sky beside it, not of the whole sky.
    `mean` only if there is no sky at all."""
    cells = (np.clip(((v + 1) / 2 * GRID).astype(int), 0, GRID - 1) * GRID
             + np.clip(((u + 1) / 2 * GRID).astype(int), 0, GRID - 1))
    total = np.bincount(cells, weight, GRID * GRID).reshape(GRID, GRID)
    sums = np.stack([np.bincount(cells, weight * flow[:, i], GRID * GRID) for i in range(2)]).reshape(2, GRID, GRID)
    known = total >= ENOUGH * np.median(total[total > 0]) if (total > 0).any() else np.zeros_like(total, bool)
    if not known.any():
        return np.broadcast_to(np.asarray(mean, float)[:, None, None], (2, GRID, GRID)).copy()
    grid = sums / np.maximum(total, 1e-12)
    while not known.all():
        # Grow the known cells by one step: an unknown cell beside known ones takes their
        # weighted mean (weights: their sky), then counts as known with that weight.
        pad = lambda a: np.pad(a, [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)])  # noqa: E731
        w = pad(np.where(known, total, 0.0))
        wf = pad(np.where(known, grid * total, 0.0))
        near = sum(w[1 + dy:1 + dy + GRID, 1 + dx:1 + dx + GRID] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)))
        near_f = sum(wf[:, 1 + dy:1 + dy + GRID, 1 + dx:1 + dx + GRID] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)))
        grow = ~known & (near > 0)
        if not grow.any():  # only diagonal neighbours: let them count too
            grow = ~known
            near = np.maximum(near, 1e-12)
            near_f = np.where(near_f == 0, np.asarray(mean, float)[:, None, None] * near, near_f)
        grid = np.where(grow, near_f / np.maximum(near, 1e-12), grid)
        total = np.where(grow, near / 4, total)
        known = known | grow
    return grid


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


def _detail(gray: np.ndarray) -> np.ndarray:
    """(h, w) float: local detail of the frame (cloud edges, not a smooth gradient): the
    local RMS of the gray levels minus their blur, at a scale of 3 px per 256."""
    import cv2

    g = gray.astype(np.float32)
    sigma = 3 * max(g.shape) / 256
    detail = g - cv2.GaussianBlur(g, (0, 0), sigma)
    return np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), sigma))
