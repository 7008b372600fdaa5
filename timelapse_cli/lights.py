"""Teaching the light head where lights go: day and night frames of the same camera.

A webcam's day frames show the scene in daylight; its night frames show where the lamps,
windows and lit signs are. So each camera with nights gives a photo (a day frame) and a
target: for each light cell (model/night.py's grid), the share of the night frames in
which that cell emits light. Emission is what daylight cannot explain: a night pixel
brighter than the day's median frame scaled to the night's exposure by EMISSION, or lit
by the night measure itself (luminance > max(0.15, 4 x median)). The first catches the
lamps of auto-exposed webcams, whose nights are nearly as bright as their days.

Only the light head learns (binary cross-entropy on the ground's cells, each camera's own
rate of lit cells given, so that the head learns where in a photo lights are rather than
how many a city has); everything else stays fixed, so the rest of the generator's output
does not change.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import data, images
from .errors import TimefliesError
from .labels import GROUP_NAMES
from .model import Generator
from .model.color import LAB_EPS, rgb_to_lab
from .model.night import cell_size, light_cues, lit_pixels, luminance, read_night

EMISSION = 0.2      # night luminance above the scaled day that counts as emitted light
EMISSION_RATIO = 2  # ... in a pixel at least this many times the night frame's median


@dataclass
class Camera:
    """One camera's training pair material at one size."""
    name: str
    days: torch.Tensor    # (D, 3, h, w) day frames in [0, 1]
    sky: torch.Tensor     # (1, 1, h, w) sky weight
    target: torch.Tensor  # (1, 1, gh, gw) share of night frames in which each cell emits


def day_night(seq: data.Sequence, frames: torch.Tensor) -> tuple[list[int], list[int]]:
    """Indices of the day and the night frames: timestamps.txt's labels when the folder has
    one (data.day_night), else the night stage's own reading of each frame."""
    tags = data.day_night(seq)
    if tags is not None:
        return [i for i, t in enumerate(tags) if t == "day"], [i for i, t in enumerate(tags) if t == "night"]
    # As the night stage reads a reference frame: 0 = daylight .. 1 = night.
    night = read_night(frames, rgb_to_lab(frames), torch.zeros(frames[0, 0].numel(), dtype=torch.long),
                       1, None, LAB_EPS).night
    return torch.nonzero(night < 0.1).flatten().tolist(), torch.nonzero(night > 0.9).flatten().tolist()


