"""Still images: load any photo Pillow can open as RGB, resize, save, and tile previews.

Arrays are numpy HxWx3 uint8 RGB unless a docstring says otherwise; sizes are (width, height)
as in Pillow, shapes are (height, width) as in numpy.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .errors import InputError, TimefliesError
from .fsutil import atomic_path

PHOTO_HINT = "give a JPEG, PNG, TIFF or WebP"

_GRAY_16 = {"I;16", "I;16L", "I;16B", "I;16N", "I;16S"}


def open_image(path: str | os.PathLike, what: str = "photo", hint: str = PHOTO_HINT) -> Image.Image:
    """Open, fully decode and EXIF-orient the first frame of an image file.

    `what` names the file in error messages ("photo", "label map"); `hint` is the fix offered
    when the file is not a readable image. Truncated files raise InputError: we do not set
    Pillow's global LOAD_TRUNCATED_IMAGES, since a half-grey photo is worse than a clear error.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} '{path}' not found; check the path")
    if path.is_dir():
        raise InputError(f"{what} '{path}' is a directory; give an image file")
    try:
        with open(path, "rb") as f:
            return _decode(f, path, what, hint)
    except PermissionError as e:
        raise InputError(f"{what} '{path}' cannot be read ({e.strerror}); check its permissions") from e


def _decode(f, path: Path, what: str, hint: str) -> Image.Image:
    """Decode the open file `f`; Pillow's many failure types become one InputError."""
    try:
        with Image.open(f) as im:
            im.seek(0)  # first frame of an animated GIF / multi-page TIFF
            im.load()
            return _exif_oriented(im)
    except UnidentifiedImageError as e:
        raise InputError(f"{what} '{path}' is not an image Pillow can read (unknown format); {hint}") from e
    except Image.DecompressionBombError as e:
        raise InputError(f"{what} '{path}' is too large to decode safely ({_one_line(e)}); "
                         "downscale it first") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        # Corrupt data: broken chunks, bad headers, or "image file is truncated".
        reason = _one_line(e)
        if "truncated" in reason.lower():
            raise InputError(f"{what} '{path}' is truncated ({reason}); "
                             "re-export or re-download the file") from e
        raise InputError(f"{what} '{path}' is not an image Pillow can read ({reason}); {hint}") from e


def _exif_oriented(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block is not worth refusing the photo."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises assorted types
        return im.copy()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Photo at `path` as an HxWx3 uint8 RGB array, upright per its EXIF orientation.

    Alpha (RGBA, LA, PA, P with transparency) is dropped, not composited: the colour under a
    transparent pixel is kept as stored. 16-bit grayscale (I;16*) is scaled by 1/257, 32-bit
    'I' by its range (16-bit if all values fit, else 31-bit), 'F' is read as 0..1 if its
    maximum is <= 1 else as 0..255. Everything else goes through Pillow's convert("RGB").
    """
    return to_rgb(open_image(path))


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow image as HxWx3 uint8 RGB (see load_image for the mode rules)."""
    if im.mode in _GRAY_16 or im.mode in ("I", "F"):
        return np.repeat(_gray_to_uint8(im)[:, :, None], 3, axis=2)
    if im.mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        im = im.convert("RGBA")  # also resolves palette transparency without a warning
    try:
        arr = np.asarray(im.convert("RGB"))
    except ValueError as e:
        raise InputError(f"image mode {im.mode} cannot be converted to RGB ({_one_line(e)}); "
                         "save the photo as 8-bit RGB") from e
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _gray_to_uint8(im: Image.Image) -> np.ndarray:
    """HxW uint8 from a 16-bit, 32-bit integer or float grayscale image."""
    arr = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        top = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
    elif im.mode == "I" and arr.size and arr.max() > 65535:
        top = 2.0**31 - 1
    else:
        top = 65535.0
    arr = np.nan_to_num(arr * (255.0 / top))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize HxWx3 (or HxW) uint8 to size=(width, height): LANCZOS down, BICUBIC up."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {size}")
    if (height, width) == img.shape[:2]:
        return img.copy()
    shrinking = width * height < img.shape[0] * img.shape[1]
    method = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(img).resize((width, height), method))


def fit_size(width: int, height: int, size: int | tuple[int, int] | None = None,
             max_size: int | None = None) -> tuple[int, int]:
    """Processing size (w, h) for a width x height image.

    `size` is the target long side (int) or an explicit (w, h); None keeps the image's size.
    Then, if `max_size` is given and the long side exceeds it, scale down so the long side is
    max_size. Aspect ratio is kept, rounding to the nearest pixel, each side at least 1.
    """
    if size is None:
        w, h = width, height
    elif isinstance(size, (tuple, list)):
        w, h = (_positive(v, "size") for v in size)
    else:
        w, h = _scale_long_side(width, height, _positive(size, "size"))
    if max_size is not None and max(w, h) > _positive(max_size, "max size"):
        w, h = _scale_long_side(w, h, max_size)
    return w, h


def _scale_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(width, height)
    return max(1, math.floor(width * scale + 0.5)), max(1, math.floor(height * scale + 0.5))


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TimefliesError(f"{name} must be a positive whole number of pixels, got {value!r}; "
                             "pass e.g. 512")
    return int(value)


def save_png(img: np.ndarray, path: str | os.PathLike) -> None:
    """Write an HxWx3 or HxW uint8 array as PNG, atomically (no partial file on error)."""
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"expected HxW or HxWx3 uint8, got {img.shape} {img.dtype}")
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def contact_sheet(frames: list[np.ndarray], columns: int = 4, labels: list[str] | None = None,
                  thumb_width: int = 256) -> np.ndarray:
    """Grid of thumbnails on white, each thumb_width wide (aspect kept), labels underneath.

    `frames` are HxWx3 (or HxW) uint8 arrays of any sizes; `labels`, if given, has one string
    per frame, drawn with Pillow's default font. Returns an HxWx3 uint8 RGB array.
    """
    if not frames:
        raise ValueError("contact_sheet needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} frames")
    thumbs = [_thumbnail(f, thumb_width) for f in frames]
    font = ImageFont.load_default()
    gap = 8
    label_h = _text_height(font) + gap // 2 if labels else 0
    cols, rows = min(columns, len(thumbs)), math.ceil(len(thumbs) / columns)
    cell_w, cell_h = thumb_width + gap, max(t.shape[0] for t in thumbs) + label_h + gap
    sheet = Image.new("RGB", (cols * cell_w + gap, rows * cell_h + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, thumb in enumerate(thumbs):
        x, y = gap + (i % columns) * cell_w, gap + (i // columns) * cell_h
        sheet.paste(Image.fromarray(thumb), (x, y))
        if labels:
            draw.text((x, y + thumb.shape[0] + gap // 4), labels[i], fill="black", font=font)
    return np.asarray(sheet)


def _thumbnail(frame: np.ndarray, width: int) -> np.ndarray:
    """HxWx3 uint8 thumbnail `width` pixels wide, aspect kept."""
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    height = max(1, math.floor(frame.shape[0] * width / frame.shape[1] + 0.5))
    return resize_image(frame, (width, height))


def _text_height(font) -> int:
    left, top, right, bottom = font.getbbox("Ag0")
    return int(bottom) + 2
