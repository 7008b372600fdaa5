"""Photo + reference time-lapse -> video: the `timeflies animate` pipeline.

Data flow (shapes for an H x W photo and h x w reference frames):
  photo --load/resize--> (1, 3, H, W) --E_GI + D_G head, once--> ImageCache
  reference --stream--> frames (h, w) --3-frame windows--> (B, 9, h, w)
  ImageCache + windows + noise z (B, 1, H, W) --D_G tail--> (B, 3, H, W) --mux--> video

N reference frames give N output frames: the window of frame t is (F_t-2, F_t-1, F_t),
with the first frame repeated at the start (the reference code's causal window).
`--method` swaps the generator for a baseline (methods.py) in the same pipeline.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from . import images, labels, outputs, validate, video
from .errors import InputError, TimefliesError
from .fsutil import removed_on_error
from .methods import make_method
from .model import Generator
from .segmentation.base import sample_indices
from .sky import check_options, plan_sky, resized, unify_with_sky
from . import retime
from .runtime import frames_per_batch, release_memory, resolve_device, tune_allocator
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
    crf: int | None = None                     # video quality; None = the codec's default
    preview: str | Path | None = None          # contact sheet PNG of some frames
    naive: bool = False                        # run the whole generator per frame (slow)
    method: str = "timeflies"                  # or a baseline: still, reinhard, reinhard-class
    matte: str = "soft"                        # sky border: soft (refined to the photo's edges) or hard
    motion: str = "auto"                       # auto: move the sky with the reference's clouds; none
    motion_scale: float = 1.0                  # speed factor of the sky's motion
    loop: bool = False                         # reference time there and back: a seamless loop
    overwrite: bool = False                    # replace existing outputs (outputs.py says how)


# The stages of one call, in the order they run; AnimateResult.stages holds their seconds.
STAGES = ("decode", "segment", "sky", "encode image", "generate", "encode video")


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
    labels_from: str           # "label maps", the segmenter's description, or "none"
    preview: Path | None = None
    warnings: list[str] = field(default_factory=list)
    method: str = "timeflies"
    stages: dict[str, float] = field(default_factory=dict)  # seconds per STAGES entry
    sky: str = ""              # what was done with the sky (sky.plan_sky's note)
    stored_size: tuple[int, int] | None = None  # (w, h) in the file: videos pad odd sides to even
    view: str = ""             # the local transfer's finding (methods.view_note), if it ran

    @property
    def generate_fps(self) -> float:
        return self.frames / self.generate_seconds if self.generate_seconds > 0 else float("inf")


class Stopwatch:
    """Seconds per named stage: `with watch("decode"): ...` adds the block's time."""

    def __init__(self, names=STAGES) -> None:
        self.seconds = {name: 0.0 for name in names}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def timed(self, name: str, items: Iterable):
        """Iterate `items`, adding the time spent producing each item to `name`."""
        items = iter(items)
        while True:
            with self(name):
                item = next(items, _END)
            if item is _END:
                return
            yield item


_END = object()


