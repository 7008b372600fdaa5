"""Built-in offline segmenter: sky (group 5) against everything else (group 0), no weights.

HOW IT WORKS. Everything runs on a working image whose long side is WORK_SIDE = 512 px
(shrunk by area averaging, or enlarged), so the thresholds below are in units of that size
and a 4000x3000 photo costs what a small one does; the sky mask is then brought back to the
input size by resizing it bilinearly and thresholding at one half (nearest neighbour with a
smooth border).

Photo (`segment_image`), about 0.25 s:
 1. Uniform lines on the image edge (letterbox bars, the grid lines of a cut-out) are
    trimmed; they get their neighbours' labels at the end.
 2. Sky border after Shen & Wang 2013 ("Sky region detection in a single image for
    autonomous ground robot navigation"): for a gradient threshold t, the border of each
    column is the first row whose Sobel gradient exceeds t, and t (40 values, 2..300) is
    picked by an energy of the colour covariances of the pixels above and below the
    border. Changed from the paper, after looking at webcam and photo failures: the energy
    is the log-determinant of the pooled within-class covariance (the paper's
    1 / (2|S_sky| + |S_ground| + 2 l_sky + l_ground) prefers an almost empty sky in
    cluttered views); for scoring, edges in the top tenth (webcam text overlays) are
    ignored and borders get a running median (lamp posts); and the smallest t within a
    tenth of the energy's total fall is taken, not the minimum (which can lie past hazy
    mountains, in the town).
 3. Sky seeds: smooth pixels safely above the border whose colour can be sky (a fixed
    prior: blue and horizon-cyan hues and neutral greys likely, warm hues less so,
    vegetation greens not). If they fall into two clearly different colour clusters and
    one is not a sky colour or is much darker (a tree on the top edge), that one is dropped.
 4. Markers for a seeded watershed. Sky: the seeds, plus smooth pixels of the seeds'
    colours (a few Gaussians, Mahalanobis distance) with no ground marker above them in
    their column and not much darker than the seeds; this brings in the sky below a row
    of clouds. Ground: vegetation colours anywhere; textured warm, green or dark pixels
    below the border; the bottom rows unless they look like sky or cloud; and, well below
    the border, colours far from the seeds' or under half their brightness (dark
    mountains, roads, the unlit ground at dawn).
 5. A watershed (image foresting transform) on the colour gradient gives each unmarked
    pixel (clouds, haze, the glow at the horizon, but also walls and roads) to the marker
    it reaches across the weakest edges.
 6. Clean-up: keep the parts connected to the seeds and to the top edge, open by one pixel
    to cut thin leaks, fill holes (birds, wires, text overlays inside the sky).
 7. Sanity checks (`_looks_like_sky`) turn an implausible sky into none at all: too small,
    too textured, warm-coloured without being far brighter than the ground (walls and
    ceilings under indoor light), or reaching the bottom edge while clipped white, dark or
    a uniform grey (studio backdrop, dark room, fog).

Video (`segment_video`), for a static camera, about 3 s: up to VIDEO_SAMPLES frames, evenly
spaced, are kept at the working size (uint8; frames are streamed, not stored). The clear
daylight frames (at least 0.6 as bright as the brightest, and the more contrasted half of
those, which leaves out fog) give a "day image", their median. The photo method runs on the
day image and on up to 8 clear frames; their vote (pixels that the segmentations agree on)
trains a linear discriminant on each pixel's behaviour over ALL sampled frames: its log
colour in every frame minus the frame's mean log colour (exposure and white balance cancel
out), reduced by PCA. Sky pixels follow the sky through night, dawn and day and carry
moving clouds; buildings and mountains follow the sun, and windows and street lights light
up at night. Where the vote and this classifier agree (or the classifier is very sure)
a second watershed is seeded, on the day image's colour gradient plus the classifier's.

MEASURED (sky IoU; ground truth /work/shared/data/timelapse/arizona-rooftop/sky_mask.png,
whose BLACK pixels are the sky, contrary to the data README):
    photo, frame 0120 ................................................. 0.992
    photo, the 221 frames brighter than 60 (mean / worst) ............. 0.9895 / 0.972
    photo, the 18 night-to-dawn frames (mean 5..58): frame 0 (mean 4.6) gets no sky,
        frames 1..6 an increasingly right one (IoU 0.77..0.97), 7..17 IoU 0.93..0.98
    video, all 239 frames ............................................. 0.991
with
    python - <<'EOF'
    import numpy as np; from PIL import Image; from pathlib import Path
    from timelapse_cli.segmentation.builtin import BuiltinSegmenter
    d = Path("../shared/data/timelapse/arizona-rooftop"); seg = BuiltinSegmenter()
    sky = np.asarray(Image.open(d / "sky_mask.png")) == 0
    iou = lambda ids: ((ids == 5) & sky).sum() / ((ids == 5) | sky).sum()
    frames = sorted(d.glob("0*.jpg"))
    print(iou(seg.segment_image(np.asarray(Image.open(d / "0120.jpg")))))
    print(iou(seg.segment_video((np.asarray(Image.open(f)) for f in frames), len(frames))))
    EOF
On approximate hand labels of other scenes (per-column sky borders set by colour rules
and checked as overlays): photos dpst in2 0.943, in46 0.982, in58 0.987, in32 0.991,
arizona-clearday/0015 0.946, pyramid-webcam/0010 0.957; videos arizona-clearday 0.985,
pyramid-webcam 0.970.
Known weak spots: a smooth wall or ceiling that looks like an overcast sky (about 1 in 5
indoor photos still get one), snow fields and white objects against a pale sky (taken for
cloud), fog, the sun's glare at the horizon, night skies over an unlit ground. A 4000x3000
photo peaks at about 280 MB RSS (150 MB of which are Python, numpy, scipy and the photo).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ..errors import TimefliesError
from .base import SKY, Segmenter, register

WORK_SIDE = 512          # long side of the working image, px
VIDEO_SAMPLES = 48       # frames of a video kept (downscaled) for the temporal statistics
BACKGROUND = 0           # group id of everything that is not sky


# ---------------------------------------------------------------- the segmenter


@register("builtin")
class BuiltinSegmenter(Segmenter):
    """Sky (5) vs. background (0) from colour, position, texture and, for videos, time."""

    name = "builtin"
    id_space = "groups"

    description = "builtin segmenter (sky vs. rest)"

    def __init__(self) -> None:
        pass  # nothing to load

    def segment_image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) int64, 5 for sky and 0 for everything else."""
        rgb = _as_rgb(rgb)
        sky = sky_mask(to_working(rgb))
        return labels_at(sky, rgb.shape[:2])

    def segment_video(self, frames: Iterable[np.ndarray], count: int) -> np.ndarray:
        """One (H, W) int64 map (5 sky, 0 other) for a static-camera video of `count` frames.

        Frames are streamed; up to VIDEO_SAMPLES evenly spaced ones are kept, downscaled.
        """
        stack, shape = sample_frames(frames, count, VIDEO_SAMPLES)
        return labels_at(video_sky_mask(stack), shape)


