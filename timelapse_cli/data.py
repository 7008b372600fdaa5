"""Training data: static-camera time-lapse sequences, one per frame folder or video file.

A data folder holds one sub-folder of numbered frames, or one video file, per sequence.
A frame folder may also hold a label map named `segmentation.png` (any format `animate`
accepts, see labels.py); label maps and masks kept beside the frames are not frames.

`scan_sequences` checks every sequence before training starts, so a bad frame or a sequence
too short for the clip length stops the run at once with one message naming it. Training
then draws clips with `clip_start` and reads them with `load_frames` / `load_labels`.

Shapes: frames are (count, 3, h, w) float32 tensors in [0, 1]; labels are (h, w) int64 arrays.
Sizes are (width, height) throughout, as in images.py.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import InputError, TimefliesError
from .images import fit_size, resize_image
from .labels import fit_label_map, load_label_map, resize_ids, save_label_map
from .video import FrameReader, _frame_files, _load_image, _natural_key

LABEL_FILE = "segmentation.png"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif")
_LAYOUT_HINT = ("put one folder of numbered frames (or one video file: "
                + "/".join(e[1:] for e in VIDEO_EXTENSIONS) + ") per time-lapse in it")


@dataclass(frozen=True)
class Sequence:
    """One time-lapse: a folder of frames or a video file, with its native size."""

    name: str                # folder or file name
    path: Path               # a frame folder or a video file
    frames: int              # number of frames
    width: int               # native size of the (upright) frames
    height: int
    label_path: Path | None  # <folder>/segmentation.png when present (folders only)
    # Frame files of a folder in natural order, as found by scan_sequences (empty for
    # videos, or when the Sequence was built by hand: then load_frames lists the folder).
    files: tuple[Path, ...] = field(default=(), repr=False, compare=False)


# ---------------------------------------------------------------- scanning


def scan_sequences(data_dir: str | os.PathLike, clip: int, exclude=()) -> list[Sequence]:
    """Every sequence in `data_dir` but those matching an `exclude` pattern, checked, sorted
    by name (natural order: clip2 < clip10), each long enough for a training clip (clip + 2
    frames); see find_sequences."""
    clip = _positive_clip(clip)
    return find_sequences(data_dir, clip + 2, f"--clip {clip} needs at least {clip + 2}: "
                                              "lower --clip or drop it", exclude=exclude)


def find_sequences(data_dir: str | os.PathLike, min_frames: int, too_short: str,
                   pattern: str = "*", exclude=()) -> list[Sequence]:
    """Every sequence in `data_dir` whose name matches `pattern` (comma-separated patterns:
    any of them) and no `exclude` pattern, checked, sorted by name.

    Sequences are the sub-folders of frames and the video files (mp4, mov, mkv, webm, avi,
    gif) directly in `data_dir`; hidden entries and other files are ignored. Raises one
    InputError naming the sequence and the fix for the first problem found: `data_dir`
    missing or holding no (matching) sequences, a folder without frames, a frame file that
    cannot be decoded, a video that cannot be opened, a sequence of fewer than `min_frames`
    frames (the message ends with `too_short`), or a label map that is unreadable or of
    another aspect ratio than the frames. Video files are opened and their first frame
    decoded, not decoded in full.
    """
    root = Path(data_dir)
    if not root.exists():
        raise InputError(f"data folder '{root}' not found; check the path")
    if not root.is_dir():
        raise InputError(f"data folder '{root}' is a file, not a folder; {_LAYOUT_HINT}")
    entries = sorted((p for p in root.iterdir() if not p.name.startswith(".")
                      and any(fnmatch.fnmatch(p.name, x) for x in pattern.split(","))
                      and not any(fnmatch.fnmatch(p.name, x) for x in exclude)
                      and (p.is_dir() or (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS))),
                     key=_natural_key)
    if not entries:
        which = "no sequences" if pattern == "*" else f"no sequences matching '{pattern}'"
        raise InputError(f"data folder '{root}' holds {which}; {_LAYOUT_HINT}")
    sequences = []
    for path in entries:
        seq = _scan_folder(path) if path.is_dir() else _scan_video(path)
        if seq.frames < min_frames:
            raise InputError(f"sequence '{seq.name}' has {seq.frames} frames; {too_short}")
        sequences.append(seq)
    return sequences


def _scan_folder(folder: Path) -> Sequence:
    name = folder.name
    try:
        files = _frame_files(folder, name)
    except InputError:
        raise InputError(f"sequence '{name}' ({folder}) has no image frames; put its numbered "
                         "frames in it or remove the folder") from None
    for file in files:
        _check_frame(file, name)
    try:
        first = _load_image(files[0])  # decoded and EXIF-oriented, like FrameReader
    except InputError as e:
        raise InputError(f"sequence '{name}': {e}") from None
    width, height = first.size
    label = folder / LABEL_FILE
    label_path = label if label.is_file() else None
    if label_path is not None:
        _check_label_map(label_path, name, width, height)
    return Sequence(name, folder, len(files), width, height, label_path, tuple(files))


def _check_frame(file: Path, name: str) -> None:
    """Decode one frame file (JPEGs at 1/8 scale: all the data is read, little is computed)."""
    try:
        with Image.open(file) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except UnidentifiedImageError:
        reason = "is not an image Pillow can read"
    except Image.DecompressionBombError:
        reason = "is too large to decode safely"
    except PermissionError as e:
        reason = f"cannot be read ({e.strerror})"
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        reason = f"cannot be decoded ({text})"
    else:
        return
    raise InputError(f"sequence '{name}': frame '{file.name}' {reason}; "
                     "replace or remove the file")


def _check_label_map(path: Path, name: str, width: int, height: int) -> None:
    try:
        ids = load_label_map(path).ids
    except InputError as e:
        raise InputError(f"sequence '{name}': {e}") from None
    try:
        fit_label_map(ids, (width, height), str(path), name)
    except InputError:
        h_map, w_map = ids.shape
        raise InputError(f"sequence '{name}': label map '{path.name}' is {w_map}x{h_map} but its "
                         f"frames are {width}x{height} (aspect ratios differ); give a label map "
                         "of the frames' shape or remove it") from None


def _scan_video(path: Path) -> Sequence:
    try:
        info = FrameReader(path).info
    except InputError as e:
        raise InputError(f"sequence '{path.name}': {e}") from None
    return Sequence(path.name, path, info.frames, info.width, info.height, None)


def _positive_clip(clip) -> int:
    if isinstance(clip, bool) or not isinstance(clip, (int, np.integer)) or clip < 1:
        raise TimefliesError(f"--clip must be a positive whole number of frames, got {clip!r}; "
                             "pass e.g. 64")
    return int(clip)


# ---------------------------------------------------------------- sampling and loading


def clip_start(seq: Sequence, clip: int, rng: np.random.Generator) -> int:
    """Random first frame s of a clip: frames s .. s + clip + 1 exist (the clip plus the 2
    earlier frames the first windows need), i.e. s is uniform in [0, frames - clip - 2]."""
    last = seq.frames - int(clip) - 2
    if clip < 1 or last < 0:
        raise ValueError(f"sequence '{seq.name}' has {seq.frames} frames, too few for a clip "
                         f"of {clip} (needs {clip + 2})")
    return int(rng.integers(0, last, endpoint=True))


def load_frames(seq: Sequence, start: int, count: int, size: tuple[int, int]) -> torch.Tensor:
    """Frames start .. start + count - 1 resized to size=(w, h): (count, 3, h, w) float32 in [0, 1].

    Folders open only the needed files; videos are decoded from the start up to the last
    needed frame (no seeking, so every frame is exact). InputError if a frame cannot be read.
    """
    width, height = size
    if start < 0 or count < 1 or start + count > seq.frames:
        raise ValueError(f"frames {start}..{start + count - 1} are outside sequence "
                         f"'{seq.name}' (frames 0..{seq.frames - 1})")
    if seq.path.is_dir():
        frames = [_resized(np.asarray(_read_frame(file, seq.name)), size)
                  for file in _folder_files(seq)[start:start + count]]
    else:
        frames = _video_frames(seq, start, count, size)
    batch = np.stack(frames)  # (count, h, w, 3) uint8
    assert batch.shape == (count, height, width, 3), batch.shape
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _folder_files(seq: Sequence) -> tuple[Path, ...]:
    if seq.files:
        return seq.files
    try:
        return tuple(_frame_files(seq.path, seq.name))
    except InputError:
        raise InputError(f"sequence '{seq.name}' ({seq.path}) has no image frames any more; "
                         "restore its frames or remove the folder") from None


def _read_frame(file: Path, name: str) -> Image.Image:
    try:
        return _load_image(file)
    except InputError as e:
        raise InputError(f"sequence '{name}': {e}") from None


def _video_frames(seq: Sequence, start: int, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    try:
        reader = FrameReader(seq.path)
    except InputError as e:
        raise InputError(f"sequence '{seq.name}': {e}") from None
    frames = []
    stream = iter(reader)
    try:
        for index, frame in enumerate(stream):
            if index >= start:
                frames.append(_resized(frame, size))
                if len(frames) == count:
                    break
    finally:
        stream.close()  # closes the container without decoding the rest
    if len(frames) < count:
        raise InputError(f"sequence '{seq.name}': only {start + len(frames)} of its "
                         f"{seq.frames} frames could be decoded (file truncated?); "
                         "re-encode or remove the video")
    return frames


def _resized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return frame if frame.shape[:2] == (height, width) else resize_image(frame, size)


def load_labels(seq: Sequence, size: tuple[int, int]) -> np.ndarray:
    """The sequence's label map at size=(w, h) by nearest neighbour: (h, w) int64 ids as stored.

    The map is resized as the frames are, to `size` whatever its aspect ratio (the map's
    own aspect is checked against the frames'). All zeros (a single class) when the
    sequence has no label map.
    """
    width, height = size
    if seq.label_path is None:
        return np.zeros((height, width), dtype=np.int64)
    try:
        ids = fit_label_map(load_label_map(seq.label_path).ids, (seq.width, seq.height),
                            str(seq.label_path), seq.name)
    except InputError as e:
        raise InputError(f"sequence '{seq.name}': {e}") from None
    return resize_ids(ids, size)


def frame_size(seq: Sequence, size: int | tuple[int, int]) -> tuple[int, int]:
    """Training size of `seq`'s frames: `size` (w, h) as given, or a long side (aspect kept)."""
    return tuple(size) if isinstance(size, (tuple, list)) else fit_size(seq.width, seq.height, None, size)


def scene_labels(seq: Sequence, frames: list[np.ndarray], size: tuple[int, int], segmenter) -> tuple[np.ndarray, str]:
    """The scene's label map at size=(w, h) and where it came from: the folder's
    segmentation.png if it has one, else `segmenter`'s vote over `frames` ((h, w, 3) uint8
    at `size`), else (segmenter None) one class."""
    if seq.label_path is not None:
        return load_labels(seq, size), seq.label_path.name
    if segmenter is None:
        return np.zeros(size[::-1], np.int64), "none"
    from .segment import to_classes

    ids = to_classes(segmenter.segment_video(iter(frames), len(frames)), segmenter, "groups")
    return fit_label_map(ids, size, "segmentation", seq.name), segmenter.description


def with_label_maps(sequences: list[Sequence], folder: Path, segmenter, long_side: int = 256) -> list[Sequence]:
    """The sequences, each with a label map: those without one get the map `benchmark
    --eval` makes for them (`segmenter` over all frames at `long_side`), saved once as
    folder/<name>.png and reused on later calls (a resumed run)."""
    out = []
    for seq in sequences:
        if seq.label_path is None:
            path = folder / f"{seq.name}.png"
            if not path.is_file():
                size = fit_size(seq.width, seq.height, None, long_side)
                frames = list((load_frames(seq, 0, seq.frames, size) * 255).round().byte()
                              .permute(0, 2, 3, 1).numpy())
                ids, _ = scene_labels(seq, frames, size, segmenter)
                save_label_map(ids, path)
            seq = dataclasses.replace(seq, label_path=path)
        out.append(seq)
    return out


def matching(sequences: list[Sequence], patterns) -> list[Sequence]:
    """The sequences whose name matches any of the glob `patterns`."""
    return [s for s in sequences if any(fnmatch.fnmatch(s.name, p) for p in patterns)]


TIMESTAMPS = "timestamps.txt"  # per frame: "YYYYMMDD_HHMMSS UTC day|night" (the AMOS webcams)


def day_night(seq: Sequence) -> list[str] | None:
    """The day/night label of each frame of `seq` from its folder's timestamps.txt
    ("day" or "night", in frame order), or None when it has none."""
    path = seq.path / TIMESTAMPS
    if not path.is_file():
        return None
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    found = [parts[-1].lower() for parts in lines]
    if len(found) != seq.frames or any(x not in ("day", "night") for x in found):
        raise InputError(f"sequence '{seq.name}': {path} must hold one line 'YYYYMMDD_HHMMSS UTC day|night' "
                         f"per frame ({seq.frames}), got {len(lines)} lines; fix or remove it")
    return found



# ---------------------------------------------------------------- options


def parse_size(value: int | str | tuple[int, int]) -> int | tuple[int, int]:
    """Training size: 256 or "256" -> 256 (the long side, aspect kept); "320x192" or
    (320, 192) -> (320, 192) (every frame resized to it)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        parts = list(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        parts = [value]
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*([xX×]\s*\d+\s*)?", value):
        parts = [int(p) for p in re.split(r"[xX×]", value)]
    else:
        parts = None
    if (parts is None or any(isinstance(p, bool) or not isinstance(p, (int, np.integer))
                             or p < 1 for p in parts)):
        raise TimefliesError(f"--size must be a long side like 256 or WIDTHxHEIGHT like 320x192, "
                             f"got {value!r}; pass e.g. 256")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