class Animator:
    """Keeps a loaded generator so that many photos can be animated without reloading.

    The weights load on first use, so the baselines (`method`) run without them.
    """

    def __init__(self, weights: str | Path | None = None, device: str | None = "auto",
                 model: Generator | None = None) -> None:
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            tune_allocator()
        self.weights = weights
        self._model = None if model is None else self.place(model)

    @property
    def model(self) -> Generator:
        if self._model is None:
            self._model = self.place(from_pretrained(self.weights))
        return self._model

    def place(self, model: Generator) -> Generator:
        """The model on this animator's device, in the layout and mode animate runs it."""
        # channels_last: oneDNN's convolutions run ~25% faster on it than on NCHW.
        return model.to(self.device, memory_format=CHANNELS_LAST).eval()

    def animate(self, image: str | Path, reference: str | Path, output: str | Path,
                options: AnimateOptions | None = None, progress: ProgressFn | None = None) -> AnimateResult:
        opts = options or AnimateOptions()
        start = time.perf_counter()
        watch = Stopwatch()
        # `target` is kept as given: a trailing '/' means a PNG folder.
        target = _check_output(output, image, reference, self.weights, opts)
        method = make_method(opts.method, lambda: self.model, opts.seed, opts.naive)
        output = Path(output)
        photo_path = Path(image)
        with watch("decode"):
            photo = images.load_image(photo_path)
            out_w, out_h = images.fit_size(photo.shape[1], photo.shape[0], opts.size, opts.max_size)
            batch = frames_per_batch(opts.batch, out_w, out_h)
            model = self.model if method.needs_model else None
            validate.animate_memory("--size", out_w, out_h, batch, network=model.work_shape((out_h, out_w))
                                    if model is not None else None)
            photo = images.resize_image(photo, (out_w, out_h))
            reader = video.FrameReader(reference, folder_fps=opts.folder_fps)
        info = reader.info
        ref_w, ref_h = images.fit_size(info.width, info.height, None, opts.ref_size)
        with watch("segment"):
            img_ids, ref_ids, k, labels_from, sky_id = label_maps(opts, photo, photo_path, reader, (ref_w, ref_h),
                                                                  str(self.device))
            release_memory()  # the segmenter's buffers are done with

        n_out = opts.frames or retime.default_frames(info.frames, opts.loop)
        positions = retime.timeline(n_out, info.frames, opts.loop)
        clock = retime.motion_clock(positions, opts.loop)
        fps = opts.fps or info.fps
        sheet_at = sample_indices(n_out, 8)
        sheet: list[tuple[int, np.ndarray]] = []
        image = to_tensor(photo).to(self.device)
        with watch("sky"):
            sky = plan_sky(image, torch.from_numpy(img_ids).to(self.device), sky_id,
                           resized(reader, (ref_w, ref_h)), ref_ids == sky_id if sky_id is not None else None,
                           clock, matte=opts.matte, motion=opts.motion, motion_scale=opts.motion_scale,
                           loop=opts.loop)
        scan = None
        if method.needs_scan:
            with watch("decode"):
                ref_sky = torch.from_numpy(ref_ids == sky_id) if sky_id is not None else None
                scan = scan_reference(image, resized(reader, (ref_w, ref_h)), self.device, ref_sky)
        windows = retime.reference_windows(reader, positions, (ref_w, ref_h))
        batches = watch.timed("decode", batched(windows, batch))

        # The preview is written inside the video's block: if the video then fails (or its
        # read-back does), the preview goes too; a failed run leaves no output behind.
        with removed_on_error() as written, torch.inference_mode(), \
                video.VideoWriter(target, fps, crf=opts.crf) as writer:
            with watch("encode image"):
                method.prepare(image, sky.labels, torch.from_numpy(ref_ids).to(self.device), k, sky_id, scan)
            done = 0
            for batch_start, batch in batches:
                times = clock[batch_start:batch_start + len(batch)]
                photos = None
                if sky.motion is not None and method.takes_photos:
                    with watch("sky"):  # move the photo's sky, then transfer the light onto it
                        photos = sky.motion.move(image, times)
                with watch("generate"):
                    out = method.generate(batch.to(self.device), batch_start, photos)
                if sky.motion is not None and not method.takes_photos:
                    with watch("sky"):  # a model that draws frames itself: move their sky
                        out = sky.motion.move(out, times)
                frames = to_uint8(out)
                for frame in frames:
                    with watch("encode video"):
                        writer.write(frame)
                    if done in sheet_at:
                        sheet.append((done, frame))
                    done += 1
                if progress:
                    progress(done, n_out)
            if done == 0:
                raise InputError(f"reference '{reference}' has no readable frames; give another video")
            preview = None
            if opts.preview:
                preview = Path(opts.preview)
                tiles = [f for _, f in sheet]
                images.save_png(images.contact_sheet(tiles, labels=[f"frame {i}" for i, _ in sheet]), preview)
                written.append(preview)
            closing = time.perf_counter()
        watch.seconds["encode video"] += time.perf_counter() - closing  # flush and rename
        fps = writer.fps  # a GIF holds the nearest whole-centisecond delay

        warnings = list(reader.warnings) + ([writer.warning] if writer.warning else [])
        if done < n_out:
            warnings.append(f"wrote {done} of {n_out} frames: the reference ended early")
        stages = watch.seconds
        return AnimateResult(output, done, out_w, out_h, fps, time.perf_counter() - start,
                             stages["encode image"] + stages["generate"], str(self.device), k, labels_from,
                             preview, warnings, method.name, dict(stages), sky.note, writer.size, method.note)


