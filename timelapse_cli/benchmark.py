"""`timeflies benchmark`: speed per resolution, where `animate` spends its time, and the
paper's quality metrics, for timeflies and the baselines side by side.

Independent parts, each run when asked for:
- speed(res):       FPS of frame generation at res x res (paper Table 2), with the GFLOP per
                    frame counted by torch.utils.flop_counter and the GFLOP/s achieved;
- stages(I, V):     one real `animate` run, its time per stage (decode, segment, ...);
- quality(I, V):    E_tmp, sigma_tmp, SSIM(I, F~_t) and the Gram distance to F_t (Fig. 7);
- evaluate(DIR):    the held-out self-supervised check of method.md on every sequence:
                    I = flipped mean frame, target = flipped frame; PSNR, SSIM, E_tmp, sigma_tmp;
                    and on the night frames (target mean luma < 0.12) their PSNR beside an
                    all-black frame and the target's own mean colour;
- cross_scene(DIR): issue 18's night check with truth: a camera's brightest day frame as
                    the photo, another city's day-to-night sequence as the reference; the
                    output's darkest frames against the camera's real night frames (PSNR,
                    daylight left, lit-block share, lift of the lights);
- sky clips(DIR):   each sky clip as the reference for one photo: does its sky move with
                    the clip's clouds, and stay still when they do not (skycheck.py).
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import data, images, labels, metrics, validate, video
from .runtime import frames_per_batch
from .animation import AnimateOptions, Animator, ReferenceScan, batched, label_maps, scan_reference, to_tensor, \
    to_uint8
from .retime import reference_windows
from .sky import unify_with_sky
from .skycheck import find_clips
from .errors import InputError, TimefliesError
from .methods import METHODS, make_method
from .model import Generator, GeneratorConfig

# Speed rows: "paper-size" is the paper's architecture (width 1.0, RGB output; random
# weights, as speed does not depend on their values) run as animate runs timeflies, the
# reference point of the shipped model's speed.
SPEED_METHODS = ("timeflies", "timeflies-full", "paper-size", "still", "reinhard", "reinhard-class")
_TIMEFLIES_ROWS = {"timeflies-full": "timeflies", "paper-size": "timeflies"}
# Paper Table 2, Time Flies on one RTX 2080 Ti (FPS), for the plot.
PAPER_FPS = {64: 60.87, 128: 31.77, 256: 11.19, 512: 2.23, 1024: 0.58}
ProgressFn = Callable[[int, int], None]
# The cross-scene night check's default references: day-to-night city sequences.
NIGHT_REFERENCES = ("pyramid-webcam", "tilde-frankfurt")
DARK_SHARE = 0.1  # the cross-scene check looks at the output's darkest 10% of frames


@dataclass
class BenchmarkOptions:
    res: list[int] = field(default_factory=list)  # speed at these square sizes
    frames: int = 16                 # frames per timed run
    repeats: int = 3                 # timed runs per row (after one warm-up run)
    batch: int = 4                   # as animate
    ref_size: int = 256              # as animate
    methods: tuple[str, ...] = tuple(METHODS)
    image: str | None = None         # quality on a pair (and the stage breakdown)
    reference: str | None = None
    size: int = 256                  # long side for quality and evaluation
    stage_size: int = 512            # long side of the photo in the stage breakdown
    eval_dir: str | None = None
    borders_dir: str | None = None   # the shared data folder: border-band errors (borders.py)
    cross_dir: str | None = None     # cameras and references of the cross-scene night check
    sky_dir: str | None = None       # sky clips: does the photo's (--image) sky move with each (skycheck.py)
    night_refs: tuple[str, ...] = NIGHT_REFERENCES  # its references (sequence names in cross_dir)
    sequences: str = "*"             # name pattern of the sequences to evaluate
    max_frames: int | None = None    # cap on frames per sequence / reference
    vgg: str | None = None           # ImageNet VGG-19 for the Gram distance
    segmenter: str = "auto"
    seg_config: str | None = None
    seg_checkpoint: str | None = None
    seed: int = 0
    compare: tuple[str, ...] = ()    # more weights folders: their own timeflies speed rows


@dataclass
class BenchmarkResult:
    machine: dict
    speed: list[dict] = field(default_factory=list)
    stages: dict | None = None
    quality: dict | None = None
    evaluation: dict | None = None
    borders: list[dict] | None = None
    cross_scene: dict | None = None
    sky_clips: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


def run(weights: str | None, device: str, opts: BenchmarkOptions,
        progress: ProgressFn | None = None) -> BenchmarkResult:
    for name in opts.methods:
        if name not in METHODS:
            raise TimefliesError(f"unknown method '{name}'; use any of: {', '.join(METHODS)}")
    if opts.reference is not None and opts.image is None:
        raise TimefliesError("give both --image and --reference for the quality figures")
    if opts.image is not None and opts.reference is None and opts.sky_dir is None:
        raise TimefliesError("give both --image and --reference for the quality figures (or --sky-clips for "
                             "the sky check alone)")
    if opts.sky_dir is not None and opts.image is None:
        raise TimefliesError("--sky-clips animates one photo with each clip: give it with --image")
    if opts.sky_dir is not None and opts.segmenter == "none":
        raise TimefliesError("--sky-clips needs a segmenter to find the skies: drop --segmenter none")
    if opts.vgg and not opts.image:
        raise TimefliesError("--vgg is for the Gram distance of the quality figures; give --image and "
                             "--reference too")
    if min([opts.frames, opts.repeats, opts.batch, *opts.res] or [1]) < 1:
        raise TimefliesError("--res, --frames, --repeats and --batch must be positive")
    sequences = eval_sequences(opts.eval_dir, opts.sequences) if opts.eval_dir else []
    cameras, refs = cross_scene_inputs(opts.cross_dir, opts.sequences, opts.night_refs) if opts.cross_dir else ([], [])
    clips = find_clips(opts.sky_dir, opts.sequences) if opts.sky_dir else []
    animator = Animator(weights, device)
    result = BenchmarkResult(machine_info(animator.device))
    ticker = _Ticker(progress, _work_units(opts, len(sequences), _pair_count(cameras, refs)) + len(clips))
    others = [Animator(w, device) for w in opts.compare]
    with torch.inference_mode():
        for res in opts.res:
            result.speed += speed(animator, res, opts, ticker)
            for path, other in zip(opts.compare, others):  # the same run: ratios between weights hold
                result.speed += speed(other, res, replace(opts, methods=("timeflies",)), ticker,
                                      label=f"timeflies ({path})", rows=("timeflies",))
        if opts.image and opts.reference:
            result.stages = stages(animator, opts.image, opts.reference, opts)
            ticker()
            result.quality = quality(animator, opts.image, opts.reference, opts, ticker)
        if opts.eval_dir:
            result.evaluation = evaluate(animator, opts.eval_dir, opts, ticker, sequences)
        if opts.borders_dir:
            from . import borders

            methods = tuple(m for m in opts.methods if m not in ("still", "reinhard"))  # no classes, no border
            result.borders = borders.evaluate(animator, opts.borders_dir, methods, ref_size=opts.ref_size,
                                              max_frames=opts.max_frames or 16, batch=opts.batch,
                                              seed=opts.seed, tick=ticker)
        if opts.cross_dir:
            result.cross_scene = cross_scene(animator, opts, cameras, refs, ticker)
        if opts.sky_dir:
            result.sky_clips = _sky_clips(animator, opts, clips, ticker)
    return result


def _sky_clips(animator: Animator, opts: BenchmarkOptions, clips, tick) -> dict:
    from .segment import resolve_segmenter
    from .skycheck import sky_clips

    aopts = AnimateOptions(size=opts.size, ref_size=opts.ref_size, segmenter=opts.segmenter,
                           seg_config=opts.seg_config, seg_checkpoint=opts.seg_checkpoint, seed=opts.seed,
                           batch=opts.batch, frames=opts.max_frames)
    segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, str(animator.device))
    return sky_clips(animator, opts.image, clips, aopts, segmenter,
                     lambda frames: _motion(animator, opts.image, frames, opts), tick)


# ----------------------------------------------------------------------------- speed

def speed(animator: Animator, res: int, opts: BenchmarkOptions, tick=lambda: None, label: str | None = None,
          rows: tuple[str, ...] = SPEED_METHODS) -> list[dict]:
    """One row per method at res x res: FPS median/min/max over `repeats` timed runs of
    `frames` frames, image preparation included (as animate does it once per video), and
    fps_long without it: the rate a long video approaches. label: the timeflies row's name
    (e.g. which weights); rows: which of SPEED_METHODS to time."""
    device = animator.device
    r = min(res, opts.ref_size)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, res, res, generator=gen).to(device)
    wins = torch.rand(opts.frames, 9, r, r, generator=gen).to(device)
    img_labels, ref_labels = _two_regions(res, device), _two_regions(r, device)  # "sky" over "ground"
    # The anchor is the photo itself at the reference's size: the same view, so the local
    # transfer runs (its worst case; with another place's reference it costs nothing).
    scan = ReferenceScan(torch.nn.functional.interpolate(image, size=(r, r), mode="area"), None)
    out = []
    full_size = validate.full_size_rows_fit(res, opts.batch)
    for name in rows:
        base = _TIMEFLIES_ROWS.get(name, name)
        network_at_full_size = name == "paper-size" or (
            base == "timeflies" and animator.model.work_shape((res, res)) == (res, res))
        if base not in opts.methods or (network_at_full_size and not full_size):
            continue  # not asked for, or a network at this size does not fit in memory
        model = (lambda: animator.place(Generator(GeneratorConfig()))) if name == "paper-size" else (lambda: animator.model)
        method = make_method(base, model, opts.seed, naive=name == "timeflies-full")

        def once() -> tuple[float, float]:
            """Seconds preparing the image, seconds generating the frames."""
            t0 = time.perf_counter()
            method.prepare(image, img_labels, ref_labels, 2, scan=scan if method.needs_scan else None)
            t1 = time.perf_counter()
            for first, batch in batched(iter(wins), frames_per_batch(opts.batch, res, res)):
                to_uint8(method.generate(batch, first))  # as animate: frames end as uint8 on the CPU
            return t1 - t0, time.perf_counter() - t1

        with FlopCounterMode(display=False) as counter:  # the warm-up run, counted
            once()
        tick()
        runs = []
        for _ in range(opts.repeats):
            runs.append(once())
            tick()
        fps = [opts.frames / (prep + frames) for prep, frames in runs]
        gflop = counter.get_total_flops() / 1e9 / opts.frames
        median = statistics.median(fps)
        out.append(dict(method=label if label and name == "timeflies" else name, res=res, frames=opts.frames,
                        fps=median, fps_min=min(fps), fps_max=max(fps),
                        prepare_seconds=statistics.median(p for p, _ in runs),
                        fps_long=statistics.median(opts.frames / frames for _, frames in runs),
                        gflop_per_frame=gflop, gflops=gflop * median))
    return out


def _two_regions(side: int, device) -> torch.Tensor:
    ids = torch.ones(side, side, dtype=torch.long)
    ids[: int(side * 0.4)] = 0
    return ids.to(device)


def peak_gflops(device: torch.device, repeats: int = 5) -> dict:
    """This device's float32 rate on two dense kernels, the practical ceiling for the
    model: a 2048^3 matrix product, and a 3x3 convolution of 64 channels at 128x128
    (batch 4, channels_last, as the model runs)."""
    a, b = torch.rand(2048, 2048, device=device), torch.rand(2048, 2048, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device, memory_format=torch.channels_last)
    x = torch.rand(4, 64, 128, 128, device=device).contiguous(memory_format=torch.channels_last)
    kernels = {"matmul": (lambda: a @ b, 2 * 2048 ** 3),
               "conv3x3": (lambda: conv(x), 2 * 4 * 128 * 128 * 64 * 64 * 9)}
    rates = {}
    with torch.inference_mode():
        for name, (fn, flop) in kernels.items():
            best = float("inf")
            for _ in range(repeats + 1):  # the first run warms up
                t0 = time.perf_counter()
                fn().sum().item()  # .item() waits for the device
                best = min(best, time.perf_counter() - t0)
            rates[name] = flop / best / 1e9
    return rates


# ---------------------------------------------------------------------------- stages

def stages(animator: Animator, image: str, reference: str, opts: BenchmarkOptions) -> dict:
    """A real `animate` run (timeflies, photo at `stage_size`) to a temporary file."""
    with tempfile.TemporaryDirectory() as tmp:
        aopts = AnimateOptions(size=opts.stage_size, ref_size=opts.ref_size, segmenter=opts.segmenter,
                               seg_config=opts.seg_config, seg_checkpoint=opts.seg_checkpoint,
                               seed=opts.seed, batch=opts.batch, frames=opts.max_frames)
        r = animator.animate(image, reference, Path(tmp) / "out.mp4", aopts)
        motion = _motion(animator, image, list(video.FrameReader(Path(tmp) / "out.mp4")), opts)
    return dict(image=str(image), reference=str(reference), frames=r.frames, width=r.width, height=r.height,
                seconds=r.seconds, labels_from=r.labels_from, stages=r.stages, sky=r.sky, motion=motion)


def _motion(animator: Animator, image: str, frames: list[np.ndarray], opts: BenchmarkOptions) -> dict | None:
    """Mean optical flow of the output in the photo's sky and on its ground (each shrunk by
    4 px from their border), px per frame; None if the photo has no sky or no ground."""
    from scipy import ndimage

    from .motion import mean_flow
    from .segment import resolve_segmenter, segment_photo

    if opts.segmenter == "none":
        return None  # one class: no sky to look at
    h, w = frames[0].shape[:2]
    photo = images.resize_image(images.load_image(image), (w, h))
    segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, str(animator.device))
    sky = segment_photo(photo, segmenter) == labels.GROUP_NAMES.index("sky")
    inner_sky, inner_ground = ndimage.binary_erosion(sky, iterations=4), ndimage.binary_erosion(~sky, iterations=4)
    if not inner_sky.any() or not inner_ground.any():
        return None
    (dx, dy), _ = mean_flow(frames, inner_sky)
    _, ground = mean_flow(frames, inner_ground)
    return dict(sky_dx=dx, sky_dy=dy, sky_speed=math.hypot(dx, dy), sky_degrees=math.degrees(math.atan2(dy, dx)),
                ground_speed=ground)


# --------------------------------------------------------------------------- quality

def quality(animator: Animator, image: str, reference: str, opts: BenchmarkOptions, tick=lambda: None) -> dict:
    """Every method on (image, reference): E_tmp, sigma_tmp, SSIM(I, F~_t), Gram(F~_t, F_t),
    how the output's brightness follows the reference's (luminance r) and how much of the
    photo's structure each frame keeps (structure r). The reference's own E_tmp is taken
    at the output's size."""
    device = animator.device
    photo = images.load_image(image)
    photo = images.resize_image(photo, images.fit_size(photo.shape[1], photo.shape[0], opts.size))
    validate.metric_size(f"--image '{image}'", photo.shape[1], photo.shape[0])
    reader = video.FrameReader(reference)
    ref_size = images.fit_size(reader.info.width, reader.info.height, None, opts.ref_size)
    frames = _read(reader, ref_size, opts.max_frames)
    aopts = AnimateOptions(segmenter=opts.segmenter, seg_config=opts.seg_config, seg_checkpoint=opts.seg_checkpoint)
    img_ids, ref_ids, k, labels_from, sky = label_maps(aopts, photo, Path(image), reader, ref_size, str(device))
    real = _clip(frames, device)                                # (N, 3, h, w)
    still = to_tensor(photo).to(device)                         # (1, 3, H, W)
    phi, phi_note = _style_net(animator, opts.vgg)
    real_feats = _features(phi, real)
    real_at_out = torch.nn.functional.interpolate(real, size=still.shape[-2:], mode="bilinear",
                                                  align_corners=False, antialias=True)
    rows = [dict(method="(reference)", e_tmp=metrics.e_tmp(real_at_out), sigma_tmp=0.0, ssim=None, gram=None,
                 luminance_r=None, structure_r=None)]
    for name in opts.methods:
        out = _generate(animator, name, opts, photo, img_ids, ref_ids, k, frames, ref_size, sky)
        gram = torch.cat([metrics.gram_distance(f, r) for f, r in zip(_features(phi, out), real_feats)])
        ssim = metrics.ssim(still, out)
        structure = metrics.structure_r(still, out)
        rows.append(dict(method=name, e_tmp=metrics.e_tmp(out), sigma_tmp=metrics.sigma_tmp(real, out),
                         ssim=ssim.mean().item(), gram=gram.mean().item(),
                         luminance_r=metrics.luminance_r(out, real), structure_r=structure.mean().item(),
                         ssim_per_frame=ssim.tolist(), gram_per_frame=gram.tolist(),
                         structure_per_frame=structure.tolist()))
        tick()
    return dict(image=str(image), reference=str(reference), frames=len(frames), size=list(photo.shape[1::-1]),
                labels_from=labels_from, style_network=phi_note, rows=rows)


