"""Photo + reference time-lapse -> video: the `timeflies animate` pipeline.

Data flow (shapes for an H x W photo and h x w reference frames):
  photo --load/resize--> (1, 3, H, W) --E_GI + D_G head, once--> ImageCache
  reference --stream--> frames (h, w) --3-frame windows--> (B, 9, h, w)
  ImageCache + windows + noise z (B, 1, H, W) --D_G tail--> (B, 3, H, W) --mux--> video

N reference frames give N output frames: the window of frame t is (F_t-2, F_t-1, F_t),
with the first frame repeated at the start (the reference code's causal window).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import images, labels, video
from .errors import InputError, TimefliesError
from .model import Generator, noise_frames
from .segmentation.base import sample_indices
from .runtime import release_memory, resolve_device, tune_allocator
from .weights import from_pretrained

CHANNELS_LAST = torch.channels_last
ProgressFn = Callable[[int, int], None]  # (frames done, frames total)


@dataclass
class AnimateOptions:
    size: int | tuple[int, int] | None = None  # output long side, or (w, h); None = photo's own
    max_size: int | None = 1024                # cap on the output's long side
    ref_size: int | None = 256                 # cap on the reference frames' long side
    image_seg: str | Path | None = None        # label map of the photo
    video_seg: str | Path | None = None        # label map of the reference (static camera)
    segmenter: str = "auto"                    # without label maps: auto, mmseg, builtin or none
    seg_config: str | None = None              # mmseg config (path or bundled name)
    seg_checkpoint: str | None = None          # mmseg checkpoint
    fps: Fraction | None = None                # output rate; default the reference's
    frames: int | None = None                  # output frame count; default the reference's
    folder_fps: Fraction = Fraction(25)        # rate of a reference given as a frame folder
    seed: int = 0
    batch: int = 4                             # windows decoded together
    crf: int = 18
    preview: str | Path | None = None          # contact sheet PNG of some frames
    naive: bool = False                        # run the whole generator per frame (slow)


@dataclass
class AnimateResult:
    output: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    seconds: float             # wall time of the whole call
    generate_seconds: float    # time spent in the generator (image encoding included)
    device: str
    classes: int
    labels_from: str           # "label maps", "<name> segmenter" or "none"
    preview: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def generate_fps(self) -> float:
        return self.frames / self.generate_seconds if self.generate_seconds > 0 else float("inf")


class Animator:
    """Keeps a loaded generator so that many photos can be animated without reloading."""

    def __init__(self, weights: str | Path | None = None, device: str | None = "auto",
                 model: Generator | None = None) -> None:
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            tune_allocator()
        # channels_last: oneDNN's convolutions run ~25% faster on it than on NCHW.
        self.model = (model or from_pretrained(weights)).to(self.device, memory_format=CHANNELS_LAST).eval()

    def animate(self, image: str | Path, reference: str | Path, output: str | Path,
                options: AnimateOptions | None = None, progress: ProgressFn | None = None) -> AnimateResult:
        opts = options or AnimateOptions()
        start = time.perf_counter()
        target = _check_output(output, opts)  # kept as given: a trailing '/' means PNG folder
        output = Path(output)
        photo_path = Path(image)
        photo = images.load_image(photo_path)
        out_w, out_h = images.fit_size(photo.shape[1], photo.shape[0], opts.size, opts.max_size)
        photo = images.resize_image(photo, (out_w, out_h))
        reader = video.FrameReader(reference, folder_fps=opts.folder_fps)
        info = reader.info
        ref_w, ref_h = images.fit_size(info.width, info.height, None, opts.ref_size)
        img_ids, ref_ids, k, labels_from = _label_maps(opts, photo, photo_path, reader, (ref_w, ref_h),
                                                     str(self.device))
        release_memory()  # the segmenter's buffers are done with

        n_out = opts.frames or info.frames
        sources = _source_indices(n_out, info.frames)
        fps = opts.fps or info.fps
        sheet_at = sample_indices(n_out, 8)
        sheet: list[tuple[int, np.ndarray]] = []
        run = _Run(self.model, self.device, opts, img_ids, ref_ids, k)

        with torch.inference_mode(), video.VideoWriter(target, fps, crf=opts.crf) as writer:
            t0 = time.perf_counter()
            run.prepare(photo)
            run.seconds += time.perf_counter() - t0
            done = 0
            for batch_start, windows in _batched(_windows(reader, sources, (ref_w, ref_h)), opts.batch):
                for frame in run.generate(windows, batch_start):
                    writer.write(frame)
                    if done in sheet_at:
                        sheet.append((done, frame))
                    done += 1
                if progress:
                    progress(done, n_out)
            if done == 0:
                raise InputError(f"reference '{reference}' has no readable frames; give another video")

        warnings = list(reader.warnings)
        if done < n_out:
            warnings.append(f"wrote {done} of {n_out} frames: the reference ended early")
        preview = None
        if opts.preview:
            preview = Path(opts.preview)
            tiles = [f for _, f in sheet]
            images.save_png(images.contact_sheet(tiles, labels=[f"frame {i}" for i, _ in sheet]), preview)
        return AnimateResult(output, done, out_w, out_h, fps, time.perf_counter() - start, run.seconds,
                             str(self.device), k, labels_from, preview, warnings)


def animate(image: str | Path, reference: str | Path, output: str | Path, *,
            weights: str | Path | None = None, device: str | None = "auto",
            progress: ProgressFn | None = None, **options) -> AnimateResult:
    """One-call API: `animate("photo.jpg", "ref.mp4", "out.mp4", size=512, seed=1)`."""
    return Animator(weights, device).animate(image, reference, output, AnimateOptions(**options), progress)


class _Run:
    """Per-call generator state: the image cache and the tensors every batch shares."""

    def __init__(self, model: Generator, device: torch.device, opts: AnimateOptions,
                 img_ids: np.ndarray, ref_ids: np.ndarray, k: int) -> None:
        self.model, self.device, self.opts, self.k = model, device, opts, k
        self.img_labels = torch.from_numpy(img_ids).to(device)
        self.ref_labels = torch.from_numpy(ref_ids).to(device)
        self.seconds = 0.0

    def prepare(self, photo: np.ndarray) -> None:
        self.image = _to_tensor(photo).to(self.device, memory_format=CHANNELS_LAST)  # (1, 3, H, W)
        if not self.opts.naive:
            self.cache = self.model.encode_image(self.image, self.img_labels, self.k)

    def generate(self, windows: torch.Tensor, first: int) -> Iterator[np.ndarray]:
        """windows (B, 9, h, w) for output frames first .. first+B-1 -> B uint8 frames."""
        t0 = time.perf_counter()
        b = windows.shape[0]
        h, w = self.image.shape[-2:]
        z = noise_frames(self.opts.seed, first, b, (h, w), self.model.config.noise_sigma).to(self.device)
        windows = windows.to(self.device, memory_format=CHANNELS_LAST)
        if self.opts.naive:
            out = self.model(self.image.expand(b, -1, -1, -1), self.img_labels, windows,
                             self.ref_labels, self.k, z)
        else:
            out = self.model.decode(self.cache, windows, self.ref_labels, z)
        frames = (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        self.seconds += time.perf_counter() - t0
        yield from frames


def _check_output(output: str | Path, opts: AnimateOptions) -> str | Path:
    if not video.is_frame_folder_output(output) and Path(output).suffix.lower() not in video.VIDEO_SUFFIXES:
        raise InputError(f"output '{output}' has an unknown extension; use .mp4, .mov, .mkv "
                         "or a folder path ending in '/' for PNG frames")
    if opts.frames is not None and opts.frames < 1:
        raise TimefliesError("--frames must be at least 1")
    if opts.batch < 1:
        raise TimefliesError("--batch must be at least 1")
    return output


def _label_maps(opts: AnimateOptions, photo: np.ndarray, photo_path: Path, reader: "video.FrameReader",
                ref_size: tuple[int, int], device: str) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(H, W) and (h, w) int64 id maps on a shared 0..K-1, K, and where they came from.

    From --image-seg/--video-seg files when given, else from a segmenter run on the photo
    and the reference (the same one for both), else (segmenter "none") one class.
    """
    size = (photo.shape[1], photo.shape[0])
    if opts.image_seg is not None or opts.video_seg is not None:
        if opts.image_seg is None or opts.video_seg is None:
            raise TimefliesError("give both --image-seg and --video-seg (classes are matched between them)")
        img = labels.load_label_map(opts.image_seg)
        ref_map = labels.load_label_map(opts.video_seg)
        if img.format != ref_map.format:
            raise InputError(f"label maps '{opts.image_seg}' ({img.format}) and '{opts.video_seg}' "
                             f"({ref_map.format}) use different formats; give both in one format")
        img_ids, ref_ids, source = img.ids, ref_map.ids, "label maps"
    elif opts.segmenter == "none":
        return np.zeros(size[::-1], np.int64), np.zeros(ref_size[::-1], np.int64), 1, "none"
    else:
        from .segment import resolve_segmenter, segment_photo, segment_reference

        segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, device)
        img_ids, ref_ids = segment_photo(photo, segmenter), segment_reference(reader, segmenter)
        source = f"{segmenter.name} segmenter"
    img_ids = labels.fit_label_map(img_ids, size, str(opts.image_seg or "segmentation"), str(photo_path))
    ref_ids = labels.fit_label_map(ref_ids, ref_size, str(opts.video_seg or "segmentation"), str(reader.info.path))
    (img_ids, ref_ids), k = labels.unify_ids(img_ids, ref_ids)
    return img_ids, ref_ids, k, source