# ---------------------------------------------------------------- input and output


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1|3|4) array -> (H, W, 3) uint8; TimefliesError if it is not an image."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3, 4) or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise TimefliesError(f"expected an (H, W, 3) RGB image, got an array of shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb[:, :, :3])


def working_size(height: int, width: int, side: int = WORK_SIDE) -> tuple[int, int]:
    """(h, w) of the working image: the long side scaled (up or down) to `side`."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resized(rgb: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 at the working size.

    Box filter when shrinking (an area average: no aliasing from a 4000 px photo),
    bilinear when enlarging a small frame.
    """
    h, w = working_size(*rgb.shape[:2], side)
    if (h, w) == rgb.shape[:2]:
        return rgb
    resample = Image.BOX if h < rgb.shape[0] else Image.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((w, h), resample))


def to_working(rgb: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) float32 in 0..1 at the working size."""
    return _resized(rgb, side).astype(np.float32) / 255.0


def labels_at(sky: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool sky mask -> (H, W) int64 labels (SKY / BACKGROUND) at the output shape.

    The 0/255 mask is resized bilinearly and thresholded at half: nearest neighbour but with
    a smooth border instead of working-size staircase steps. Peak memory is the uint8 mask
    and the int64 result.
    """
    height, width = shape
    if sky.shape != (height, width):
        mask = Image.fromarray(sky.astype(np.uint8) * 255).resize((width, height), Image.BILINEAR)
        sky = np.asarray(mask) >= 128
    out = np.full((height, width), BACKGROUND, np.int64)
    out[sky] = SKY
    return out


# ---------------------------------------------------------------- pixel features