def _style_net(animator: Animator, vgg: str | None):
    from .weights import loss_network

    net, note = loss_network(animator.model if not vgg else None, vgg)
    return net.to(animator.device), note


def _features(net, clip: torch.Tensor, chunk: int = 8) -> list[list[torch.Tensor]]:
    """relu1_1..relu4_1 of each chunk of frames: [[(n, C_l, h_l, w_l) per layer] per chunk]."""
    return [net(clip[i:i + chunk])[3] for i in range(0, len(clip), chunk)]


# ------------------------------------------------------------------------ evaluation

def evaluate(animator: Animator, data_dir: str, opts: BenchmarkOptions, tick=lambda: None,
             sequences: list[data.Sequence] | None = None) -> dict:
    """method.md's held-out check on every sequence folder (or video) in data_dir
    (`sequences`: those already found there by eval_sequences)."""
    device = animator.device
    per_seq = []
    for seq in sequences or eval_sequences(data_dir, opts.sequences):
        size = images.fit_size(seq.width, seq.height, None, opts.size)
        validate.metric_size(f"sequence '{seq.name}'", *size)
        real = data.load_frames(seq, 0, min(seq.frames, opts.max_frames or seq.frames), size).to(device)
        frames = list((real * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())  # as decoded: uint8
        target = real.flip(-1)                                             # (N, 3, h, w)
        mean = (real.mean(0).permute(1, 2, 0) * 255).round().byte().cpu().numpy()
        photo = np.ascontiguousarray(mean[:, ::-1])                        # I: flipped mean frame
        scene, k, labels_from, sky = _scene_labels(seq, frames, size, opts, str(device))
        img_ids = np.ascontiguousarray(scene[:, ::-1])
        nights = metrics.is_night(target)                                  # (N,) bool
        night_target = target[nights]
        rows = []  # the "still" method is the check's floor, "output = I"
        night = None
        if len(night_target):  # references: all black, and the target's own mean colour
            night = dict(frames=int(nights.sum()),
                         black=_mean(metrics.psnr(torch.zeros_like(night_target[:1]), night_target)),
                         target_flat=_mean(metrics.psnr(metrics.flat(night_target), night_target)), rows=[])
        for name in opts.methods:
            out = _generate(animator, name, opts, photo, img_ids, scene, k, frames, size, sky)
            rows.append(dict(method=name, psnr=_mean(metrics.psnr(out, target)),
                             ssim=metrics.ssim(out, target).mean().item(),
                             e_tmp=metrics.e_tmp(out), sigma_tmp=metrics.sigma_tmp(target, out)))
            if night:
                night["rows"].append(dict(method=name, psnr=_mean(metrics.psnr(out[nights], night_target))))
            tick()
        per_seq.append(dict(sequence=seq.name, frames=len(frames), size=list(size),
                            labels_from=labels_from, target_e_tmp=metrics.e_tmp(target), rows=rows, night=night))
    names = [r["method"] for r in per_seq[0]["rows"]]
    mean_rows = [dict(method=n, **{key: float(np.mean([s["rows"][i][key] for s in per_seq]))
                                   for key in ("psnr", "ssim", "e_tmp", "sigma_tmp")})
                 for i, n in enumerate(names)]
    return dict(data=str(data_dir), sequences=per_seq, mean=mean_rows, night_mean=_night_mean(per_seq, names))


def _night_mean(per_seq: list[dict], names: list[str]) -> dict | None:
    """Night PSNR averaged over the sequences that have night frames (None if none has)."""
    nights = [s["night"] for s in per_seq if s["night"]]
    if not nights:
        return None
    return dict(sequences=[s["sequence"] for s in per_seq if s["night"]],
                frames=sum(n["frames"] for n in nights),
                black=float(np.mean([n["black"] for n in nights])),
                target_flat=float(np.mean([n["target_flat"] for n in nights])),
                rows=[dict(method=m, psnr=float(np.mean([n["rows"][i]["psnr"] for n in nights])))
                      for i, m in enumerate(names)])


def eval_sequences(data_dir: str, pattern: str = "*") -> list[data.Sequence]:
    """The sequences of `data_dir` (as `train --data` finds them), checked: 2 frames or more."""
    return data.find_sequences(data_dir, 2, "the temporal metrics need at least 2: drop it or give "
                                            "a longer sequence", pattern)


def _mean(values: torch.Tensor) -> float:
    """Mean PSNR over frames; a frame equal to its target (inf dB) is capped at 100 dB."""
    return values.clamp(max=100).mean().item()


def _scene_labels(seq: data.Sequence, frames: list[np.ndarray], size, opts: BenchmarkOptions, device: str):
    """The scene's label map at `size` with ids 0..K-1, K, where it came from, and the sky's id."""
    segmenter = None
    if seq.label_path is None and opts.segmenter != "none":
        from .segment import resolve_segmenter

        segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, device)
    raw, source = data.scene_labels(seq, frames, size, segmenter)
    (ids,), k, sky = unify_with_sky(raw)
    return ids, k, source, sky


