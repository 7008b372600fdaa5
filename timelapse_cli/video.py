"""Read reference videos (or folders of frames) and write result videos (or PNG folders).

Reading streams one RGB frame at a time, so memory does not grow with video length.
Writing goes through `atomic_path`, so a failed or interrupted run never leaves a
partial file under the final name.

Frames are numpy arrays of shape (H, W, 3), dtype uint8, RGB, C-contiguous.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import Interpolation
from PIL import Image

from .errors import InputError, TimefliesError
from .fsutil import atomic_path
from .images import open_image
from .outputs import frame_folder

# Deterministic RGB -> YUV conversion (see VideoWriter.write).
_BITEXACT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT

FRAME_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_FPS = Fraction(25)
# A frame rate outside this range is a container artefact (e.g. 1/time_base), not a real rate.
_MAX_FPS = 1000

# Output suffix -> (container format, codec). H.264 plays everywhere; VP9 in WebM is what
# web pages embed; an animated GIF is what chats and slides take.
_OUTPUT_FORMATS = {".mp4": ("mp4", "h264"), ".mov": ("mov", "h264"), ".mkv": ("matroska", "h264"),
                   ".webm": ("webm", "vp9"), ".gif": ("gif", "gif")}
VIDEO_SUFFIXES = tuple(_OUTPUT_FORMATS)
# H.264 levels 5.1 and 5.2, what 4K players and hardware decoders take, hold frames of up to
# 36,864 macroblocks of 16 x 16 (4096 x 2304); larger frames need level 6, which some refuse.
H264_MAX_MACROBLOCKS = 36_864
DEFAULT_CRF = {"h264": 18, "vp9": 31}  # visually lossless-ish for each; GIF has no such knob
_MAX_CRF = {"h264": 51, "vp9": 63}
_VIDEO_HINT = "give an mp4/mov/webm/avi/gif file or a folder of frames"


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int        # after applying rotation metadata
    height: int
    fps: Fraction     # exact frame rate; folders: the folder_fps given (25 by default)
    frames: int       # exact when the container says so, else counted packets


# ---------------------------------------------------------------- reading


def is_frame_folder(path: str | os.PathLike) -> bool:
    """True if `path` is a directory (to be read as a folder of numbered frames)."""
    return Path(path).is_dir()


def open_frames(path: str | os.PathLike, folder_fps: Fraction = DEFAULT_FPS) -> FrameReader:
    """Open a video file or a folder of frames; see FrameReader."""
    return FrameReader(path, folder_fps=folder_fps)


class FrameReader:
    """Streams RGB frames of a video file or a folder of frames; memory does not grow with length.

    Opening validates the input (raises InputError) and fills `info`. Iterating yields
    (H, W, 3) uint8 RGB arrays with rotation metadata applied; each iteration re-reads the
    input from the start. Problems that do not stop the run (a truncated file, a stray
    frame of another size) are described in `warnings`.
    """

    def __init__(self, path: str | os.PathLike, folder_fps: Fraction = DEFAULT_FPS) -> None:
        self._name = str(path)
        self.warnings: list[str] = []
        self._stopped_by_error = False
        path = Path(path)
        if not path.exists():
            raise InputError(f"reference '{self._name}' not found; check the path")
        if path.is_dir():
            self._files = _frame_files(path, self._name)
            self.info = self._folder_info(path, Fraction(folder_fps))
        else:
            self._files = None
            self.info = self._video_info(path)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            return self._iter_folder()
        return self._iter_video()

    def _warn(self, message: str) -> None:
        # Iterating twice must not repeat the same warning.
        message = f"{Path(self._name).name}: {message}"
        if message not in self.warnings:
            self.warnings.append(message)

    # --- folders

    def _folder_info(self, path: Path, fps: Fraction) -> VideoInfo:
        if fps <= 0:
            raise InputError(f"frame rate for folder '{self._name}' must be positive, got {fps}; "
                             f"give a positive frame rate")
        width, height = _load_image(self._files[0]).size
        return VideoInfo(path, width, height, fps, len(self._files))

    def _iter_folder(self) -> Iterator[np.ndarray]:
        size = (self.info.width, self.info.height)
        for file in self._files:
            image = _load_image(file)
            if image.size != size:
                # Time-lapse folders sometimes hold a stray frame of another size;
                # resizing keeps the run going, the warning says so.
                self._warn(f"frame '{file.name}' is {image.size[0]}x{image.size[1]}, "
                           f"resized to {size[0]}x{size[1]} like the first frame")
                image = image.resize(size, Image.BILINEAR)
            yield np.array(image)  # a writable copy, (H, W, 3) uint8

    # --- video files

    def _video_info(self, path: Path) -> VideoInfo:
        """Open the file once, decode its first frame to learn the displayed size."""
        with self._open(path) as container:
            stream = container.streams.video[0]
            first = next(self._decoded(container, stream), None)
            if first is None:
                raise InputError(f"reference '{self._name}' has no frames; "
                                 f"{_VIDEO_HINT}")
            width, height = first.width, first.height
            if _quarter_turns(first.rotation) % 2:
                width, height = height, width
            fps = _frame_rate(stream)
            frames = stream.frames if stream.frames > 0 else None
        if frames is None:
            frames = self._count_packets(path)
        return VideoInfo(path, width, height, fps, frames)

    def _open(self, path: Path) -> av.container.InputContainer:
        """av.open with user-facing errors; guarantees a video stream exists."""
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise InputError(f"reference '{self._name}' is not a readable video "
                             f"({reason}); {_VIDEO_HINT}") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"reference '{self._name}' has no video stream; {_VIDEO_HINT}")
        return container

    def _count_packets(self, path: Path) -> int:
        """Count the video stream's packets without decoding (for containers without a count)."""
        count = 0
        with self._open(path) as container:
            stream = container.streams.video[0]
            try:
                for packet in container.demux(stream):
                    # The demuxer ends with empty flush packets; they are not frames.
                    if packet.size:
                        count += 1
            except (av.FFmpegError, OSError):
                pass  # a damaged tail; decoding will report it
        return count

    def _iter_video(self) -> Iterator[np.ndarray]:
        with self._open(self.info.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first_size = None
            count = 0
            for frame in self._decoded(container, stream):
                if first_size is None:
                    first_size = (frame.width, frame.height)
                count += 1
                yield self._to_rgb(frame, first_size)  # no list: one frame alive at a time
        if self._stopped_by_error:
            self._warn(f"decoding stopped at frame {count} of {self.info.frames} "
                       f"(file truncated or corrupt); used the {count} readable frames")
        elif count < self.info.frames:
            self._warn(f"only {count} of the {self.info.frames} frames the file lists "
                       f"could be decoded (file truncated?); used those {count}")

    def _decoded(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decode the stream packet by packet; a damaged packet ends it (sets _stopped_by_error).

        Demuxing by hand (not container.decode) lets us drain the frames the decoder
        still holds when a truncated file breaks off, instead of losing them.
        """
        self._stopped_by_error = False
        packets = container.demux(stream)
        while True:
            try:
                frames = stream.decode(next(packets))  # the final empty packet drains it
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                self._stopped_by_error = True
                yield from self._drain(stream)
                return
            yield from frames

    @staticmethod
    def _drain(stream) -> list[av.VideoFrame]:
        """Frames still buffered in the decoder after an error (none if it fails again)."""
        try:
            return stream.decode(None)
        except (av.FFmpegError, OSError):
            return []

    def _to_rgb(self, frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
        """Decoded frame -> upright (H, W, 3) uint8 RGB, contiguous."""
        if (frame.width, frame.height) != size:
            # A mid-stream resolution change; keep every frame the size of the first.
            self._warn(f"frame size changed mid-stream to {frame.width}x{frame.height}; "
                       f"scaled back to {size[0]}x{size[1]}")
            rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
        else:
            rgb = frame.to_ndarray(format="rgb24")
        return np.ascontiguousarray(rotate_upright(rgb, frame.rotation))


def rotate_upright(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """Rotate an (H, W, C) frame as its display matrix says, so it shows upright.

    `rotation` is FFmpeg's display-matrix angle (VideoFrame.rotation): the frame must be
    turned counter-clockwise by that many degrees to display. np.rot90 also turns
    counter-clockwise, so k = rotation / 90. A phone video tagged "rotate=90" has
    rotation -90: stored landscape, turned clockwise to portrait.
    """
    k = _quarter_turns(rotation)
    return np.rot90(rgb, k) if k else rgb


def _quarter_turns(rotation: float | None) -> int:
    """Display rotation in degrees -> counter-clockwise quarter turns in 0..3."""
    return round((rotation or 0) / 90) % 4


def _frame_rate(stream) -> Fraction:
    """Best exact frame rate of a video stream, as a positive Fraction."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < rate <= _MAX_FPS:
            return Fraction(rate)
    # Derive from duration and frame count when the container gives no rate.
    if stream.duration and stream.time_base and stream.frames > 0:
        seconds = stream.duration * stream.time_base
        rate = Fraction(stream.frames) / seconds
        if 0 < rate <= _MAX_FPS:
            return rate.limit_denominator(1001)
    return DEFAULT_FPS


def _frame_files(folder: Path, name: str) -> list[Path]:
    """Image files in `folder`, in natural order (2.png before 10.png).

    Hidden files are skipped, and so are label maps kept beside the frames of a sequence
    (`segmentation.png`, `*mask*`, `*_seg.*`): they are not frames.
    """
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".") and p.is_file()
             and not _is_label_map_name(p)]
    if not files:
        extensions = " ".join(sorted(FRAME_EXTENSIONS))
        raise InputError(f"reference folder '{name}' has no image frames ({extensions}); "
                         f"put numbered frames in it or give a video file")
    return sorted(files, key=_natural_key)


