"""Semantic label maps for photos and static-camera videos: the `timeflies segment` pipeline.

    photo / video --segmenter (builtin or mmseg)--> (H, W) class ids --> PNG (+ preview)

One map serves a whole static-camera video. Class ids are the 8 groups of method.md by
default (labels.GROUP_NAMES), or raw ADE20K ids (1..150, 0 = other) with classes="ade20k".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import images, labels, outputs, video
from .errors import InputError, TimefliesError
from .fsutil import removed_on_error
from .segmentation.ade20k import ADE20K_CLASSES, to_groups
from .segmentation.base import Segmenter, get_segmenter, sample_indices

SEGMENTERS = ("auto", "mmseg", "builtin")


@dataclass
class SegmentOptions:
    segmenter: str = "auto"          # auto = mmseg if a checkpoint is configured or cached, else builtin
    config: str | None = None        # mmseg config: a path or a bundled config's name
    checkpoint: str | None = None    # mmseg checkpoint: a path, or a cached model's name (zoo.py)
    device: str = "auto"
    classes: str = "groups"          # "groups" (8 groups) or "ade20k" (raw ADE20K ids)
    format: str = "ids"              # "ids" (single-channel PNG) or "rgb" (the 8-group RGB format)
    preview: str | Path | None = None
    overwrite: bool = False          # replace existing outputs (outputs.py says how)


@dataclass
class SegmentResult:
    output: Path
    width: int
    height: int
    is_video: bool
    segmenter: str
    classes: list[str]               # names of the classes present
    seconds: float
    preview: Path | None = None
    labels_from: str = ""            # which segmenter and classes, for the summary


def resolve_segmenter(name: str, config: str | None = None, checkpoint: str | None = None,
                      device: str = "auto") -> Segmenter:
    """The segmenter `name` (auto, mmseg, builtin), loaded once and kept for reuse.

    auto is mmseg when mmsegmentation is installed and there is a checkpoint: given, in
    $TIMEFLIES_MMSEG_CHECKPOINT, or fetched into the cache (`timeflies models fetch`);
    else builtin. Nothing is ever downloaded here.
    """
    from .segmentation import mmseg, zoo

    if name not in SEGMENTERS:
        raise TimefliesError(f"unknown segmenter '{name}'; choose one of {', '.join(SEGMENTERS)}")
    given = "--config" if config else "--checkpoint" if checkpoint else None
    checkpoint = checkpoint or mmseg.checkpoint_from_env()
    why = "--segmenter builtin"
    if name == "auto":
        found = checkpoint or zoo.find_cached(config)
        name = "mmseg" if found and mmseg.mmseg_available() else "builtin"
        wanted = zoo.for_config(config) if config else zoo.get(zoo.DEFAULT)
        why = ("mmsegmentation is not installed" if found else "no ADE20K checkpoint is cached or configured"
               + (f"; `timeflies models fetch {wanted.name}` gets one" if wanted else ""))
    if name == "builtin" and given:  # it would be ignored: say so instead
        raise TimefliesError(f"{given} is for the mmseg segmenter, but the builtin one runs ({why}); give "
                             "--segmenter mmseg --checkpoint FILE, or drop " + given)
    if name == "mmseg":
        return get_segmenter("mmseg", config=config, checkpoint=checkpoint, device=device)
    return get_segmenter(name)


def to_classes(ids: np.ndarray, segmenter: Segmenter, classes: str) -> np.ndarray:
    """Convert a segmenter's ids to the requested id space ("groups" or "ade20k")."""
    if classes not in ("groups", "ade20k"):
        raise TimefliesError(f"unknown classes '{classes}'; use groups or ade20k")
    if classes == segmenter.id_space:
        return ids
    if classes == "groups":
        return to_groups(ids)
    raise TimefliesError(f"the {segmenter.name} segmenter gives the 8 groups only; "
                         "use --classes groups or --segmenter mmseg")


def segment_photo(rgb: np.ndarray, segmenter: Segmenter, classes: str = "groups") -> np.ndarray:
    return to_classes(segmenter.segment_image(rgb), segmenter, classes)