# ----------------------------------------------------------------------- cross-scene

def _night_mask(seq: data.Sequence, frames: torch.Tensor) -> torch.Tensor:
    """Which frames of `seq` are real nights: labelled night in timestamps.txt, else (no
    timestamps) mean luma < NIGHT_LUMINANCE. frames (N, 3, h, w) -> (N,) bool."""
    found = data.day_night(seq)
    if found is None:
        return metrics.is_night(frames).cpu()
    return torch.tensor([x == "night" for x in found])


def cross_scene_inputs(data_dir: str, pattern: str, references) -> tuple[list[data.Sequence], list[data.Sequence]]:
    """The cameras (sequences of data_dir matching `pattern` that have night frames; pattern
    "*" = the test split's AMOS webcams) and the reference sequences named `references`."""
    from .recipe import TEST_SEQUENCES

    references = tuple(references)
    if not references:
        raise TimefliesError("--night-refs needs at least one reference sequence")
    refs = data.find_sequences(data_dir, 2, "a reference needs at least 2", ",".join(references))
    missing = [r for r in references if r not in {s.name for s in refs}]
    if missing:
        raise InputError(f"reference sequence(s) {', '.join(missing)} not found in '{data_dir}'; "
                         "check --night-refs")
    refs = sorted(refs, key=lambda s: references.index(s.name))
    if pattern == "*":
        pattern = ",".join(n for n in TEST_SEQUENCES if n.startswith("amos-"))
    cameras = []
    for seq in data.find_sequences(data_dir, 2, "the photo and the nights need at least 2", pattern):
        tags = data.day_night(seq)
        if tags is not None:
            has_night = "night" in tags
        else:
            small = images.fit_size(seq.width, seq.height, None, 64)
            has_night = bool(metrics.is_night(data.load_frames(seq, 0, seq.frames, small)).any())
        if has_night:
            cameras.append(seq)
    if not cameras:
        raise InputError(f"no sequence matching '{pattern}' in '{data_dir}' has night frames (labelled night "
                         f"in {data.TIMESTAMPS}, or mean luminance < {metrics.NIGHT_LUMINANCE}); choose others "
                         "with --sequences")
    if not _pair_count(cameras, refs):
        raise InputError("each camera is its own reference (not cross-scene); give another reference "
                         "with --night-refs or other cameras with --sequences")
    return cameras, refs