def _is_label_map_name(path: Path) -> bool:
    stem = path.stem.lower()
    return stem == "segmentation" or "mask" in stem or stem.endswith("_seg")


def _natural_key(path: Path) -> list:
    # re.split with a group alternates text and digits, so the lists compare type by type.
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(part) if part.isdigit() else part for part in parts]


def _load_image(file: Path) -> Image.Image:
    """Load one frame file as an upright RGB Pillow image; InputError names a bad file."""
    return open_image(file, what="frame", hint="replace or remove it").convert("RGB")


# ---------------------------------------------------------------- writing


def is_frame_folder_output(path: str | os.PathLike) -> bool:
    """True if output should be a folder of PNGs: a trailing separator, no suffix, or a dir."""
    text = os.fspath(path)
    return (text.endswith(("/", os.sep)) or not Path(text).suffix or Path(text).is_dir())


class VideoWriter:
    """Context manager. `with VideoWriter(out, fps) as w: w.write(frame)`

    Writes H.264 (yuv420p) to .mp4/.mov/.mkv, VP9 (yuv420p) to .webm, an animated GIF that
    loops forever to .gif, or numbered PNGs (00000.png, ...) when `is_frame_folder_output(path)`
    (into an existing folder, replacing only the frames timeflies wrote there; see
    outputs.frame_folder). yuv420p needs even dimensions, so odd-sized frames are padded by
    repeating their last row/column; `size` is the (width, height) actually written. A GIF's
    frame delay is whole centiseconds, so `fps` becomes the rate of the nearest delay
    (25 -> 4 cs = 25 fps, 30 -> 3 cs = 33.3 fps). Output is byte-identical for identical
    frames on the same machine (bitexact muxing; the encoders are deterministic for a fixed
    thread count). On an exception inside the `with` block nothing is left at `path`.
    """

    def __init__(self, path: str | os.PathLike, fps: Fraction, crf: int | None = None) -> None:
        self.path = Path(path)
        self.to_folder = is_frame_folder_output(path)
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) as written
        self._input_shape: tuple[int, ...] | None = None
        self._container = None
        self._stream = None
        if Fraction(fps) <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not self.to_folder and self.path.suffix.lower() not in _OUTPUT_FORMATS:
            raise InputError(f"output '{path}' has unsupported extension '{self.path.suffix}'; "
                             f"use .mp4 (or .mov, .mkv, .webm, .gif, or a folder path ending in / for PNGs)")
        self.format, self.codec = ("png", "png") if self.to_folder else _OUTPUT_FORMATS[self.path.suffix.lower()]
        self.fps = gif_rate(fps) if self.codec == "gif" else Fraction(fps)  # the rate written
        self.crf = int(DEFAULT_CRF.get(self.codec, 0) if crf is None else crf)
        check_crf(self.codec, crf)

    @property
    def warning(self) -> str | None:
        """What a player may make of the file as written, or None: an H.264 frame past
        level 5.2's size (after the first frame)."""
        if self.codec != "h264" or self.size is None:
            return None
        w, h = self.size
        if -(-w // 16) * -(-h // 16) <= H264_MAX_MACROBLOCKS:
            return None
        return (f"a {w}x{h} H.264 frame needs level 6, which some hardware players refuse; "
                f"--size 3840 or a 16:9 frame of 4096 px keeps it within level 5.1")

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        # A frame folder goes through outputs.frame_folder: it replaces only frames it wrote.
        self._tmp = self._stack.enter_context(frame_folder(self.path) if self.to_folder else atomic_path(self.path))
        # Exit callbacks run last-pushed first: the container is closed, then what it
        # wrote is read back, then the temp output is renamed (success) or deleted.
        self._stack.push(self._verify)
        self._stack.push(self._close)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            with self._stack:  # an error while flushing also removes the temp output
                self._flush()
            return False
        return self._stack.__exit__(exc_type, exc, tb)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame; all frames must have the first one's size."""
        self._check(frame)
        if self.to_folder:
            path = self._tmp / f"{self.frames_written:05d}.png"
            Image.fromarray(np.ascontiguousarray(frame)).save(path)
            self.size = (frame.shape[1], frame.shape[0])
        else:
            if self.codec != "gif":
                frame = _pad_even(frame)
            if self._container is None:
                self._open_video(width=frame.shape[1], height=frame.shape[0])
            if self.codec == "gif":
                video_frame = av.VideoFrame.from_ndarray(palette_image(frame), format="pal8")
            else:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                # Converted here, not inside the encoder, so its settings are ours: one
                # thread, bit-exact, whatever the machine's load or SIMD paths (about 2 ms
                # more per 4K frame). The stream's own pix_fmt (set in _open_video) is the
                # one place that names the format.
                video_frame = video_frame.reformat(format=self._stream.pix_fmt,
                                                   interpolation=_BITEXACT, threads=1)
            video_frame.pts = self.frames_written  # time_base is 1/fps
            self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def _check(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be HxWx3 uint8 RGB, got shape {frame.shape} "
                             f"dtype {frame.dtype}")
        if self._input_shape is None:
            self._input_shape = frame.shape
        elif frame.shape != self._input_shape:
            raise ValueError(f"frame {self.frames_written} has shape {frame.shape}, "
                             f"the first had {self._input_shape}")

    def _open_video(self, width: int, height: int) -> None:
        options = {"fflags": "+bitexact"}  # no encoder string / random ids in the file
        if self.format in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # index at the front so the file streams
        if self.format == "gif":
            options["loop"] = "0"  # loop forever
        self._container = av.open(str(self._tmp), "w", format=self.format, options=options)
        if self.codec == "h264":
            stream = self._container.add_stream("libx264", rate=self.fps, options={
                "crf": str(self.crf), "preset": "medium",
                # Same frames, same bytes: with macroblock-tree rate control on, a loaded
                # machine now and then encoded them up to 3 levels apart (about 1 run in 3
                # of tests/test_video.py's check under load, none of 45 with it off); off
                # costs 0.45 dB against the input at crf 18 (37.69 -> 37.24, same size).
                # Without it x264 keeps no rate-control lookahead (40 frames in preset
                # medium, 30 MB each at 4K).
                "x264-params": "mbtree=0"})
        elif self.codec == "vp9":
            # Constant quality (crf with b:v 0); cpu-used 4 with row threads keeps it near
            # H.264's speed, at a quality still far above the generator's own noise.
            stream = self._container.add_stream("libvpx-vp9", rate=self.fps, options={
                "crf": str(self.crf), "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"})
        else:
            stream = self._container.add_stream("gif", rate=self.fps)
        stream.width, stream.height = width, height
        stream.time_base = 1 / self.fps
        if self.codec == "gif":
            stream.pix_fmt = "pal8"
        else:
            stream.pix_fmt = "yuv420p"
            # The RGB->YUV conversion uses BT.601; say so, or players guess BT.709 for HD sizes.
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = 6  # SMPTE170M
            context.color_range = 1  # limited ("tv") range
        self._stream = stream
        self.size = (width, height)

    def _flush(self) -> None:
        if self.frames_written == 0:
            raise ValueError(f"no frames were written to '{self.path}'")
        if self._container is not None:
            self._container.mux(self._stream.encode(None))  # drain delayed frames

    def _verify(self, exc_type, exc, tb) -> bool:
        """Exit callback: on success, the output must read back as the frames written (a
        muxer can accept frames and still write a file players see as empty); if not, the
        error discards it."""
        if exc_type is None:
            check_readback(self._tmp, self.frames_written, self.path, self.to_folder)
        return False

    def _close(self, exc_type, exc, tb) -> bool:
        """Exit callback: close the container; on error, quietly (the file is discarded)."""
        container, self._container = self._container, None
        if container is not None:
            if exc_type is None:
                container.close()
            else:
                with contextlib.suppress(Exception):
                    container.close()
        return False


def check_readback(written: Path, frames: int, name: Path, folder: bool) -> None:
    """TimefliesError unless `written` (a video file, or a folder of PNG frames) holds
    `frames` decodable frames; `name` is the output as the user gave it."""
    if folder:
        found = sum(1 for p in written.iterdir() if p.suffix == ".png")
    else:
        try:
            with av.open(str(written)) as container:
                found = sum(1 for _ in container.decode(container.streams.video[0]))
        except (av.FFmpegError, OSError, IndexError):
            found = 0
    if found != frames:
        raise TimefliesError(f"'{name}' read back as {found} of the {frames} frames written, so it was not "
                             "kept; try another --fps or output format")


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad (H, W, 3) to even H and W by repeating the last row/column (yuv420p needs it)."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def output_codec(path: str | os.PathLike) -> str:
    """"h264", "vp9", "gif" or "png" (a frame folder): what VideoWriter writes to `path`."""
    if is_frame_folder_output(path):
        return "png"
    return _OUTPUT_FORMATS.get(Path(path).suffix.lower(), ("", ""))[1]


def check_crf(codec: str, crf: int | None) -> None:
    """InputError unless `crf` is None or in the codec's range (only H.264 and VP9 take one)."""
    if crf is not None and codec in _MAX_CRF and not 0 <= crf <= _MAX_CRF[codec]:
        raise InputError(f"--crf {crf} is out of range for {codec.upper()}; give 0..{_MAX_CRF[codec]} "
                         f"(default {DEFAULT_CRF[codec]})")


def gif_rate(fps: Fraction) -> Fraction:
    """The frame rate a GIF can hold nearest to `fps`: 100 / its delay in whole centiseconds.

    Delays under 2 cs are played as 10 cs by browsers, so 2 cs (50 fps) is the fastest;
    the delay field holds 16 bits, so 65535 cs (about 11 minutes a frame) is the slowest.
    """
    delay = min(65535, max(2, round(100 / Fraction(fps))))
    return Fraction(100, delay)


def palette_image(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB -> ((H, W) uint8 indices, (256, 4) uint8 ARGB palette) for a GIF frame.

    Each frame gets its own 256-colour palette (median cut with Floyd-Steinberg dithering),
    since a time-lapse's colours change from day to night; the GIF encoder writes it as the
    frame's local colour table.
    """
    image = Image.fromarray(np.ascontiguousarray(frame)).quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    rgb = np.zeros((256, 3), np.uint8)
    used = np.array(image.getpalette()[:768], np.uint8).reshape(-1, 3)
    rgb[:len(used)] = used
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
    return np.array(image), argb
