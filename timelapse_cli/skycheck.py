"""Does the photo's sky move with the reference's clouds? `benchmark --sky-clips DIR`.

Each sky clip of DIR is the reference for one photo. For each:
- the clip's own drift: `motion.clip_drift` (the mean flow vector over all its frame
  pairs in its segmented sky, shrunk by 4 px, at 128 px), in px/frame;
- whether `animate` moved the photo's sky, and the output's sky flow (as `benchmark` measures it);
- the verdict: a clip that drifts at least DRIFT px/frame must move the photo's sky within
  MAX_DEGREES of its own direction; a slower one must leave it still.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from . import data, images, labels, video
from .animation import AnimateOptions, Animator

PATTERN = "sky-clip-*"  # the clips of ../shared/data/timelapse
DRIFT = 0.5             # px/frame at 128 px: a clip that drifts this fast must move the sky
MAX_DEGREES = 35.0


def clip_drift(path: str, segmenter) -> tuple[float, float]:
    """(px/frame at 128 px, degrees) of a clip's mean sky flow vector (motion.clip_drift,
    the measure the sky's motion is gated on); (0, 0) without sky."""
    import cv2

    from .motion import DRIFT_SIDE, clip_drift as drift
    from .segment import segment_reference

    reader = video.FrameReader(path)
    size = images.fit_size(reader.info.width, reader.info.height, None, DRIFT_SIDE)
    ids = segment_reference(video.FrameReader(path), segmenter)
    sky = cv2.resize(ids.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) == labels.GROUP_NAMES.index("sky")
    dx, dy = drift([images.resize_image(f, size) for f in reader], sky)
    return math.hypot(dx, dy) * DRIFT_SIDE, math.degrees(math.atan2(dy, dx))


def check_clip(animator: Animator, photo: str, clip: str, aopts: AnimateOptions, segmenter, motion_of) -> dict:
    """One clip's row; motion_of(frames) -> benchmark's output sky flow dict or None."""
    speed, degrees = clip_drift(clip, segmenter)
    with tempfile.TemporaryDirectory() as tmp:
        r = animator.animate(photo, clip, Path(tmp) / "out.mp4", aopts)
        m = motion_of(list(video.FrameReader(Path(tmp) / "out.mp4")))
    moved = r.sky.find("clouds moving") >= 0
    error = abs((m["sky_degrees"] - degrees + 180) % 360 - 180) if moved and m else None
    must = speed >= DRIFT
    ok = (error is not None and error <= MAX_DEGREES) if must else not moved
    return dict(clip=Path(clip).name, drift=speed, drift_degrees=degrees, must_move=must, moved=moved,
                out_speed=m["sky_speed"] if m else None, out_degrees=m["sky_degrees"] if m else None,
                error_degrees=error, ok=ok, sky=r.sky)


def find_clips(data_dir: str, pattern: str = "*") -> list[data.Sequence]:
    """The clips of data_dir matching pattern ("*" = PATTERN), checked."""
    return data.find_sequences(data_dir, 2, "a clip needs at least 2", PATTERN if pattern == "*" else pattern)


def sky_clips(animator: Animator, photo: str, clips: list[data.Sequence], aopts: AnimateOptions, segmenter,
              motion_of, tick=lambda: None) -> dict:
    """Every clip as the reference for photo: a row each, and the counts."""
    rows = []
    for seq in clips:
        rows.append(check_clip(animator, photo, str(seq.path), aopts, segmenter, motion_of))
        tick()
    moving = [r for r in rows if r["must_move"]]
    errors = [r["error_degrees"] for r in moving if r["error_degrees"] is not None]
    return dict(photo=photo, drift=DRIFT, max_degrees=MAX_DEGREES, rows=rows,
                moving=len(moving), moving_ok=sum(r["ok"] for r in moving),
                still=len(rows) - len(moving), still_ok=sum(r["ok"] for r in rows if not r["must_move"]),
                worst_degrees=max(errors) if errors else None)