def _pair_count(cameras: list[data.Sequence], refs: list[data.Sequence]) -> int:
    """Camera x reference pairs, a camera never its own reference."""
    return sum(1 for c in cameras for r in refs if c.name != r.name)


def cross_scene(animator: Animator, opts: BenchmarkOptions, cameras: list[data.Sequence],
                refs: list[data.Sequence], tick=lambda: None) -> dict:
    """Every camera x reference: the camera's brightest day frame as the photo (at --size),
    the reference at --ref-size as animate reads it, every method run as --eval runs it;
    the output's darkest frames measured against the camera's real night frames."""
    device = animator.device
    segmenter = None
    if opts.segmenter != "none":
        from .segment import resolve_segmenter

        segmenter = resolve_segmenter(opts.segmenter, opts.seg_config, opts.seg_checkpoint, str(device))
    references = []  # per reference: frames (uint8 list), size, raw label map, the darkest frame's lit share
    for ref in refs:
        ref_size = images.fit_size(ref.width, ref.height, None, opts.ref_size)
        clip = data.load_frames(ref, 0, min(ref.frames, opts.max_frames or ref.frames), ref_size)
        frames = list((clip * 255).round().byte().permute(0, 2, 3, 1).numpy())
        ids, source = data.scene_labels(ref, frames, ref_size, segmenter)
        real = _clip(frames, device)                                        # (n, 3, h, w)
        darkest = int(metrics.mean_luminance(real).argmin())
        share = metrics.lit_share(metrics.lit_blocks(real[darkest:darkest + 1])).item()
        references.append((ref, frames, ref_size, ids, source, darkest, share))
    pairs = []
    for cam in cameras:
        size = images.fit_size(cam.width, cam.height, None, opts.size)
        real = data.load_frames(cam, 0, cam.frames, size).to(device)       # (N, 3, H, W), as uint8
        nights = _night_mask(cam, real).to(device)
        found = data.day_night(cam)
        day = torch.tensor([x == "day" for x in found], device=device) if found else torch.ones_like(nights)
        if not day.any():
            day = ~nights
        lum = metrics.mean_luminance(real)
        photo_index = int(torch.where(day, lum, torch.full_like(lum, -1.0)).argmax())
        photo_t = real[photo_index:photo_index + 1]                          # (1, 3, H, W)
        photo = (photo_t[0] * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        night_frames = real[nights]                                          # (M, 3, H, W)
        night_lum = metrics.mean_luminance(night_frames)                     # (M,)
        union = metrics.lit_blocks(night_frames).any(0, keepdim=True)        # (1, h, w)
        if segmenter is None:
            raw_img = np.zeros(size[::-1], np.int64)
        else:
            from .segment import segment_photo

            raw_img = labels.fit_label_map(segment_photo(photo, segmenter), size, "segmentation", cam.name)
        for ref, frames, ref_size, raw_ref, source, darkest, ref_share in references:
            if ref.name == cam.name:
                continue  # not cross-scene
            (img_ids, ref_ids), k, sky = unify_with_sky(raw_img, raw_ref)
            rows = []
            for name in opts.methods:
                out = run_method(animator, name, photo_t, torch.from_numpy(img_ids).to(device),
                                 torch.from_numpy(ref_ids).to(device), k, frames, ref_size, opts.batch, opts.seed,
                                 sky)
                rows.append(dict(method=name, **_night_truth(out, photo_t, night_frames, night_lum, union,
                                                             ref_share)))
                tick()
            pairs.append(dict(camera=cam.name, reference=ref.name, size=list(size), ref_size=list(ref_size),
                              photo_frame=photo_index, night_frames=len(night_frames), ref_frames=len(frames),
                              ref_darkest_frame=darkest, ref_lit_share=ref_share, labels_from=source,
                              real_daylight_left=_nanmean(metrics.daylight_left(night_frames, photo_t)),
                              real_lit_share=_nanmean(metrics.lit_share(metrics.lit_blocks(night_frames))),
                              rows=rows))
    return dict(data=str(Path(cameras[0].path).parent), dark_share=DARK_SHARE, pairs=pairs,
                by_camera=_cross_means(pairs, "camera"), by_reference=_cross_means(pairs, "reference"),
                mean=_cross_means(pairs, None))


CROSS_KEYS = ("psnr", "black", "own_flat", "daylight_left", "real_daylight_left", "lit_share", "ref_lit_share",
              "share_ratio", "lift", "lift_union")


def _night_truth(out: torch.Tensor, photo: torch.Tensor, nights: torch.Tensor, night_lum: torch.Tensor,
                 union: torch.Tensor, ref_share: float) -> dict:
    """The cross-scene measures of one output (N, 3, H, W) on its darkest DARK_SHARE of
    frames, each against the real night frame (of nights (M, 3, H, W)) closest in mean
    luma; means over those frames (lifts and correlations over the frames where defined)."""
    lum = metrics.mean_luminance(out)
    dark = lum.argsort()[:max(1, math.ceil(DARK_SHARE * len(out)))]         # darkest first
    o = out[dark]                                                            # (D, 3, H, W)
    r = nights[(lum[dark, None] - night_lum[None]).abs().argmin(1)]          # (D, 3, H, W)
    blocks = metrics.lit_blocks(o)                                           # (D, h, w)
    share = _nanmean(metrics.lit_share(blocks))
    lift = metrics.lift(blocks, metrics.lit_blocks(r))
    return dict(dark_frames=len(dark), psnr=_mean(metrics.psnr(o, r)),
                black=_mean(metrics.psnr(torch.zeros_like(r[:1]), r)),
                own_flat=_mean(metrics.psnr(metrics.flat(o), r)),
                daylight_left=_nanmean(metrics.daylight_left(o, photo)),
                real_daylight_left=_nanmean(metrics.daylight_left(r, photo)),
                lit_share=share, ref_lit_share=ref_share,
                share_ratio=share / ref_share if ref_share > 0 else math.nan,
                lift=_nanmean(lift), lift_frames=int((~lift.isnan()).sum()),
                lift_union=_nanmean(metrics.lift(blocks, union)))


def _nanmean(values) -> float:
    """Mean of the values that are not NaN (NaN if none is)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    v = v[~v.isnan()]
    return v.mean().item() if len(v) else math.nan


def _cross_means(pairs: list[dict], by: str | None) -> list[dict]:
    """Per method, the measures averaged over the pairs of each camera (by="camera"), of
    each reference (by="reference") or of all pairs (by=None); NaNs left out."""
    groups = list(dict.fromkeys(p[by] for p in pairs)) if by else [None]
    out = []
    for group in groups:
        chosen = [p for p in pairs if by is None or p[by] == group]
        for i, row in enumerate(chosen[0]["rows"]):
            out.append(dict(group=group, method=row["method"], pairs=len(chosen),
                            **{key: _nanmean([p["rows"][i][key] for p in chosen]) for key in CROSS_KEYS}))
    return out


# ---------------------------------------------------------------------------- shared

def _read(reader: video.FrameReader, size, max_frames: int | None) -> list[np.ndarray]:
    """A reference's frames resized to size=(w, h): a list of (h, w, 3) uint8."""
    frames = []
    for frame in reader:
        frames.append(images.resize_image(frame, size))
        if max_frames and len(frames) == max_frames:
            break
    if len(frames) < 2:
        raise InputError(f"'{reader.info.path}' has {len(frames)} readable frame(s); the temporal "
                         "metrics need at least 2: give a longer video")
    return frames


def _clip(frames: list[np.ndarray], device) -> torch.Tensor:
    return torch.cat([to_tensor(f) for f in frames]).to(device)


def _generate(animator: Animator, name: str, opts: BenchmarkOptions, photo: np.ndarray, img_ids, ref_ids,
              k: int, frames: list[np.ndarray], ref_size, sky: int | None = None) -> torch.Tensor:
    """Run method `name` as animate does (windows, batches, uint8 frames): (N, 3, H, W) in [0, 1]."""
    device = animator.device
    return run_method(animator, name, to_tensor(photo).to(device), torch.from_numpy(img_ids).to(device),
                      torch.from_numpy(ref_ids).to(device), k, frames, ref_size, opts.batch, opts.seed, sky)


def run_method(animator: Animator, name: str, image: torch.Tensor, img_labels, ref_labels: torch.Tensor, k: int,
               frames: list[np.ndarray], ref_size, batch: int, seed: int, sky: int | None = None) -> torch.Tensor:
    """Method `name` on image (1, 3, H, W) with labels (tensors or SoftLabels) and the reference
    `frames`, as animate runs it (windows, batches, uint8 frames): (N, 3, H, W) in [0, 1]."""
    device = animator.device
    method = make_method(name, lambda: animator.model, seed)
    scan = None
    if method.needs_scan:
        ref_sky = (ref_labels == sky).cpu() if sky is not None else None
        scan = scan_reference(image, frames, device, ref_sky)
    method.prepare(image, img_labels, ref_labels, k, sky, scan)
    out = []
    for first, windows in batched(reference_windows(frames, list(range(len(frames))), ref_size), batch):
        out.append(torch.from_numpy(to_uint8(method.generate(windows.to(device), first))))
    return torch.cat(out).permute(0, 3, 1, 2).float().div_(255).to(device)


def machine_info(device: torch.device) -> dict:
    import av

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(), device=str(device),
                python=platform.python_version(), torch=torch.__version__, numpy=np.__version__,
                av=av.__version__, platform=platform.platform())
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info["peak_gflops"] = peak_gflops(device)
    return info


class _Ticker:
    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)


def _work_units(opts: BenchmarkOptions, sequences: int, pairs: int = 0) -> int:
    speed_rows = sum(1 for n in SPEED_METHODS if _TIMEFLIES_ROWS.get(n, n) in opts.methods) + len(opts.compare)
    units = len(opts.res) * speed_rows * (opts.repeats + 1)
    if opts.image and opts.reference:
        units += 1 + len(opts.methods)
    if opts.eval_dir:
        units += sequences * len(opts.methods)
    if opts.borders_dir:
        from .borders import PHOTOS

        units += len(PHOTOS) * sum(1 for m in opts.methods if m not in ("still", "reinhard"))
    return units + pairs * len(opts.methods)