def animate(image: str | Path, reference: str | Path, output: str | Path, *,
            weights: str | Path | None = None, device: str | None = "auto",
            progress: ProgressFn | None = None, **options) -> AnimateResult:
    """One-call API: `animate("photo.jpg", "ref.mp4", "out.mp4", size=512, seed=1)`."""
    return Animator(weights, device).animate(image, reference, output, AnimateOptions(**options), progress)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8 on the CPU."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _check_output(output: str | Path, image: str | Path, reference: str | Path, weights: str | Path | None,
                  opts: AnimateOptions) -> str | Path:
    """Check the outputs before any input is read: they must not destroy an input or an
    existing file (outputs.py)."""
    folder = video.is_frame_folder_output(output)
    if not folder and Path(output).suffix.lower() not in video.VIDEO_SUFFIXES:
        raise InputError(f"output '{output}' has an unknown extension; use .mp4, .mov, .mkv, .webm, .gif "
                         "or a folder path ending in '/' for PNG frames")
    outputs.check_outputs({"-o": output, "--preview": opts.preview}, {
        "photo": image, "reference": reference, "--image-seg": opts.image_seg, "--video-seg": opts.video_seg,
        "--weights": weights, "--checkpoint": opts.seg_checkpoint, "--config": opts.seg_config})
    if folder:
        outputs.check_frame_folder("-o", output, opts.overwrite)
    else:
        outputs.check_file("-o", output, video.VIDEO_SUFFIXES, opts.overwrite)
    if opts.preview:
        outputs.check_file("--preview", opts.preview, (".png",), opts.overwrite)
    if opts.frames is not None and opts.frames < 1:
        raise TimefliesError("--frames must be at least 1")
    if opts.batch < 1:
        raise TimefliesError("--batch must be at least 1")
    video.check_crf(video.output_codec(output), opts.crf)
    check_options(opts.matte, opts.motion, opts.motion_scale)
    return output


def label_maps(opts: AnimateOptions, photo: np.ndarray, photo_path: Path, reader: "video.FrameReader",
                ref_size: tuple[int, int], device: str) -> tuple[np.ndarray, np.ndarray, int, str, int | None]:
    """(H, W) and (h, w) int64 id maps on a shared 0..K-1, K, where they came from, and the
    sky's id among 0..K-1 (None: no sky, or label maps whose ids are not the 8 groups).

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
        # Single-channel maps as `timeflies segment` writes them hold the 8 groups too.
        groups = img.format == "groups" or max(img_ids.max(), ref_ids.max()) < len(labels.GROUP_NAMES)
    elif opts.segmenter == "none":
        return np.zeros(size[::-1], np.int64), np.zeros(ref_size[::-1], np.int64), 1, "none", None
    else:
        from .segment import resolve_segmenter, segment_photo, segment_reference

        segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, device)
        img_ids, ref_ids = segment_photo(photo, segmenter), segment_reference(reader, segmenter)
        source, groups = segmenter.description, True
    img_ids = labels.fit_label_map(img_ids, size, str(opts.image_seg or "segmentation"), str(photo_path))
    ref_ids = labels.fit_label_map(ref_ids, ref_size, str(opts.video_seg or "segmentation"), str(reader.info.path))
    (img_ids, ref_ids), k, sky = unify_with_sky(img_ids, ref_ids, groups=groups)
    return img_ids, ref_ids, k, source, sky


@dataclass
class ReferenceScan:
    """What one pass over the whole reference finds, before any frame is made."""
    anchor: torch.Tensor | None    # (1, 3, h, w): the frame most like the photo, or the frames' mean
    night_share: float | None      # lit share of the darkest frame: the lamps on at full night
    night_fill: float | None = None  # share of a lit cell's pixels lit in that frame: how much of a facade


def scan_reference(image: torch.Tensor, frames: Iterable[np.ndarray], device,
                   sky: torch.Tensor | None = None) -> ReferenceScan:
    """One pass over the reference's frames ((h, w, 3) uint8 each) for the photo (1, 3, H, W);
    sky (h, w) bool: the reference's sky. Fields are None without frames."""
    from .model.local import AnchorPicker
    from .model.night import DarkestNight

    picker, darkest = AnchorPicker(image), DarkestNight(sky)
    for frame in frames:
        t = to_tensor(frame).to(device)
        picker.add(t)
        darkest.add(t)
    return ReferenceScan(picker.anchor(), darkest.share, darkest.fill)


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(frame, dtype=np.float32)).div_(255).permute(2, 0, 1)[None]


def batched(windows: Iterator[torch.Tensor], batch: int) -> Iterator[tuple[int, torch.Tensor]]:
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
