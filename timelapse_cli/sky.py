"""The sky of an animation: soft borders (matte.py) and clouds that move (motion.py).

`plan_sky` decides, once per run, what animate does with the photo's sky and says so in
one phrase for the summary line:
  - the photo's labels get a soft sky border (matte "soft", the default) so classwise
    modulation blends sky and ground at the border instead of switching;
  - if the photo has sky and the reference's sky moves (and motion is not "none"), a
    SkyMotion (skyloop.py) moves the photo's sky along the reference's cloud field
    (motion.py), laid over the photo's sky by position and scaled to the photo.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from . import images, labels
from .errors import TimefliesError
from .matte import soft_sky_labels
from .model.modulation import SoftLabels
from .motion import SkyFlow, box_position, reference_sky_flow, sky_box
from .skyloop import SkyMotion, loop_period, thin_objects

MATTES = ("soft", "hard")
MOTIONS = ("auto", "none")


@dataclass
class SkyPlan:
    labels: torch.Tensor | SoftLabels  # the photo's labels for classwise modulation
    motion: SkyMotion | None           # moves the sky, or None
    note: str                          # what was done, for the summary line


def plan_sky(photo: torch.Tensor, img_labels: torch.Tensor, sky_id: int | None,
             ref_frames: Iterable[np.ndarray], ref_sky: np.ndarray | None, clock: list[float], *,
             matte: str = "soft", motion: str = "auto", motion_scale: float = 1.0,
             loop: bool = False) -> SkyPlan:
    """photo (1, 3, H, W) in [0, 1]; img_labels (H, W) on 0..K-1 with the sky `sky_id` (None:
    no known sky class); ref_frames: the reference's frames at the size of ref_sky (h, w)
    bool, read only if motion is measured; clock: retime.motion_clock of the output frames."""
    check_options(matte, motion, motion_scale)
    sky = None if sky_id is None else img_labels == sky_id
    if sky is None or not sky.any() or sky.all():
        return SkyPlan(img_labels, None, "no sky border in the photo" if sky is not None and sky.all()
                       else "no sky in the photo")
    labels = soft_sky_labels(photo, img_labels, sky_id) if matte == "soft" else img_labels
    border = f"{matte} sky border"
    if motion == "none" or motion_scale == 0:
        return SkyPlan(labels, None, f"{border}, sky still (--motion none)" if motion == "none"
                       else f"{border}, sky still (--motion-scale 0)")
    flow = None if ref_sky is None else reference_sky_flow(ref_frames, ref_sky)
    if flow is None:
        return SkyPlan(labels, None, f"{border}, sky still (no cloud motion found in the reference's sky)")
    h, w = img_labels.shape
    side = max(h, w) * motion_scale
    alpha = labels_alpha(labels, sky) * (1 - thin_objects(photo))  # wires and birds stay put
    field = photo_field(flow, alpha, side)  # (H, W, 2) photo pixels per reference frame
    fastest = float(field.norm(dim=-1).amax()) / max(h, w)  # long sides per frame
    travel = (clock[1] - clock[0]) * len(clock) if loop and len(clock) > 1 else None  # the loop's whole clock
    period = loop_period(fastest, travel)
    per_frame = flow.speed * side * (abs(clock[1] - clock[0]) if len(clock) > 1 else 1.0)
    return SkyPlan(labels, SkyMotion(alpha, field, period),
                   f"{border}, clouds moving {per_frame:.2f} px/frame towards {flow.degrees:.0f}° "
                   f"(from {flow.pairs} reference frame pairs; directions within ±{spread_degrees(field, alpha > 0.5):.0f}° "
                   f"across the sky)")


def spread_degrees(field: torch.Tensor, sky: torch.Tensor) -> float:
    """How far the field's (H, W, 2) direction strays across the sky (H, W) bool from its
    mean direction, in degrees: 0 for one drift, large for clouds that turn or converge."""
    vectors = field[sky] if sky.any() else field.reshape(-1, 2)
    mean = vectors.mean(0)
    if float(mean.norm()) == 0:
        return 180.0
    cos = (vectors @ mean) / (vectors.norm(dim=-1) * mean.norm()).clamp(min=1e-12)
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).max())


def check_options(matte: str, motion: str, motion_scale: float) -> None:
    """TimefliesError naming a bad --matte, --motion or --motion-scale."""
    if matte not in MATTES:
        raise TimefliesError(f"unknown --matte '{matte}'; use {' or '.join(MATTES)}")
    if motion not in MOTIONS:
        raise TimefliesError(f"unknown --motion '{motion}'; use {' or '.join(MOTIONS)}")
    if not motion_scale >= 0:
        raise TimefliesError(f"--motion-scale must be 0 or more, got {motion_scale}")


def photo_field(flow: SkyFlow, alpha: torch.Tensor, side: float) -> torch.Tensor:
    """The reference's field laid over the photo's sky by position in the photo sky's
    bounding box, as motion lays it over the reference's (sky_box, box_position, SkyFlow.at):
    (H, W, 2) photo pixels per reference frame; `side` = the photo's long side times the
    motion scale. The top of the reference's sky drives the top of the photo's, its left
    the photo's left. Once per photo."""
    h, w = alpha.shape
    sky = (alpha > 0.5).cpu().numpy()
    u, v = box_position(np.arange(w)[None, :], np.arange(h)[:, None], sky_box(sky if sky.any() else ~sky))
    dx, dy = flow.at(*np.broadcast_arrays(u, v))
    return torch.from_numpy(np.stack([dx, dy], -1)).to(alpha) * side


def labels_alpha(labels: torch.Tensor | SoftLabels, sky: torch.Tensor) -> torch.Tensor:
    """The sky's weight per pixel (H, W) implied by the labels (hard: 0 or 1)."""
    if isinstance(labels, SoftLabels):
        return torch.where(sky, 1 - labels.weight, labels.weight)
    return sky.float()


def sky_class(img_ids: np.ndarray, raw_ids: np.ndarray, raw_sky: int | None) -> int | None:
    """The sky's id after labels.unify_ids, from the photo's map before (raw) and after."""
    if raw_sky is None:
        return None
    hit = raw_ids == raw_sky
    return int(img_ids[hit][0]) if hit.any() else None


def unify_with_sky(*maps: np.ndarray, groups: bool | None = None) -> tuple[tuple[np.ndarray, ...], int, int | None]:
    """labels.unify_ids of the label maps (the photo's first), and the sky's id after it
    (None: no sky in the first map, or maps not in the 8 groups). groups: whether they hold
    the 8 groups (None: when every id is one of them, as segmenters write them)."""
    ids, k = labels.unify_ids(*maps)
    if groups is None:
        groups = max(int(m.max()) for m in maps) < len(labels.GROUP_NAMES)
    return ids, k, sky_class(ids[0], maps[0], labels.GROUP_NAMES.index("sky") if groups else None)


def resized(frames: Iterable[np.ndarray], size: tuple[int, int]) -> Iterable[np.ndarray]:
    for frame in frames:
        yield images.resize_image(frame, size)