def luma(img: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...) Rec. 601 luma, same scale."""
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


def gradient(img: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(h, w, 3) in 0..1 -> (h, w) Sobel magnitude of the smoothed luma, 0..255 units."""
    smooth = ndi.gaussian_filter(luma(img) * 255.0, sigma)
    return np.hypot(ndi.sobel(smooth, 0), ndi.sobel(smooth, 1))


def colour_gradient(img: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(h, w, 3) in 0..1 -> (h, w) RMS over channels of the Sobel magnitude, 0..255 units.

    Unlike the luma gradient it also sees a blue sky against a grey-green mountain of the
    same brightness.
    """
    total = np.zeros(img.shape[:2], np.float32)
    for c in range(3):
        channel = ndi.gaussian_filter(img[..., c] * 255.0, sigma)
        total += ndi.sobel(channel, 0) ** 2 + ndi.sobel(channel, 1) ** 2
    return np.sqrt(total / 3.0)


def colour_prior(img: np.ndarray) -> np.ndarray:
    """(h, w, 3) in 0..1 -> (h, w) float32 in 0..1: how plausible each colour is for sky.

    Blue to purple hues 1.0; the cyan of a clear sky near the horizon 0.9; neutral greys
    0.5 (dark, night) to 0.9 (bright, overcast and clouds); warm hues 0.35 (sunsets, but also
    brick, wood, skin); vegetation greens 0.02.
    """
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    top = img.max(-1)
    chroma = top - img.min(-1)
    neutral = chroma / np.maximum(top, 0.05) < 0.25
    q = np.full(r.shape, 0.35, np.float32)
    q = np.where(neutral, 0.5 + 0.4 * np.clip(top / 0.6, 0, 1), q)
    q = np.where((b >= r) & (b >= g - 0.02) & ~neutral, 1.0, q)
    # A green-dominant colour has hue 120 + 60 (b - r) / chroma degrees: vegetation lies
    # at about 65..150, above 150 it is the pale cyan of a sky near the horizon.
    shift = (b - r) / np.maximum(chroma, 1e-6)
    greenish = (g >= r) & (g >= b) & ~neutral
    q = np.where(greenish & (shift > 0.5), 0.9, q)
    q = np.where(greenish & (shift <= 0.5) & (shift > -0.9), 0.02, q)
    return q.astype(np.float32)


# ---------------------------------------------------------------- step 1: edge lines


def frame_trim(img: np.ndarray, frac: float = 0.04) -> tuple[int, int, int, int]:
    """(h, w, 3) -> lines to trim at (top, bottom, left, right).

    A line is trimmed if it is uniform and unlike the image a little further in (a black
    bar, a grid line), counting from the edge, up to `frac` of the size.
    """
    lum = luma(img)
    counts = []
    for lines in (lum, lum[::-1], lum.T, lum.T[::-1]):
        most = int(frac * lines.shape[0])
        if most < 1 or lines.shape[0] < most + 4:
            counts.append(0)
            continue
        inside = lines[most + 1].mean()
        k = 0
        while k < most and lines[k].std() < 0.06 and abs(lines[k].mean() - inside) > 0.15:
            k += 1
        # the line's blurred (resampled, JPEG) edge is neither line nor image: trim it too
        counts.append(min(most, k + k // 4 + 1) if k else 0)
    return counts[0], counts[1], counts[2], counts[3]


# ---------------------------------------------------------------- step 2: border


def _column_moments(img255: np.ndarray) -> np.ndarray:
    """(h, w, 3) -> (h + 1, w, 13) float64 running sums down each column of 1, x and x x^T.

    Row k holds the sums over rows < k, so the colour statistics of the pixels above any
    per-column border are one gather away.
    """
    h, w, _ = img255.shape
    x = img255.astype(np.float64)
    outer = (x[..., :, None] * x[..., None, :]).reshape(h, w, 9)
    moments = np.concatenate([np.ones((h, w, 1)), x, outer], axis=2)
    sums = np.zeros((h + 1, w, 13))
    np.cumsum(moments, axis=0, out=sums[1:])
    return sums


def _pooled_logdet(sums: np.ndarray, border: np.ndarray, min_frac: float = 0.01) -> float:
    """log det of the pooled within-class covariance of sky (above border) and ground.

    sums: (h + 1, w, 13) from _column_moments; border: (w,) rows. inf if a class has less
    than `min_frac` of the pixels.
    """
    sky = sums[border, np.arange(sums.shape[1])].sum(0)
    total = sums[-1].sum(0)
    n = total[0]
    scatter = np.eye(3)  # 1 grey level^2 of regularisation: a flat sky is not a singularity
    for part in (sky, total - sky):
        count = part[0]
        if count < min_frac * n:
            return np.inf
        mean = part[1:4] / count
        scatter = scatter + (part[4:].reshape(3, 3) - count * np.outer(mean, mean)) / n
    return float(np.linalg.slogdet(scatter)[1])


def sky_border(img: np.ndarray, grad: np.ndarray, steps: int = 40) -> tuple[float, np.ndarray]:
    """Shen & Wang's per-column sky border with the threshold chosen by _pooled_logdet.

    img: (h, w, 3) in 0..1; grad: (h, w) from `gradient`. Returns (t, border) with border
    (w,) int: the number of rows above the first gradient > t in each column.

    For scoring, the borders ignore edges in the top tenth of the image (where webcams
    put their text overlays, which would end the sky at row 0 in every column they cross)
    and are smoothed by a running median over a tenth of the width (lamp posts, wires).
    The criterion often has a long, nearly flat valley (the border on the horizon for a
    range of t) before it falls again a little as the border sinks through hazy mountains
    into the town; so t is the smallest one within a tenth of the total fall of the minimum.
    """
    h, w = grad.shape
    running_max = np.maximum.accumulate(grad, axis=0)
    skip = h // 10
    running_below = np.maximum.accumulate(grad[skip:], axis=0)
    sums = _column_moments(img * 255.0)
    size = max(3, w // 10) | 1
    thresholds = np.geomspace(2.0, 300.0, steps)
    scores = []
    for t in thresholds:
        border = skip + (running_below <= t).sum(0)
        scores.append(_pooled_logdet(sums, ndi.median_filter(border, size=size, mode="nearest")))
    scores = np.asarray(scores)
    finite = np.flatnonzero(np.isfinite(scores))
    if not len(finite):
        return float(thresholds[0]), np.zeros(w, np.int64)
    low = scores[finite].min()
    good = finite[scores[finite] <= low + 0.1 * (scores[finite[0]] - low)]
    t = float(thresholds[good[0]])
    return t, (running_max <= t).sum(0)


# ---------------------------------------------------------------- step 3: seeds


def _kmeans(x: np.ndarray, k: int, iters: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) -> centres (k', d) and labels (n,), k' <= k; k-means++ start, fixed seed."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, min(k, len(x))):
        d2 = ((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1).min(1)
        if d2.sum() <= 0:
            break
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())])
    centres = np.asarray(centres, np.float64)
    labels = np.zeros(len(x), np.int64)
    for _ in range(iters):
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(len(centres)):
            if (labels == j).any():
                centres[j] = x[labels == j].mean(0)
    return centres, labels


class ColourModel:
    """A few Gaussians (k-means clusters) of colours; distance = the nearest one's Mahalanobis."""

    def __init__(self, colours: np.ndarray, k: int, reg: float = 0.02 ** 2, max_n: int = 20000) -> None:
        """colours: (n, 3) in 0..1. `reg` (a 0.02 std) keeps a flat sky from being a point."""
        rng = np.random.default_rng(0)
        if len(colours) > max_n:
            colours = colours[rng.choice(len(colours), max_n, replace=False)]
        centres, labels = _kmeans(colours.astype(np.float64), k)
        self.parts = []
        for j in range(len(centres)):
            members = colours[labels == j]
            if len(members) < 6:
                continue
            cov = np.cov(members.T) + reg * np.eye(3)
            self.parts.append((members.mean(0), np.linalg.inv(cov)))

    def distance2(self, colours: np.ndarray) -> np.ndarray:
        """(n, 3) -> (n,) squared Mahalanobis distance to the nearest Gaussian (inf if none)."""
        out = np.full(len(colours), np.inf)
        for mean, inv in self.parts:
            d = colours - mean
            out = np.minimum(out, np.einsum("nd,de,ne->n", d, inv, d))
        return out


def _above(border: np.ndarray, grad: np.ndarray, prior: np.ndarray, t: float) -> np.ndarray:
    """(h, w) bool: smooth pixels of a possible sky colour a little above `border` (w,).

    Downward spikes of the border (one column slipping through a gap) are cut first with a
    running median.
    """
    h, w = grad.shape
    border = np.minimum(border, ndi.median_filter(border, size=max(3, w // 40) | 1, mode="nearest"))
    return (np.arange(h)[:, None] < border[None, :] - max(1, h // 100)) & (grad < t) & (prior > 0.2)


def seed_mask(img: np.ndarray, grad: np.ndarray, prior: np.ndarray, t: float,
              border: np.ndarray) -> np.ndarray:
    """(h, w) bool: smooth, sky-coloured pixels safely above the border.

    A text overlay in the top band ends the border at row 0 in every column it crosses; so
    the pixels above the first edge *below* the top tenth count too, those inside the band
    only if their colour is one of the sky's below the band. A clearly less sky-like colour
    cluster (a dark tree touching the top edge) is dropped.
    """
    h, w, _ = img.shape
    seeds = _above(border, grad, prior, t)
    skip = h // 10
    past_band = _above(skip + (np.maximum.accumulate(grad[skip:], axis=0) <= t).sum(0), grad, prior, t)
    in_band = np.arange(h)[:, None] < skip
    below = past_band & ~in_band
    if below.sum() >= 0.005 * h * w:
        band = past_band & in_band
        near = ColourModel(img[below], 3).distance2(img[band]) < 16.0
        seeds = seeds | below
        seeds[band] |= near
    if seeds.sum() < 50:
        return seeds
    colours = img[seeds]
    centres, _ = _kmeans(colours[:: max(1, len(colours) // 5000)].astype(np.float64), 2)
    if len(centres) < 2 or np.abs(centres[0] - centres[1]).max() <= 0.2:
        return seeds
    labels = ((colours[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    if (labels == 0).all() or (labels == 1).all():
        return seeds
    p = prior[seeds]
    mean_prior = [p[labels == k].mean() for k in range(2)]
    bright = [float(luma(centres[k].astype(np.float32))) for k in range(2)]
    # more sky-coloured wins; between equals, the brighter (a daytime sky over a silhouette)
    score = [mean_prior[k] + 0.3 * bright[k] for k in range(2)]
    worse = int(np.argmin(score))
    # ...but only a cluster that is not a sky colour or is much darker is dropped: the pale
    # glow under a blue dawn sky is a different cluster too
    unlike = mean_prior[worse] < 0.6 or bright[1 - worse] - bright[worse] > 0.25
    if score[1 - worse] - score[worse] > 0.1 and unlike:
        keep = seeds.copy()
        keep[seeds] = labels != worse
        seeds = keep
    return seeds


# ---------------------------------------------------------------- steps 4-6: markers, watershed


def _first_true_row(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (w,) index of the first True row of each column, h if none."""
    return np.where(mask.any(0), mask.argmax(0), mask.shape[0])


def _keep_seeded(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(h, w) bool: the connected parts of `mask` that contain a seed and touch the top edge."""
    lab, _ = ndi.label(mask)
    top = lab[: max(1, mask.shape[0] // 100)]
    keep = np.intersect1d(np.unique(lab[seeds & mask]), np.unique(top))
    return np.isin(lab, keep[keep > 0])


def _markers(img: np.ndarray, lum: np.ndarray, grad: np.ndarray, prior: np.ndarray, t: float,
             border: np.ndarray, seeds: np.ndarray, far: float = 16.0) -> np.ndarray:
    """(h, w) int32 watershed markers: 1 sky, 2 ground, 0 undecided (see step 4 above).

    `far` is the squared Mahalanobis distance (4 standard deviations) within which a
    colour counts as one of the seeds'.
    """
    h, w, _ = img.shape
    rows = np.arange(h)[:, None]
    texture = ndi.gaussian_filter(grad, 1.5)
    smooth = min(t, 20.0)       # "smooth" needs an absolute bound: t is large in clutter
    strong = 2 * max(t, 10.0)
    colours = img.reshape(-1, 3)
    dist = ColourModel(colours[seeds.ravel()], 3).distance2(colours).reshape(h, w)
    below = rows > border[None, :] + max(2, h // 60)
    warm_green_dark = (prior < 0.5) | (lum < 0.25)
    ground = ((below & (texture > 2 * smooth) & warm_green_dark)
              | ((texture > strong) & ~seeds & (prior < 0.5))
              | (prior < 0.1))
    # Sky cannot lie below ground in the same column (except under overhangs, which the
    # watershed can still reach): this keeps water and roads of sky colour unmarked.
    above_ground = rows < _first_true_row(ground)[None, :]
    # Well under half the seeds' brightness is the shadowed or unlit ground of a dawn or
    # dusk scene (the sky is the light source), whatever its hue.
    much_darker = lum < 0.5 * np.median(lum[seeds])
    sky = seeds | ((dist < far) & (texture < smooth) & (prior >= 0.5) & ~ground & above_ground
                   & ~much_darker)
    cloud_like = (prior >= 0.5) & (lum >= 0.5) & (texture < strong)
    bottom = rows >= h - max(2, h // 30)
    ground |= bottom & ~sky & ~cloud_like
    far_below = rows > border[None, :] + max(3, h // 20)
    ground |= far_below & ((dist > 4 * far) | much_darker) & ~cloud_like & ~sky
    markers = np.zeros((h, w), np.int32)
    markers[ground] = 2
    markers[sky] = 1
    return markers


def _watershed(markers: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(h, w) markers (1 sky, 2 ground, 0 free) and edge strength -> (h, w) bool sky.

    Each free pixel goes to the marker it reaches over the lowest highest-edge path.
    """
    cost = np.clip(edges * 64.0, 0, 65535).astype(np.uint16)
    return ndi.watershed_ift(cost, markers) == 1


def _clean(sky: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(h, w) bool -> connected to seeds and top, opened by a pixel, holes filled."""
    sky = _keep_seeded(sky, seeds)
    sky = _keep_seeded(ndi.binary_opening(sky), seeds)
    return ndi.binary_fill_holes(sky)


# ---------------------------------------------------------------- step 7: sanity checks


def _looks_like_sky(img: np.ndarray, lum: np.ndarray, grad: np.ndarray, prior: np.ndarray,
                    sky: np.ndarray) -> bool:
    """Whether the (h, w) bool region `sky` of img (h, w, 3) is plausibly sky (step 7).

    Thresholds come from photos with and without sky (stills/dpst) and webcam frames.
    """
    h = sky.shape[0]
    if sky.mean() < 0.005 or sky.all():
        return False
    l_sky, l_ground = lum[sky].mean(), lum[~sky].mean()
    bright_over_dark = l_sky > 1.5 * l_ground
    if np.median(grad[sky]) > 35:                          # foliage, fabric, wood
        return False
    if (prior[sky] < 0.4).mean() > 0.5 and not bright_over_dark:   # a yellow wall, a flower
        return False
    blue_minus_red = float((img[sky][:, 2] - img[sky][:, 0]).mean())
    # Walls and ceilings under indoor light are a warm white (blue - red about -0.03 to
    # -0.07); an overcast sky is neutral, a warm one at sunset or dusk is strongly coloured
    # and, being the light source, brighter than the ground.
    if blue_minus_red < -0.04 and l_sky < (1.5 if blue_minus_red < -0.12 else 2.5) * l_ground:
        return False
    bottom = sky[-max(1, h // 20):].mean()
    clipped = (img[sky].min(-1) > 0.97).mean()
    # Sky reaching the bottom edge (a shot looking up) is not clipped white, not dark, and
    # not a uniform grey: those are a studio backdrop, a dark room, fog or a wall.
    uniform_grey = np.median(grad[sky]) < 3 and blue_minus_red < 0.1
    if bottom > 0.3 and (clipped > 0.4 or l_sky < 0.15 or uniform_grey):
        return False
    return True


# ---------------------------------------------------------------- photo pipeline


def _segment_core(img: np.ndarray) -> np.ndarray:
    """(h, w, 3) in 0..1 (edge lines trimmed) -> (h, w) bool sky, steps 2-7."""
    h, w, _ = img.shape
    none = np.zeros((h, w), bool)
    if min(h, w) < 8:
        return none
    lum = luma(img)
    grad = gradient(img)
    prior = colour_prior(img)
    t, border = sky_border(img, grad)
    seeds = seed_mask(img, grad, prior, t, border)
    if seeds.sum() < 0.01 * h * w:
        return none
    markers = _markers(img, lum, grad, prior, t, border, seeds)
    sky = _clean(_watershed(markers, colour_gradient(img)), seeds)
    return sky if _looks_like_sky(img, lum, grad, prior, sky) else none


def sky_mask(img: np.ndarray) -> np.ndarray:
    """(h, w, 3) float in 0..1 at the working size -> (h, w) bool sky."""
    top, bottom, left, right = frame_trim(img)
    h, w, _ = img.shape
    core = _segment_core(img[top:h - bottom, left:w - right])
    return np.pad(core, ((top, bottom), (left, right)), mode="edge")


# ---------------------------------------------------------------- video pipeline


def sample_frames(frames: Iterable[np.ndarray], count: int, samples: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Stream `frames`, keep up to `samples` evenly spaced ones at the working size.

    Returns ((T, h, w, 3) uint8, (H, W) of the input frames). `count` is the announced number
    of frames and picks the indices; frames beyond it (a wrong count) or all frames (count
    <= 0, unknown) are taken every `stride`-th, the stride doubling (and every other kept
    frame dropped) whenever twice `samples` are held, so memory stays bounded.
    """
    picks = set()
    if count > 0:
        picks = set(np.linspace(0, count - 1, min(count, samples)).round().astype(int).tolist())
    stride = max(1, count // samples) if count > 0 else 1
    kept: list[np.ndarray] = []
    shape = None
    for index, frame in enumerate(frames):
        if index < count:
            if index not in picks:
                continue
        elif (index - max(count, 0)) % stride:
            continue
        frame = _as_rgb(frame)
        if shape is None:
            shape = frame.shape[:2]
        elif frame.shape[:2] != shape:
            continue  # a stray frame of another size cannot be stacked
        kept.append(_resized(frame))
        if len(kept) >= 2 * samples:
            kept, stride = kept[::2], stride * 2
    if not kept:
        raise TimefliesError("the video has no frames to segment")
    if len(kept) > samples:
        kept = [kept[i] for i in np.linspace(0, len(kept) - 1, samples).round().astype(int)]
    return np.stack(kept), shape


def _clear_frames(stack: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) uint8 -> indices of the daylight frames with the clearer views.

    Daylight: at least 0.6 as bright as the brightest frame. Clearer: the more contrasted
    half of those (luma standard deviation), which leaves out fog and low cloud.
    """
    small = stack[:, ::4, ::4].astype(np.float32)
    brightness = small.mean(axis=(1, 2, 3))
    bright = np.flatnonzero(brightness >= 0.6 * brightness.max())
    contrast = luma(small[bright]).std(axis=(1, 2))
    return bright[contrast >= np.median(contrast)]


def _day_image(stack: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """(h, w, 3) float 0..1: median of the clear daylight frames `clear` (indices into the
    (T, h, w, 3) stack); the median drops passing clouds, people and cars."""
    return np.median(stack[clear], axis=0).astype(np.float32) / 255.0


def _photo_vote(stack: np.ndarray, day: np.ndarray, clear: np.ndarray, extra: int = 8) -> np.ndarray:
    """(h, w) float 0..1: share of photo segmentations calling each pixel sky.

    Segments the day image (counted twice) and up to `extra` single clear frames spread over
    the video, so that one unlucky frame does not decide. Segmentations that found no sky at
    all do not vote; if none found any, all is 0.
    """
    picks = np.unique(clear[np.linspace(0, len(clear) - 1, min(extra, len(clear))).round().astype(int)])
    votes = np.zeros(day.shape[:2], np.float32)
    weight = 0.0
    for image, w in [(day, 2.0)] + [(stack[t].astype(np.float32) / 255.0, 1.0) for t in picks]:
        sky = sky_mask(image)
        if sky.any():
            votes += w * sky
            weight += w
    return votes / weight if weight else votes


def _pool2(x: np.ndarray) -> np.ndarray:
    """(..., h, w, c) -> (..., h // 2, w // 2, c) 2x2 mean (float32)."""
    h, w = x.shape[-3] // 2 * 2, x.shape[-2] // 2 * 2
    x = x[..., :h, :w, :].astype(np.float32)
    return 0.25 * (x[..., 0::2, 0::2, :] + x[..., 1::2, 0::2, :] + x[..., 0::2, 1::2, :] + x[..., 1::2, 1::2, :])


def temporal_features(stack: np.ndarray, components: int = 16) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (h // 2, w // 2, k) float32: each pixel's behaviour over time.

    Per frame and channel, log intensity minus the frame's mean log intensity (so exposure
    and white balance changes cancel out), at half the working size; the T * 3 values of
    each pixel are reduced to their first k principal components.
    """
    small = _pool2(stack)                                        # (T, h2, w2, 3), 0..255
    logs = np.log(small + 2.0)                                   # +2: black night pixels
    logs -= logs.mean(axis=(1, 2), keepdims=True)
    t, h2, w2, _ = logs.shape
    x = logs.transpose(1, 2, 0, 3).reshape(h2 * w2, t * 3)
    x -= x.mean(0)
    _, vectors = np.linalg.eigh(x.T @ x)
    k = min(components, x.shape[1])
    return (x @ vectors[:, ::-1][:, :k]).reshape(h2, w2, k).astype(np.float32)


def temporal_sky_odds(features: np.ndarray, sky: np.ndarray, ground: np.ndarray) -> tuple[np.ndarray, float]:
    """Linear discriminant of sky vs. ground behaviour over time.

    features (h2, w2, k); sky, ground (h2, w2) bool training pixels. Returns the (h2, w2)
    log odds of sky (1-D Gaussians fitted to each class's discriminant scores, equal priors)
    and the separation d' of the two classes' scores (how much the cue can be trusted).
    """
    xs, xg = features[sky].astype(np.float64), features[ground].astype(np.float64)
    within = np.cov(xs.T) + np.cov(xg.T)
    within += 1e-3 * np.trace(within) / len(within) * np.eye(len(within))
    direction = np.linalg.solve(within, xs.mean(0) - xg.mean(0))
    score = features @ direction.astype(np.float32)
    ss, sg = xs @ direction, xg @ direction
    ms, mg, vs, vg = ss.mean(), sg.mean(), ss.var() + 1e-9, sg.var() + 1e-9
    odds = (-0.5 * (score - ms) ** 2 / vs - 0.5 * np.log(vs)) - (-0.5 * (score - mg) ** 2 / vg - 0.5 * np.log(vg))
    separation = abs(ms - mg) / np.sqrt(0.5 * (vs + vg))
    return odds.astype(np.float32), float(separation)


def _resize_float(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h2, w2) float -> (h, w) float32, bilinear."""
    return np.asarray(Image.fromarray(x.astype(np.float32)).resize(shape[::-1], Image.BILINEAR))


def video_sky_mask(stack: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) uint8 frames at the working size -> (h, w) bool sky."""
    clear = _clear_frames(stack)
    day = _day_image(stack, clear)
    vote = _photo_vote(stack, day, clear)
    first = vote >= 0.5
    h, w = first.shape
    if not first.any() or len(stack) < 4:
        return first
    features = temporal_features(stack)
    # train on the pixels the photo segmentations agree on
    half = _pool2(vote[..., None])[..., 0]
    sky_train = ndi.binary_erosion(half >= 0.75, iterations=2)
    ground_train = ndi.binary_erosion(half <= 0.35, iterations=2)
    if sky_train.sum() < 50 or ground_train.sum() < 50:
        return first
    odds, separation = temporal_sky_odds(features, sky_train, ground_train)
    if separation < 2.0:
        return first  # the video does not change enough to tell sky from ground by time
    odds = _resize_float(np.clip(odds, -20, 20), (h, w))
    # the final watershed, like the photo one, on the image without its edge lines
    top, bottom, left, right = frame_trim(day)
    core = (slice(top, h - bottom), slice(left, w - right))
    vote, odds, day = vote[core], odds[core], day[core]
    # Markers where the photo vote and the time classifier agree, eroded so the boundary
    # itself is left to the watershed; a log odds beyond 8 (3000 : 1) overrules the vote.
    markers = np.zeros(vote.shape, np.int32)
    agree_sky = (vote >= 0.5) & (odds > 0)
    agree_ground = (vote < 0.5) & (odds < 0)
    markers[ndi.binary_erosion(agree_ground, iterations=2) | (odds < -8)] = 2
    markers[ndi.binary_erosion(agree_sky, iterations=2) | (odds > 8)] = 1
    # A change of behaviour over time is an edge too: a log-odds step of 1 per pixel
    # (Sobel ~8) weighs like a colour step of about 30 grey levels.
    edges = colour_gradient(day) + 4.0 * (np.abs(ndi.sobel(odds, 0)) + np.abs(ndi.sobel(odds, 1)))
    sky = _clean(_watershed(markers, edges), markers == 1)
    return np.pad(sky, ((top, bottom), (left, right)), mode="edge")
