"""Semantic label maps: one integer class id per pixel, for the model's classwise modulation.

Two file formats are read:
  * "ids": a single-channel image (modes L, P, I;16, I, 1) whose values are the class ids
    (for P the palette indices are the ids). An RGB image whose three channels are equal
    everywhere counts as this format too (grayscale saved as RGB).
  * "groups": the reference code's 8-group RGB format. Each channel is off (0) or on (128;
    anything >= 64 counts as on, to survive JPEG and resampling noise) and the group id is
    the 3-bit code R + 2*G + 4*B, giving the ids of GROUP_NAMES below.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InputError
from .fsutil import atomic_path
from .images import open_image

GROUP_NAMES: tuple[str, ...] = (
    "background",  # 000
    "building",    # R
    "ground",      # G
    "mountain",    # R G
    "road",        # B
    "sky",         # R B
    "tree",        # G B
    "water",       # R G B
)

_HINT = "give a single-channel PNG of class ids or an RGB PNG in the 8-group format"
_ON_VALUE, _ON_THRESHOLD = 128, 64  # written value; smallest value read as on


@dataclass(frozen=True)
class LabelMap:
    ids: np.ndarray  # HxW int64 class ids
    format: str      # "ids" or "groups" (the 8-group RGB format)


def load_label_map(path: str | os.PathLike) -> LabelMap:
    """Read a label map file; ids is HxW int64. InputError if missing, unreadable or unusable."""
    im = open_image(path, what="label map", hint=_HINT)
    arr = np.asarray(im)
    _refuse_photo(arr, path)
    if im.mode in ("RGB", "RGBA", "RGBX"):
        rgb = arr[:, :, :3]
        if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
            return LabelMap(rgb[:, :, 0].astype(np.int64), "ids")
        return LabelMap(decode_groups_rgb(rgb), "groups")
    if im.mode in ("LA", "PA"):
        arr = arr[:, :, 0]  # ids plus an alpha we ignore
    elif im.mode == "F":
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(f"label map '{path}' holds fractional values; {_HINT}")
    elif arr.ndim != 2:
        raise InputError(f"label map '{path}' has image mode {im.mode}; {_HINT}")
    ids = arr.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise InputError(f"label map '{path}' holds negative ids; {_HINT}")
    return LabelMap(ids, "ids")


# A label map is regions of one value each, so few neighbouring pixels differ (only
# along borders: a few percent); in a photo most do (texture, noise, gradients).
_MAX_CHANGING = 0.4
_MIN_SIDE = 16  # smaller maps are too small to tell


def _refuse_photo(arr: np.ndarray, path) -> None:
    """InputError if `arr` looks like a photo rather than a label map."""
    if arr.ndim < 2 or min(arr.shape[:2]) < _MIN_SIDE:
        return
    a = arr.astype(np.int64)
    if a.ndim == 3:  # one value per colour (the alpha of LA/RGBA maps included)
        a = sum(a[:, :, c] << (16 * c) for c in range(a.shape[2]))
    changing = ((a[:, 1:] != a[:, :-1]).mean() + (a[1:] != a[:-1]).mean()) / 2
    if changing > _MAX_CHANGING:
        raise InputError(f"'{path}' looks like a photo, not a label map ({changing:.0%} of neighbouring "
                         f"pixels differ; in a label map only those along class borders do); {_HINT}")


def decode_groups_rgb(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 in the 8-group format -> HxW int64 group ids 0..7 (channel on if >= 64)."""
    on = rgb[:, :, :3] >= _ON_THRESHOLD
    return on[:, :, 0] * 1 + on[:, :, 1] * 2 + on[:, :, 2] * 4