def _source_indices(n_out: int, n_ref: int) -> list[int]:
    """The reference frame each output frame is driven by: the identity when n_out == n_ref,
    else reference time resampled evenly (nearest frame)."""
    if n_out == n_ref:
        return list(range(n_ref))
    if n_out == 1:
        return [0]
    return np.rint(np.linspace(0, n_ref - 1, n_out)).astype(int).tolist()


def _to_tensor(frame: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(frame, dtype=np.float32)).div_(255).permute(2, 0, 1)[None]


def _windows(reader: "video.FrameReader", sources: list[int], size: tuple[int, int]) -> Iterator[torch.Tensor]:
    """Stream (9, h, w) windows (F_t-2, F_t-1, F_t) for each output frame's source t.

    Keeps only the last three frames, so memory does not grow with the video's length.
    """
    wanted = iter(sources)
    target = next(wanted, None)
    recent: list[torch.Tensor] = []
    for t, frame in enumerate(reader):
        if target is None:
            break
        recent = (recent + [_to_tensor(images.resize_image(frame, size))[0]])[-3:]
        while target == t:
            padded = [recent[0]] * (3 - len(recent)) + recent  # repeat frame 1 at the start
            yield torch.cat(padded, 0)
            target = next(wanted, None)


def _batched(windows: Iterator[torch.Tensor], batch: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Group windows into (index of the first, (B, 9, h, w)) batches."""
    chunk: list[torch.Tensor] = []
    first = 0
    for w in windows:
        chunk.append(w)
        if len(chunk) == batch:
            yield first, torch.stack(chunk)
            first += len(chunk)
            chunk = []
    if chunk:
        yield first, torch.stack(chunk)