def emission(nights: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
    """(N, 3, h, w) night frames, (1, 3, h, w) median day frame -> (N, 1, h, w) bool."""
    yn, yd = luminance(nights), luminance(day)
    ratio = yn.flatten(1).median(1).values / yd.flatten().median().clamp(min=1e-3)
    brighter = yn - ratio.view(-1, 1, 1, 1) * yd > EMISSION
    bright = yn > (EMISSION_RATIO * yn.flatten(1).median(1).values).clamp(min=0.15).view(-1, 1, 1, 1)
    return (brighter & bright) | lit_pixels(nights)


def load_camera(seq: data.Sequence, long_side: int, segmenter) -> Camera | None:
    """The camera's day frames, sky and night target at `long_side`; None without both a
    day and a night frame. The sky is the folder's segmentation.png or `segmenter`'s (8
    groups) over all frames, as `benchmark --eval` labels a sequence."""
    size = images.fit_size(seq.width, seq.height, None, long_side)
    frames = data.load_frames(seq, 0, seq.frames, size)
    days, nights = day_night(seq, frames)
    if not days or not nights:
        return None
    day = frames[days].median(0, keepdim=True).values
    lit = emission(frames[nights], day)
    uint8 = list((frames * 255).round().byte().permute(0, 2, 3, 1).numpy())
    sky = torch.from_numpy(data.scene_labels(seq, uint8, size, segmenter)[0] == GROUP_NAMES.index("sky"))
    lit &= ~sky
    cell = cell_size(tuple(frames.shape[-2:]))
    target = F.max_pool2d(lit.float(), cell, ceil_mode=True).mean(0, keepdim=True)
    return Camera(seq.name, frames[days], sky.float()[None, None], target)


@dataclass
class LightTrainOptions:
    steps: int = 300      # chosen on the validation cameras (weights/README.md)
    lr: float = 0.05
    weight_decay: float = 0.0
    size: int = 256       # long side of the photos
    seed: int = 0


@dataclass
class LightsResult:
    out: Path
    cameras: list[str]
    losses: list[float]
    seconds: float


def train_lights(data_dir: str, out: str, init: str | None = None, exclude=(), segmenter: str = "auto",
                 overwrite: bool = False, opts: LightTrainOptions | None = None,
                 progress: Callable[[int, int], None] | None = None) -> LightsResult:
    """Train the light head of generator `init` (default: the shipped one; night is switched
    on if it was off) on every camera of `data_dir` with day and night frames (sequences
    matching an `exclude` pattern left out), and save the generator to `out`."""
    from .outputs import check_outputs
    from .segment import resolve_segmenter
    from .weights import from_pretrained, save_pretrained, with_night

    opts = opts or LightTrainOptions()
    check_outputs({"--out": out}, {"--data": data_dir, "--init": init})
    if Path(out).exists() and not overwrite:
        raise TimefliesError(f"--out '{out}' already exists; pass --overwrite (-y) to replace its weights")
    start = time.perf_counter()
    torch.manual_seed(opts.seed)  # the new light head's initial weights
    model = with_night(from_pretrained(init))
    seg = None if segmenter == "none" else resolve_segmenter(segmenter, None, None, "cpu")
    sequences = data.find_sequences(data_dir, 2, "give at least 2 frames", exclude=exclude)
    cameras = [c for c in (load_camera(s, opts.size, seg) for s in sequences) if c is not None]
    losses = train_light_head(model, cameras, opts,
                              on_step=(lambda step, loss: progress(step + 1, opts.steps)) if progress else None)
    save_pretrained(model, out, metadata={"light_head": ",".join(c.name for c in cameras)})
    return LightsResult(Path(out), [c.name for c in cameras], losses, time.perf_counter() - start)


def train_light_head(model: Generator, cameras: list[Camera], opts: LightTrainOptions,
                     on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Fit model.light_head on the cameras (in place); returns the loss per step; on_step
    (step, loss) after each.

    Each step takes one day frame of every camera (random, randomly flipped), the head's
    logits pooled to the camera's cell grid, and the cross-entropy against the target."""
    if not getattr(model, "night", False):
        raise TimefliesError("this generator has no light head (its config has night off)")
    if not cameras:
        raise TimefliesError("no camera with both day and night frames to learn lights from")
    model.requires_grad_(False)
    model.light_head.requires_grad_(True)
    with torch.enable_grad():
        return _fit(model, cameras, opts, on_step)


def _fit(model: Generator, cameras: list[Camera], opts: LightTrainOptions, on_step) -> list[float]:
    head = model.light_head
    opt = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    rng = np.random.default_rng(opts.seed)
    cues = [_cues(cam) for cam in cameras]  # the photos are fixed: once per day frame
    losses = []
    for step in range(opts.steps):
        total = 0.0
        opt.zero_grad()
        for cam, c in zip(cameras, cues):
            i = int(rng.integers(len(cam.days)))
            c, t, ground = c[i:i + 1], cam.target, _ground_cells(cam)
            if rng.random() < 0.5:
                c, t, ground = c.flip(-1), t.flip(-1), ground.flip(-1)
            logits = F.adaptive_avg_pool2d(head(c), t.shape[-2:])
            rate = t[ground].mean().clamp(1e-3, 1 - 1e-3)          # this camera's share of lit cells
            loss = F.binary_cross_entropy_with_logits(logits[ground] + torch.logit(rate), t[ground])
            (loss / len(cameras)).backward()
            total += loss.item() / len(cameras)
        opt.step()
        losses.append(total)
        if on_step:
            on_step(step, total)
    head.requires_grad_(False)
    return losses


def _ground_cells(cam: Camera) -> torch.Tensor:
    """(1, 1, gh, gw) bool: the light cells outside the camera's sky."""
    return F.adaptive_avg_pool2d(cam.sky, cam.target.shape[-2:]) < 0.5


def _cues(cam: Camera) -> torch.Tensor:
    """The light cues of each day frame, (D, CUES, h/4, w/4), as Generator.light_logits reads them."""
    return light_cues(rgb_to_lab(cam.days), cam.sky.expand(len(cam.days), -1, -1, -1))