def encode_groups_rgb(ids: np.ndarray) -> np.ndarray:
    """HxW group ids 0..7 -> HxWx3 uint8 in the 8-group format (each channel 0 or 128)."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() > 7):
        bad = ids.max() if ids.max() > 7 else ids.min()
        raise InputError(f"label id {bad} does not fit the 8-group format (ids 0..7); "
                         "save the map with format 'ids' instead")
    bits = (ids[:, :, None].astype(np.int64) >> np.arange(3)) & 1
    return (bits * _ON_VALUE).astype(np.uint8)


def save_label_map(ids: np.ndarray, path: str | os.PathLike, format: str = "ids") -> None:
    """Write HxW ids atomically as PNG: "ids" -> mode L (max < 256) or I;16; "groups" -> RGB."""
    if format == "groups":
        img = Image.fromarray(encode_groups_rgb(ids))
    elif format == "ids":
        img = _ids_image(np.asarray(ids))
    else:
        raise ValueError(f"format must be 'ids' or 'groups', got {format!r}")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def _ids_image(ids: np.ndarray) -> Image.Image:
    """Mode L image for ids < 256, else I;16 (ids < 65536)."""
    top = int(ids.max()) if ids.size else 0
    if (ids.size and ids.min() < 0) or top > 65535:
        raise InputError(f"label ids must be in 0..65535 to save as PNG, got {ids.min()}..{top}; "
                         "remap them with unify_ids first")
    return Image.fromarray(ids.astype(np.uint8 if top < 256 else np.uint16))


def fit_label_map(ids: np.ndarray, size: tuple[int, int], name: str, image_name: str) -> np.ndarray:
    """Resize an HxW id map to size=(w, h) by nearest neighbour (ids are never interpolated).

    InputError if the map's aspect ratio differs from the target's by more than rounding explains.
    """
    h_map, w_map = ids.shape
    w, h = size
    # A map made by resizing the photo (or vice versa) rounds each side by up to a pixel, which
    # moves the aspect ratio by a relative 1/width + 1/height of whichever image was rounded.
    # We don't know which, so allow both, plus 1% for tools that round more loosely.
    tolerance = 1 / w_map + 1 / h_map + 1 / w + 1 / h + 0.01
    if abs((w_map / h_map) / (w / h) - 1) > tolerance:
        raise InputError(f"label map '{name}' is {w_map}x{h_map} but photo '{image_name}' is {w}x{h} "
                         "(aspect ratios differ); give a label map of the image's shape")
    return resize_ids(ids, size)


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W) id map resized to size=(w, h) by nearest neighbour, whatever the aspect."""
    h_map, w_map = ids.shape
    w, h = size
    rows = np.minimum(((np.arange(h) + 0.5) * h_map / h).astype(np.int64), h_map - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * w_map / w).astype(np.int64), w_map - 1)
    return ids[rows[:, None], cols[None, :]].astype(np.int64)


def unify_ids(*maps: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Remap ids used in all maps jointly onto 0..K-1 (same id -> same new id in every map).

    Returns the remapped maps (int64, original shapes) and K, the number of distinct ids.
    """
    if not maps:
        return [], 0
    used = np.unique(np.concatenate([np.ravel(m) for m in maps]))
    return [np.searchsorted(used, m).astype(np.int64) for m in maps], len(used)


def palette(ids: np.ndarray) -> np.ndarray:
    """Fixed distinct colour per id (PASCAL VOC colour map): ids of any shape -> (..., 3) uint8."""
    ids = np.asarray(ids, dtype=np.int64)
    rgb = np.zeros(ids.shape + (3,), dtype=np.int64)
    code = ids.copy()
    for bit in range(7, -1, -1):
        for channel in range(3):
            rgb[..., channel] |= ((code >> channel) & 1) << bit
        code >>= 3
    return rgb.astype(np.uint8)


def label_preview(ids: np.ndarray, image: np.ndarray | None = None,
                  names: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
    """HxW ids coloured by `palette`, blended 50% over an HxWx3 uint8 image if given.

    With `names` (indexed by id, e.g. GROUP_NAMES) a legend of the ids present is drawn
    in the top-left corner. Returns HxWx3 uint8.
    """
    colours = palette(ids)
    if image is not None:
        if image.shape[:2] != ids.shape:
            raise ValueError(f"image {image.shape[:2]} and label map {ids.shape} differ in shape")
        colours = ((colours.astype(np.uint16) + image[:, :, :3]) // 2).astype(np.uint8)
    if names is None:
        return colours
    return _draw_legend(colours, np.unique(ids), names)


def _draw_legend(rgb: np.ndarray, present: np.ndarray, names) -> np.ndarray:
    """Swatch and name for each id in `present`, one line each, from the top-left corner."""
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for line, label in enumerate(present.tolist()):
        y = 4 + 14 * line
        text = names[label] if 0 <= label < len(names) else str(label)
        draw.rectangle((4, y, 14, y + 10), fill=tuple(palette(np.int64(label)).tolist()), outline="white")
        draw.text((18, y - 1), text, fill="white", font=font, stroke_width=1, stroke_fill="black")
    return np.asarray(canvas)