def segment_reference(reader: "video.FrameReader", segmenter: Segmenter, classes: str = "groups") -> np.ndarray:
    return to_classes(segmenter.segment_video(iter(reader), reader.info.frames), segmenter, classes)


def segment(input: str | Path, output: str | Path, options: SegmentOptions | None = None) -> SegmentResult:
    """Segment a photo or a static-camera video (file or frame folder); write the map as PNG."""
    opts = options or SegmentOptions()
    start = time.perf_counter()
    output = Path(output)
    # Before any input is read: the outputs must not destroy an input or an existing file.
    outputs.check_outputs({"-o": output, "--preview": opts.preview},
                          {"input": input, "--checkpoint": opts.checkpoint, "--config": opts.config})
    outputs.check_file("-o", output, (".png",), opts.overwrite)
    if opts.preview:
        outputs.check_file("--preview", opts.preview, (".png",), opts.overwrite)
    if opts.format not in ("ids", "rgb"):
        raise TimefliesError(f"unknown format '{opts.format}'; use ids or rgb")
    if opts.format == "rgb" and opts.classes != "groups":
        raise TimefliesError("the RGB format holds the 8 groups only; use --classes groups with --format rgb")
    segmenter = resolve_segmenter(opts.segmenter, opts.config, opts.checkpoint, opts.device)
    photo = _open_photo(Path(input))
    if photo is not None:
        ids = segment_photo(photo, segmenter, opts.classes)
        backdrop = photo
    else:
        reader = video.FrameReader(input)
        ids = segment_reference(reader, segmenter, opts.classes)
        backdrop = representative_frame(reader) if opts.preview else None
    names = class_names(opts.classes)
    preview = None
    with removed_on_error() as written:  # a failed preview takes the label map with it
        labels.save_label_map(ids, output, format="groups" if opts.format == "rgb" else "ids")
        written.append(output)
        if opts.preview:
            preview = Path(opts.preview)
            sheet = labels.label_preview(ids, backdrop, names)
            if photo is not None:
                sheet = _with_matte(sheet, photo, ids, names)
            images.save_png(sheet, preview)
    present = [names[i] if i < len(names) else str(i) for i in np.unique(ids).tolist()]
    return SegmentResult(output, ids.shape[1], ids.shape[0], photo is None, segmenter.name, present,
                         time.perf_counter() - start, preview, segmenter.description)


def _with_matte(sheet: np.ndarray, photo: np.ndarray, ids: np.ndarray, names) -> np.ndarray:
    """The preview with the soft sky matte animate uses (white = sky) to the right of it."""
    import torch

    from .matte import sky_alpha

    sky = ids == names.index("sky")
    if not sky.any() or sky.all():
        return sheet
    image = torch.from_numpy(np.array(photo[:, :, :3], dtype=np.float32) / 255).permute(2, 0, 1)[None]
    alpha = sky_alpha(image, torch.from_numpy(sky)).numpy()
    matte = np.repeat((alpha * 255).round().astype(np.uint8)[:, :, None], 3, axis=2)
    return np.concatenate([sheet, matte], axis=1)


def class_names(classes: str) -> tuple[str, ...]:
    return labels.GROUP_NAMES if classes == "groups" else ("other",) + ADE20K_CLASSES


def representative_frame(reader: "video.FrameReader", samples: int = 9) -> np.ndarray:
    """Per-pixel median of up to `samples` evenly spaced frames: (H, W, 3) uint8."""
    picks = sample_indices(reader.info.frames, samples)
    frames = [f for t, f in enumerate(reader) if t in picks]
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def _open_photo(path: Path) -> np.ndarray | None:
    """The photo at `path`, or None if it is a video (a folder, a video file, an animated GIF)."""
    if path.is_dir():
        return None
    if not path.exists():
        raise InputError(f"input '{path}' not found; check the path")
    from PIL import Image

    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                return None  # animated GIF / WebP: a video
    except (OSError, ValueError):
        if path.suffix.lower() not in video.FRAME_EXTENSIONS:
            return None  # not an image Pillow knows: try it as a video
    return images.load_image(path)  # raises a photo error for a broken image file

