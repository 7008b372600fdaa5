"""Smooth retiming: which moment of the reference drives each output frame.

N reference frames can drive M output frames. Each output frame gets a position in
reference time, a real number in 0..N-1 (`timeline`), and its 3-frame window
(F_t-2, F_t-1, F_t) is interpolated linearly between the windows of the two reference
frames around it (`reference_windows`). So what drives the generator, and the sky's
motion clock (`motion_clock`), varies smoothly: with M = 4N every output frame differs
from its neighbours by about a quarter of a reference step, where nearest-frame
resampling would repeat each frame four times.

With `loop`, reference time runs forward and back (0 .. N-1 .. 0, the last frame leading
into the first), while the motion clock keeps running forward: the light returns to where
it started and the clouds keep drifting the same way.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from . import images


def default_frames(n_ref: int, loop: bool) -> int:
    """Output frames when --frames is not given: one per reference frame, there and back with loop."""
    return max(1, 2 * (n_ref - 1)) if loop else n_ref


def timeline(n_out: int, n_ref: int, loop: bool = False) -> list[float]:
    """Reference time (0..n_ref-1) of each of n_out output frames, evenly spaced."""
    if n_out < 1 or n_ref < 1:
        return []
    last = n_ref - 1
    if loop:
        # A triangle over one period of n_out frames: frame n_out would be frame 0 again.
        return [last * (1 - abs(1 - 2 * i / n_out)) for i in range(n_out)]
    if n_out == n_ref:
        return [float(i) for i in range(n_ref)]
    if n_out == 1:
        return [0.0]
    return np.linspace(0, last, n_out).tolist()


def motion_clock(positions: list[float], loop: bool = False) -> list[float]:
    """The sky motion's time of each output frame, in reference frames: the reference time
    itself, or with loop a clock that runs forward at the same pace the whole way round."""
    if not loop:
        return list(positions)
    n = len(positions)
    travel = 2 * max(positions, default=0.0)  # there and back
    return [i * travel / n for i in range(n)] if n else []


def reference_windows(frames: Iterable[np.ndarray], positions: list[float],
                      size: tuple[int, int]) -> Iterator[torch.Tensor]:
    """Stream (9, h, w) windows (F_t-2, F_t-1, F_t) in [0, 1], one per position.

    frames: the reference's (H, W, 3) uint8 frames in order; they are resized to
    size = (w, h). A window at a fractional position is the linear blend of the windows of
    the frames around it; frames before the first repeat the first. Positions that only
    increase are served while streaming (at most 4 frames kept); otherwise all frames are
    kept (uint8, at `size`). Stops early if the frames run out.
    """
    positions = list(positions)
    monotonic = all(b >= a for a, b in zip(positions, positions[1:]))
    source = iter(frames)
    kept: dict[int, torch.Tensor] = {}
    read = 0  # frames taken from `source`

    def frame(t: int) -> torch.Tensor | None:
        nonlocal read
        while t >= read:
            raw = next(source, None)
            if raw is None:
                return None
            kept[read] = torch.from_numpy(np.array(images.resize_image(raw, size))).permute(2, 0, 1)  # a writable copy
            read += 1
        return kept.get(t)

    built: dict[int, torch.Tensor] = {}  # the last windows, reused by the blends between them

    def window(t: int) -> torch.Tensor | None:
        if t not in built:
            parts = [frame(max(i, 0)) for i in (t - 2, t - 1, t)]
            if any(p is None for p in parts):
                return None
            built[t] = torch.cat(parts, 0).float().div_(255)
            for old in [i for i in built if abs(i - t) > 1]:
                del built[old]
        return built[t]

    for s in positions:
        t = int(np.floor(s + 1e-9))
        frac = s - t
        if frac < 1e-6:
            out = window(t)
        else:
            a, b = window(t), window(t + 1)
            out = None if a is None or b is None else torch.lerp(a, b, frac)
        if out is None:
            return
        yield out
        if monotonic:
            for old in [i for i in kept if i < t - 2]:
                del kept[old]
