"""How much the sky border costs: `timeflies benchmark --borders DATA`.

On photos whose sky border was drawn by hand (../shared/data/stills: the colour-coded
region masks of the deep-photo-styletransfer and WCT2 examples), each method animates the
photo with a reference three times, with the photo's sky border from
  - the hand mask (the border as it should be: the target),
  - the built-in segmenter's hard map (what animate used to do),
  - that map with the soft matte (matte.py, animate's default),
and the error against the first is measured per pixel (mean over frames and channels,
0..255) in a band of +-BAND px around the hand border and in the interior. A wrong border
shows as band error: sky colour on a tree top, a bright rim around a tower at night. The
band error of the night frames (the hand-drawn output's mean luminance under 0.12) is
also given on its own: night frames are dark, so their errors are small in 0..255 and
the whole clip's mean hides them, though a rim shows there most.
Motion is off: it is not part of this measure.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from . import images, labels, metrics, video
from .animation import Animator, to_tensor
from .benchmark import run_method
from .errors import InputError
from .matte import soft_sky_labels
from .segmentation.base import sample_indices
from .segmentation.builtin import BuiltinSegmenter

BAND = 8  # px either side of the hand-drawn border
SKY = labels.GROUP_NAMES.index("sky")
# Photo, its hand mask, the mask's sky colours (clouds drawn in another colour count too).
PHOTOS = (
    ("stills/dpst/in3.jpg", "stills/dpst/in3_seg.png", ((0, 0, 0),)),
    ("stills/dpst/in21.jpg", "stills/dpst/in21_seg.png", ((0, 0, 0),)),
    ("stills/dpst/in31.jpg", "stills/dpst/in31_seg.png", ((0, 0, 0),)),
    ("stills/dpst/in46.jpg", "stills/dpst/in46_seg.png", ((0, 0, 0), (255, 0, 0))),
    ("stills/dpst/in51.jpg", "stills/dpst/in51_seg.png", ((0, 0, 0),)),
)
REFERENCE = "timelapse/pyramid-webcam"  # day, dusk and night: the border matters most at night


def hand_sky(mask_path: Path, colours, size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool at size = (w, h): pixels of the hand mask nearest to one of the sky
    `colours` among its drawn colours (anti-aliased edges go to the nearest one)."""
    rgb = images.load_image(mask_path).astype(np.int32)
    drawn, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    main = drawn[counts > 0.005 * rgb.shape[0] * rgb.shape[1]]
    nearest = np.argmin(((rgb[:, :, None, :] - main[None, None]) ** 2).sum(-1), axis=-1)
    is_sky = np.array([any(np.abs(c - np.array(s)).sum() < 60 for s in colours) for c in main])
    return labels.resize_ids(is_sky[nearest].astype(np.int64), size).astype(bool)


def border_band(sky: np.ndarray, width: int = BAND) -> np.ndarray:
    """(h, w) bool: pixels within `width` px of the border of `sky` (either side)."""
    inside = ndimage.distance_transform_edt(sky)
    outside = ndimage.distance_transform_edt(~sky)
    return np.where(sky, inside, outside) <= width


def evaluate(animator: Animator, data_dir: str | Path, methods: tuple[str, ...], max_side: int = 768,
             ref_size: int = 256, max_frames: int = 16, batch: int = 4, seed: int = 0,
             tick=lambda: None) -> list[dict]:
    """One row per photo and method: band and interior error with the hard and the soft border."""
    data_dir = Path(data_dir)
    reader = video.FrameReader(data_dir / REFERENCE)
    ref_wh = images.fit_size(reader.info.width, reader.info.height, None, ref_size)
    keep = set(sample_indices(reader.info.frames, max_frames))
    frames = [images.resize_image(f, ref_wh) for t, f in enumerate(reader) if t in keep]
    segmenter = BuiltinSegmenter()
    ref_ids = segmenter.segment_video(iter(frames), len(frames))
    device = animator.device
    rows = []
    for photo_rel, mask_rel, colours in PHOTOS:
        photo_path, mask_path = data_dir / photo_rel, data_dir / mask_rel
        if not photo_path.is_file() or not mask_path.is_file():
            raise InputError(f"--borders: '{photo_path}' or its mask not found; give the shared data folder")
        photo = images.load_image(photo_path)
        photo = images.resize_image(photo, images.fit_size(photo.shape[1], photo.shape[0], None, max_side))
        size = (photo.shape[1], photo.shape[0])
        truth = hand_sky(mask_path, colours, size)
        seg = segmenter.segment_image(photo)
        ideal = np.where(truth, SKY, np.where(seg == SKY, 0, seg))  # hand sky; elsewhere the map's
        (seg_u, ideal_u, ref_u), k = labels.unify_ids(seg, ideal, ref_ids)
        sky_u = int(ideal_u[truth][0])
        image = to_tensor(photo).to(device)
        hard = torch.from_numpy(seg_u).to(device)
        variants = {"ideal": torch.from_numpy(ideal_u).to(device), "hard": hard,
                    "soft": soft_sky_labels(image, hard, sky_u)}
        band = border_band(truth)
        for name in methods:
            out = {v: run_method(animator, name, image, lab, torch.from_numpy(ref_u).to(device), k, frames,
                                 ref_wh, batch, seed) for v, lab in variants.items()}
            row = dict(photo=Path(photo_rel).stem, method=name, size=list(size),
                       sky_iou=float((truth & (seg == SKY)).sum() / max(1, (truth | (seg == SKY)).sum())))
            night = metrics.is_night(out["ideal"]).cpu().numpy()                  # (N,)
            for v in ("hard", "soft"):
                err = (out[v] - out["ideal"]).abs().mean(1).cpu().numpy() * 255     # (N, H, W)
                row[f"band_{v}"] = float(err[:, band].mean())
                row[f"interior_{v}"] = float(err[:, ~band].mean())
                row[f"band_{v}_night"] = float(err[night][:, band].mean()) if night.any() else float("nan")
            rows.append(row)
            tick()
    return rows
