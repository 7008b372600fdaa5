"""The `timeflies` command line. Each command parses options, checks their values
(validate.py) and makes one library call.

Heavy imports (torch, av) happen inside the commands so that `--help` is instant.
`run` is the one place where option-parsing errors and the library's errors become a
one-line message and exit 2.
"""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import validate as V

app = typer.Typer(
    help="Animate a still photo with the change over time of a reference time-lapse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

# Options shared by several commands, defined once.
WeightsOpt = Annotated[Optional[Path], typer.Option(
    "--weights", help="Generator weights directory (config.json + generator.safetensors). "
    "Default: the weights shipped in weights/.", show_default=False)]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if available), cpu, cuda or cuda:N.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the noise map (0..4294967295); same seed, same output.")]
SegmenterOpt = Annotated[str, typer.Option(
    "--segmenter", help="auto (mmseg with a checkpoint given or fetched by `timeflies models fetch`, else "
    "builtin), mmseg (ADE20K classes), builtin (offline sky vs. rest)")]
SegConfigOpt = Annotated[Optional[str], typer.Option(
    "--config", "--seg-config", help="mmsegmentation config: a .py path or a bundled config's name "
    "(default: SegFormer-B0 ADE20K).", show_default=False)]
SegCheckpointOpt = Annotated[Optional[Path], typer.Option(
    "--checkpoint", "--seg-checkpoint", help="mmsegmentation checkpoint (.pth) for the config, or the name of "
    "one fetched by `timeflies models fetch` (or set TIMEFLIES_MMSEG_CHECKPOINT). Default: the first cached "
    "one in `timeflies models list`.", show_default=False)]
MethodOpt = Annotated[str, typer.Option(
    "--method", help="timeflies (the learned model), or a training-free baseline: still (photo "
    "unchanged), reinhard (mean/std colour transfer in Lab), reinhard-class (the same per class).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", "-y", help="Replace outputs that already exist (in a frame folder only the frames timeflies "
    "wrote; in a train run folder the earlier run's own files). An output on an input is refused even so.")]


def _version(value: bool) -> None:
    if value:
        from . import __version__
        out.print(f"timeflies {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Animate a still photo with the change over time of a reference time-lapse."""


def _size(value: Optional[str]):
    """'512' -> 512 (long side); '640x360' -> (640, 360)."""
    if value is None:
        return None
    try:
        if "x" in value.lower():
            w, h = (int(v) for v in value.lower().split("x"))
            if w > 0 and h > 0:
                return (w, h)
        elif int(value) > 0:
            return int(value)
    except ValueError:
        pass
    raise typer.BadParameter(f"'{value}' is not a size; give a long side (512) or WxH (640x360)")


def _fps(value: Optional[str]):
    if value is None:
        return None
    try:
        fps = Fraction(value).limit_denominator(1_000_000)
    except (ValueError, ZeroDivisionError):
        fps = Fraction(0)
    if fps <= 0:
        raise typer.BadParameter(f"'{value}' is not a frame rate; give e.g. 25, 29.97 or 30000/1001")
    return fps


@app.command()
def animate(
    image: Annotated[Path, typer.Argument(help="The still photo to animate.", show_default=False)],
    reference: Annotated[Path, typer.Argument(
        help="Reference time-lapse: a video file (mp4, mov, webm, avi, gif...) or a folder of frames.",
        show_default=False)],
    # A str, not a Path: Path() drops the trailing '/' that asks for a folder of PNGs.
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", metavar="<path>", help="Output .mp4/.mov/.mkv (H.264), .webm (VP9), .gif (looping), or a folder path ending in / "
        "for PNG frames. "
        "Default: IMAGE's name + '-timeflies.mp4'.", show_default=False)] = None,
    weights: WeightsOpt = None,
    image_seg: Annotated[Optional[Path], typer.Option(
        help="Label map of the photo: PNG of class ids (e.g. ADE20K) or the 8-group RGB format.")] = None,
    video_seg: Annotated[Optional[Path], typer.Option(
        help="Label map of the reference (one for the whole static-camera video), same format.")] = None,
    segmenter: Annotated[str, typer.Option(
        help="Without label maps: auto (mmseg with a checkpoint given or fetched by `timeflies models fetch`, "
        "else builtin), mmseg, builtin, or none (one class).")] = "auto",
    seg_config: SegConfigOpt = None,
    seg_checkpoint: SegCheckpointOpt = None,
    size: Annotated[Optional[str], typer.Option(
        help="Output size: long side (512) or WxH (640x360). Default: the photo's own size.")] = None,
    max_size: Annotated[int, typer.Option(help="Cap on the output's long side.")] = 1024,
    ref_size: Annotated[int, typer.Option(
        help="Cap on the long side of reference frames (they only feed statistics).")] = 256,
    fps: Annotated[Optional[str], typer.Option(
        help="Output frame rate (25, 29.97, 30000/1001). Default: the reference's.")] = None,
    frames: Annotated[Optional[int], typer.Option(
        help="Number of output frames; the reference is resampled in time, interpolating between its "
        "frames. Default: one per reference frame.")] = None,
    folder_fps: Annotated[str, typer.Option(help="Frame rate of a reference given as a folder of frames.")] = "25",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    batch: Annotated[int, typer.Option(help="Frames generated together.")] = 4,
    crf: Annotated[Optional[int], typer.Option(
        help="Video quality, lower is better: H.264 0..51 (default 18), VP9 0..63 (default 31); "
        "GIF ignores it.", show_default=False)] = None,
    preview: Annotated[Optional[Path], typer.Option(help="Also write a contact sheet of frames to this PNG.")] = None,
    naive: Annotated[bool, typer.Option(
        help="Run the whole generator for every frame, as the reference code does (slow; for comparison).")] = False,
    method: MethodOpt = "timeflies",
    motion: Annotated[str, typer.Option(
        help="auto: move the photo's sky with the reference's clouds (when both have a sky and the "
        "reference's moves); none: keep the sky still.")] = "auto",
    motion_scale: Annotated[float, typer.Option(help="Speed of the sky's motion, times the reference's.")] = 1.0,
    matte: Annotated[str, typer.Option(
        help="Sky border: soft (refined to the photo's edges, blended) or hard (the label map's).")] = "soft",
    loop: Annotated[bool, typer.Option(
        "--loop", help="A seamless loop: reference time runs there and back (2N-2 frames unless --frames), "
        "clouds keep drifting.")] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Animate IMAGE with the change over time of REFERENCE; write a video."""
    from .animation import AnimateOptions, Animator

    V.device(device)
    V.integer("--max-size", max_size, 1)
    V.integer("--ref-size", ref_size, 1)
    V.integer("--frames", frames, 1, V.MAX_FRAMES)
    V.integer("--batch", batch, 1, V.MAX_BATCH)
    V.integer("--seed", seed, 0, V.MAX_SEED)
    V.number("--motion-scale", motion_scale, 0, V.MAX_MOTION_SCALE)
    if (seg_config or seg_checkpoint) and (image_seg or video_seg or segmenter == "none"):
        raise V.OptionError(f"{'--config' if seg_config else '--checkpoint'} picks the mmseg segmenter, which does "
                            "not run with --image-seg/--video-seg or --segmenter none; drop one of them")
    output = output or f"{image.stem}-timeflies.mp4"
    opts = AnimateOptions(size=_size(size), max_size=max_size, ref_size=ref_size, image_seg=image_seg,
                          video_seg=video_seg, segmenter=segmenter, seg_config=seg_config,
                          seg_checkpoint=str(seg_checkpoint) if seg_checkpoint else None, fps=V.rate("--fps", _fps(fps)), frames=frames,
                          folder_fps=V.rate("--folder-fps", _fps(folder_fps)),
                          seed=seed, batch=batch, crf=crf, preview=preview, naive=naive, method=method,
                          motion=motion, motion_scale=motion_scale, matte=matte, loop=loop, overwrite=overwrite)
    with _progress(quiet, "Animating") as progress:
        result = Animator(weights, device).animate(image, reference, output, opts, progress)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if not quiet:
        out.print(f"Wrote [bold]{escape(str(result.output))}[/]: {result.frames} frames, "
                  f"{_frame_size(result)}, {float(result.fps):g} fps, {result.classes} class(es) "
                  f"from {result.labels_from}, on {result.device}; {result.sky}"
                  + (f"; {result.view}" if result.view else ""),
                  soft_wrap=True)  # one line, however long the path
        out.print(f"{result.seconds:.1f} s in all; generation ({result.method}"
                  + (", naive" if naive else "") + f") {result.generate_seconds:.1f} s = "
                  f"{result.generate_fps:.2f} frames/s")
        out.print("Stages: " + ", ".join(f"{name} {sec:.2f} s" for name, sec in result.stages.items()),
                  soft_wrap=True)
        if result.preview:
            out.print(f"Preview: {escape(str(result.preview))}", soft_wrap=True)


@app.command()
def segment(
    input: Annotated[Path, typer.Argument(
        help="A photo, or a static-camera video (file or folder of frames): one map for the whole video.",
        show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Label map PNG to write.",
                                         show_default=False)],
    segmenter: SegmenterOpt = "auto",
    config: SegConfigOpt = None,
    checkpoint: SegCheckpointOpt = None,
    classes: Annotated[str, typer.Option(
        help="groups: the 8 groups (background, building, ground, mountain, road, sky, tree, water); "
        "ade20k: raw ADE20K ids 1..150 (0 = other; mmseg only).")] = "groups",
    format: Annotated[str, typer.Option(
        "--format", help="ids: single-channel PNG of class ids; rgb: the 8-group RGB format.")] = "ids",
    preview: Annotated[Optional[Path], typer.Option(
        help="Also write the map blended over the image, with a legend, to this PNG.")] = None,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a semantic label map of a photo or a reference video (for animate --image-seg/--video-seg)."""
    from .segment import SegmentOptions, segment as run

    V.device(device)
    opts = SegmentOptions(segmenter=segmenter, config=config, checkpoint=str(checkpoint) if checkpoint else None,
                          device=device, classes=classes, format=format, preview=preview,
                          overwrite=overwrite)
    result = run(input, output, opts)
    if not quiet:
        kind = "video" if result.is_video else "photo"
        out.print(escape(f"Wrote {result.output}: {result.width}x{result.height} label map of the {kind} "
                         f"by the {result.labels_from}; classes: {', '.join(result.classes)}; "
                         f"{result.seconds:.1f} s"), soft_wrap=True)
        if result.preview:
            out.print(escape(f"Preview: {result.preview}"), soft_wrap=True)


models = typer.Typer(help="ADE20K segmentation checkpoints for the mmseg segmenter: list, fetch, remove.",
                     no_args_is_help=True)
app.add_typer(models, name="models")


@models.command("list")
def models_list() -> None:
    """The checkpoints timeflies knows, their size, and which are in the cache."""
    from rich.table import Table

    from .segmentation import zoo

    table = Table("name", "model", "ADE20K mIoU", "size", "cached", box=None, pad_edge=False)
    for entry in zoo.CHECKPOINTS:
        path, part = zoo.cached_path(entry), zoo.partial_bytes(entry)
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path else f"about {entry.megabytes} MB"
        state = "yes" if path else f"no, {part / 1e6:.1f} MB so far" if part else "no"
        table.add_row(entry.name, entry.title, f"{entry.miou:.1f}", size, state)
    out.print(table)
    auto = zoo.find_cached()
    out.print(escape(f"--segmenter auto uses {auto.name}" if auto else
                     f"Nothing cached: --segmenter auto runs the builtin segmenter (sky vs. rest); "
                     f"`timeflies models fetch` gets {zoo.DEFAULT} (the ADE20K classes)"), soft_wrap=True)
    out.print(escape(f"Cache: {zoo.checkpoints_dir()} (set {zoo.CACHE_ENV} to move it)"), soft_wrap=True)


@models.command("fetch")
def models_fetch(
    name: Annotated[Optional[str], typer.Argument(
        help="A name from `timeflies models list` (default: segformer-b0).",
        show_default=False)] = None,
    quiet: QuietOpt = False,
) -> None:
    """Download a checkpoint from the mmsegmentation model zoo, verify its SHA-256 and cache it."""
    from .segmentation import zoo

    name = name or zoo.DEFAULT
    with _progress(quiet, f"Fetching {name}", unit="bytes") as progress:
        try:
            result = zoo.fetch(name, progress)
        except KeyboardInterrupt:
            err.print(f"interrupted; `timeflies models fetch {name}` resumes the download")
            raise typer.Exit(130) from None
    if not quiet:
        size = result.path.stat().st_size / 1e6
        if not result.downloaded and not result.resumed:
            out.print(escape(f"{name} is cached already: {result.path} ({size:.1f} MB)"), soft_wrap=True)
        else:
            resumed = f", resumed after {result.resumed / 1e6:.1f} MB" if result.resumed else ""
            out.print(escape(f"Fetched {name}: {result.path} ({size:.1f} MB, SHA-256 verified{resumed}; "
                             f"{result.seconds:.1f} s)"), soft_wrap=True)


@models.command("remove")
def models_remove(name: Annotated[str, typer.Argument(help="A name from `timeflies models list`.",
                                                      show_default=False)]) -> None:
    """Delete a cached checkpoint (and any cut-off download of it)."""
    from .segmentation import zoo

    gone = zoo.remove(name)
    out.print(escape(f"Removed {', '.join(str(p) for p in gone)}" if gone else f"{name} is not cached"),
              soft_wrap=True)


@app.command()
def train(
    data: Annotated[Path, typer.Option(
        help="Folder with one sub-folder of frames (or one video file) per static-camera sequence; "
        "an optional segmentation.png label map per folder.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint/, best/, log.jsonl, run.json.")]
        = Path("runs/timeflies"),
    recipe: Annotated[str, typer.Option(
        help="Settings every option left unset takes: fast (CPU-sized: 128 px, clips of 8, width 0.25, "
        "affine head, squared error in dB) or paper (256 px, clips of 64, width 1.0, RGB head, the six "
        "losses).")] = "fast",
    size: Annotated[Optional[str], typer.Option(
        help="Training frame size: a long side (aspect kept) or WxH.", show_default=False)] = None,
    clip: Annotated[Optional[int], typer.Option(
        help="Adjacent frames per clip (a sequence needs clip + 2).", show_default=False)] = None,
    photo: Annotated[Optional[str], typer.Option(
        help="The training photo I: the flipped mean of the clip (the paper) or of the whole sequence "
        "(as benchmark --eval makes it).", show_default=False)] = None,
    clips: Annotated[Optional[int], typer.Option(
        help="Clips per optimiser step, their gradients averaged (1 = the paper's batch of one).",
        show_default=False)] = None,
    width: Annotated[Optional[float], typer.Option(
        help="Channel width multiplier of a new model (1.0 = the paper's).", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option(
        help="What the decoder predicts: rgb (the paper) or affine (a colour matrix per pixel).",
        show_default=False)] = None,
    affine_base: Annotated[Optional[str], typer.Option(
        help="What the affine matrices act on: transfer (classwise Lab colour transfer) or photo.",
        show_default=False)] = None,
    noise_sigma: Annotated[Optional[float], typer.Option(
        help="Std of NoiseAdaIN's noise map (the paper: 0.5; 0 = no noise).", show_default=False)] = None,
    affine_smooth: Annotated[Optional[int], typer.Option(
        help="Affine output: average the colour matrices over blocks of this many pixels (1 = per pixel).",
        show_default=False)] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(
        help="Never use sequences matching this name pattern (repeat for more).", show_default=False)] = None,
    val: Annotated[Optional[list[str]], typer.Option(
        help="Validation sequences (name patterns, repeatable): not trained on; their PSNR is logged "
        "every --val-every steps and the best generator kept in OUT/best/.", show_default=False)] = None,
    val_every: Annotated[int, typer.Option(help="Steps between validations.")] = 250,
    holdout: Annotated[bool, typer.Option(
        help="The shipped weights' split: leave out its test sequences and validate on its validation "
        "sequences (both named in timelapse_cli/recipe.py), on top of --exclude/--val.")] = False,
    epochs: Annotated[int, typer.Option(help="Epochs (one clip of every sequence each).")] = 200,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps in all.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop (and checkpoint) after this long.")] = None,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps (and at the end).")] = 100,
    vgg: Annotated[Optional[Path], typer.Option(
        help="torchvision's ImageNet VGG-19 (vgg19-dcbb9e9d.pth) for E_GI, E_GV and the loss network.")] = None,
    init: Annotated[Optional[Path], typer.Option(
        help="Start from this saved generator (default: the shipped weights when the config matches).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    overwrite: OverwriteOpt = False,
    deterministic: Annotated[bool, typer.Option(help="Deterministic kernels (bit-exact resume on CPU).")] = True,
    w_pixel: Annotated[Optional[float], typer.Option(help="Weight of the L1 pixel loss.", show_default=False)] = None,
    w_mse: Annotated[Optional[float], typer.Option(help="Weight of the squared-error pixel loss.",
                                                  show_default=False)] = None,
    w_log_mse: Annotated[Optional[float], typer.Option(
        help="Weight of the clip's squared error in dB (-PSNR).", show_default=False)] = None,
    w_adv: Annotated[Optional[float], typer.Option(help="Weight of the adversarial loss (0 disables).",
                                                  show_default=False)] = None,
    w_perc: Annotated[Optional[float], typer.Option(help="Weight of the perceptual loss.", show_default=False)] = None,
    w_content: Annotated[Optional[float], typer.Option(help="Weight of the content loss.", show_default=False)] = None,
    w_style: Annotated[Optional[float], typer.Option(help="Weight of the classwise style loss.",
                                                    show_default=False)] = None,
    w_flow: Annotated[Optional[float], typer.Option(help="Weight of the classwise flow loss.", show_default=False)] = None,
    w_cycle: Annotated[Optional[float], typer.Option(help="Weight of the classwise cycle loss.", show_default=False)] = None,
    alpha_decay: Annotated[float, typer.Option(help="Content loss alpha = alpha_decay ** step.")] = 0.999,
    lr_g: Annotated[Optional[float], typer.Option(help="Learning rate of the decoder (Adam).", show_default=False)] = None,
    lr_d: Annotated[Optional[float], typer.Option(help="Learning rate of the discriminator (Adam).",
                                                 show_default=False)] = None,
    lr_v: Annotated[Optional[float], typer.Option(help="Learning rate of E_GV (SGD, momentum 0.9).",
                                                 show_default=False)] = None,
    segmenter: Annotated[str, typer.Option(
        help="Label maps of sequences without segmentation.png: auto, builtin, mmseg, or none (one class).")] = "auto",
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Train the generator self-supervised on static-camera time-lapses (resumable)."""
    from dataclasses import replace

    from .data import parse_size
    from .recipe import TEST_SEQUENCES, VALIDATION_SEQUENCES, recipe as settings
    from .train import TrainOptions, train as run

    V.device(device)
    V.choice("--output", output, ("rgb", "affine"))
    V.choice("--affine-base", affine_base, ("transfer", "photo"))
    V.choice("--photo", photo, ("clip", "sequence"))
    V.choice("--segmenter", segmenter, ("auto", "builtin", "mmseg", "none"))
    V.integer("--clip", clip, 1, V.MAX_CLIP)
    V.integer("--clips", clips, 1, V.MAX_CLIPS)
    V.number("--width", width, above=0, high=V.MAX_WIDTH)
    V.number("--noise-sigma", noise_sigma, 0, V.MAX_NOISE_SIGMA)
    V.integer("--affine-smooth", affine_smooth, 1, V.MAX_AFFINE_SMOOTH)
    for option, value in (("--epochs", epochs), ("--max-steps", max_steps), ("--save-every", save_every),
                          ("--val-every", val_every)):
        V.integer(option, value, 1, V.MAX_STEPS)
    V.number("--max-minutes", max_minutes, above=0, high=V.MAX_MINUTES)
    V.number("--alpha-decay", alpha_decay, above=0, high=1, why="the content loss' alpha decays")
    V.number("--lr-g", lr_g, above=0, high=1, why="the decoder must learn; a step over 1 diverges")
    V.number("--lr-d", lr_d, 0, 1)
    V.number("--lr-v", lr_v, 0, 1)
    V.integer("--seed", seed, 0, V.MAX_SEED)
    given = dict(size=parse_size(size) if size is not None else None, clip=clip, clips=clips, photo=photo, width=width, output=output,
                 affine_base=affine_base, noise_sigma=noise_sigma, affine_smooth=affine_smooth, lr_g=lr_g, lr_d=lr_d, lr_v=lr_v)
    opts = TrainOptions(data=str(data), **settings(recipe))
    terms = dict(pixel=w_pixel, mse=w_mse, log_mse=w_log_mse, adv=w_adv, perc=w_perc, content=w_content, style=w_style, flow=w_flow, cycle=w_cycle)
    for name, value in terms.items():
        V.number(f"--w-{name.replace('_', '-')}", value, 0, V.MAX_LOSS_WEIGHT)
    opts = replace(
        opts, **{k: v for k, v in given.items() if v is not None},
        weights=replace(opts.weights, **{k: v for k, v in terms.items() if v is not None}),
        out=str(out_dir), exclude=(*(exclude or ()), *(TEST_SEQUENCES if holdout else ())),
        val=(*(val or ()), *(VALIDATION_SEQUENCES if holdout else ())), val_every=val_every,
        epochs=epochs, max_steps=max_steps, max_minutes=max_minutes, save_every=save_every, seed=seed,
        vgg=str(vgg) if vgg else None, init=str(init) if init else None, resume=resume, device=device,
        deterministic=deterministic, alpha_decay=alpha_decay, segmenter=segmenter, overwrite=overwrite)
    V.train_options(opts)
    with _progress(quiet, "Training") as progress:
        def on_step(step, total, terms):
            if progress:
                progress(step, total)
        result = run(opts, on_step)
    if not quiet:
        best = f"; best on validation: {result.out / 'best'}" if opts.val else ""
        out.print(escape(f"Trained {result.steps} steps in {result.seconds:.0f} s; generator: "
                         f"{result.generator_dir} (use with animate --weights){best}; log: "
                         f"{result.out / 'log.jsonl'}"), soft_wrap=True)


@app.command("train-lights")
def train_lights(
    data: Annotated[Path, typer.Option(
        help="Folder of sequences; those with day and night frames (timestamps.txt labels, else "
        "by brightness) teach where lights go.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Weights folder to write (for animate --weights).",
                                          show_default=False)],
    init: Annotated[Optional[Path], typer.Option(
        help="Generator to start from (default: the shipped one); only its light head is trained.",
        show_default=False)] = None,
    holdout: Annotated[bool, typer.Option(
        help="Leave out the shipped weights' test and validation sequences (recipe.py).")] = False,
    exclude: Annotated[Optional[list[str]], typer.Option(
        help="Sequences to leave out (name patterns, repeatable).", show_default=False)] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps (each sees one day frame of every camera).")] = 300,
    size: Annotated[int, typer.Option(help="Long side of the frames.")] = 256,
    segmenter: SegmenterOpt = "auto",
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Teach the night stage where lights go, from day and night frames of the same cameras."""
    from .lights import LightTrainOptions, train_lights as run
    from .recipe import TEST_SEQUENCES, VALIDATION_SEQUENCES

    V.integer("--steps", steps, 1, 1_000_000)
    V.integer("--size", size, 16, 4096, why="the light head works on a quarter of it")
    V.integer("--seed", seed, 0, V.MAX_SEED)
    V.choice("--segmenter", segmenter, ("auto", "builtin", "mmseg", "none"))

    left_out = (*(exclude or ()), *((*TEST_SEQUENCES, *VALIDATION_SEQUENCES) if holdout else ()))
    with _progress(quiet, "Training lights") as progress:
        result = run(str(data), str(out_dir), str(init) if init else None, left_out, segmenter, overwrite,
                     LightTrainOptions(steps=steps, size=size, seed=seed), progress)
    if not quiet:
        out.print(escape(f"Trained the light head {steps} steps in {result.seconds:.0f} s on "
                         f"{len(result.cameras)} cameras ({', '.join(result.cameras)}); loss "
                         f"{result.losses[0]:.3f} -> {result.losses[-1]:.3f}; weights: {result.out}"), soft_wrap=True)


@app.command(context_settings={"allow_extra_args": True})
def benchmark(
    ctx: typer.Context,
    res: Annotated[Optional[list[str]], typer.Option(
        "--res", metavar="SIDE...", help="Square output sizes to time, e.g. --res 64 128 256 512 (default 256 when "
        "nothing else is asked for).", show_default=False)] = None,
    frames: Annotated[int, typer.Option(help="Frames per timed run.")] = 8,
    repeats: Annotated[int, typer.Option(help="Timed runs per row, after one warm-up run.")] = 3,
    image: Annotated[Optional[Path], typer.Option(
        help="Photo for the quality figures (E_tmp, sigma_tmp, SSIM, Gram distance) and the stage breakdown "
        "(with --reference), or for --sky-clips.",
        show_default=False)] = None,
    reference: Annotated[Optional[Path], typer.Option(
        help="Reference time-lapse for --image.", show_default=False)] = None,
    eval_dir: Annotated[Optional[Path], typer.Option(
        "--eval", help="Folder of time-lapse sequences for the held-out check (I = flipped mean frame, "
        "target = flipped frames).", show_default=False)] = None,
    borders: Annotated[Optional[Path], typer.Option(
        help="The shared data folder: error at the sky border of photos with hand-drawn masks, hard "
        "vs soft border (borders.py).", show_default=False)] = None,
    cross_scene: Annotated[Optional[Path], typer.Option(
        help="Data folder: night check with truth, each camera's brightest day frame animated with each "
        "--night-refs sequence, its darkest frames against the camera's real nights (cameras: --sequences "
        "or --split; default the test split's AMOS webcams).", show_default=False)] = None,
    sky_clips: Annotated[Optional[Path], typer.Option(
        help="Data folder: each sky clip (sky-clip-*, or --sequences) as the reference for --image at --size: "
        "does the photo's sky move with the clip's clouds, and stay still when they drift under 0.5 px/frame "
        "at 128 px.", show_default=False)] = None,
    night_refs: Annotated[str, typer.Option(help="Comma-separated reference sequences of --cross-scene.")] =
        "pyramid-webcam,tilde-frankfurt",
    sequences: Annotated[str, typer.Option(
        help="Only the --eval (and --cross-scene, --sky-clips) sequences whose name matches this pattern "
        "(comma-separated: any of them).")] = "*",
    split: Annotated[Optional[str], typer.Option(
        help="Only the --eval (and --cross-scene) sequences of the shipped weights' test or validation split, "
        "or test-2025 (the test split before the AMOS webcams) (recipe.py).",
        show_default=False)] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated methods to compare.")] =
        "timeflies,still,reinhard,reinhard-class",
    size: Annotated[int, typer.Option(help="Long side of outputs for the quality figures and --eval.")] = 256,
    stage_size: Annotated[int, typer.Option(help="Long side of the photo in the stage breakdown.")] = 512,
    max_frames: Annotated[Optional[int], typer.Option(
        help="Use at most this many frames of each reference / sequence.")] = None,
    vgg: Annotated[Optional[Path], typer.Option(
        help="torchvision's ImageNet VGG-19 (vgg19-dcbb9e9d.pth) for the Gram distance "
        "(default: the generator's own encoder).")] = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write every figure and the machine to this file.")] = None,
    plot_file: Annotated[Optional[Path], typer.Option("--plot", help="Write the plots to this PNG.")] = None,
    weights: WeightsOpt = None,
    compare_weights: Annotated[Optional[list[Path]], typer.Option(
        "--compare-weights", metavar="DIR", help="More weights folders to time in the same run (--res): a timeflies row "
        "each, e.g. the previous commit's weights/. Repeat for several.", show_default=False)] = None,
    segmenter: SegmenterOpt = "auto",
    seg_config: SegConfigOpt = None,
    seg_checkpoint: SegCheckpointOpt = None,
    batch: Annotated[int, typer.Option(help="Frames generated together (as animate).")] = 4,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Time frame generation per resolution and compute the paper's quality metrics,
    for timeflies and the training-free baselines."""
    from . import outputs
    from .benchmark import BenchmarkOptions, run
    from .fsutil import check_writable, removed_on_error
    from .report import plot, tables, write_json

    if split is not None:
        from .recipe import split_patterns
        sequences = split_patterns(split)
    sizes = _resolutions([*(res or []), *ctx.args])
    if not sizes and image is None and eval_dir is None and borders is None and cross_scene is None \
            and sky_clips is None:
        sizes = [256]
    V.device(device)
    V.integer("--frames", frames, 1, V.MAX_TIMED_FRAMES)
    V.integer("--repeats", repeats, 1, V.MAX_REPEATS)
    V.integer("--batch", batch, 1, V.MAX_BATCH)
    V.integer("--seed", seed, 0, V.MAX_SEED)
    V.integer("--size", size, V.MIN_METRIC_SIDE, why="SSIM's window is 11x11")
    V.integer("--stage-size", stage_size, 1)
    V.integer("--max-frames", max_frames, 2, V.MAX_FRAMES, why="the temporal metrics need 2 frames")
    for side in sizes:
        V.benchmark_memory(side, batch)
    if image or eval_dir:  # the sizes of the runs that are asked for
        V.animate_memory("--size", size, size, batch, network=(size, size))
    if image:
        V.animate_memory("--stage-size", stage_size, stage_size, batch, network=(stage_size, stage_size))
    names = V.method_list(methods)
    if compare_weights and not sizes:
        raise V.OptionError("--compare-weights adds speed rows: give --res too")
    if compare_weights and "timeflies" not in names:
        raise V.OptionError("--compare-weights times timeflies with other weights: keep timeflies in --methods")
    if plot_file and not (sizes or image or eval_dir):
        raise V.OptionError("--plot draws speed (--res), quality (--image) and --eval figures; "
                            "ask for one of them or drop --plot")
    opts = BenchmarkOptions(
        res=sizes, frames=frames, repeats=repeats, batch=batch, methods=names,
        image=str(image) if image else None, reference=str(reference) if reference else None, size=size,
        stage_size=stage_size, eval_dir=str(eval_dir) if eval_dir else None, sequences=sequences,
        borders_dir=str(borders) if borders else None, cross_dir=str(cross_scene) if cross_scene else None,
        sky_dir=str(sky_clips) if sky_clips else None,
        night_refs=tuple(r.strip() for r in night_refs.split(",") if r.strip()),
        max_frames=max_frames, vgg=str(vgg) if vgg else None, segmenter=segmenter, seg_config=seg_config,
        seg_checkpoint=str(seg_checkpoint) if seg_checkpoint else None, seed=seed,
        compare=tuple(str(w) for w in compare_weights or ()))
    # Before the run, not after minutes of it: the outputs must not destroy an input or an
    # existing file, and their folders must take files.
    outputs.check_outputs({"--json": json_file, "--plot": plot_file}, {
        "--image": image, "--reference": reference, "--eval": eval_dir, "--borders": borders, "--vgg": vgg, "--weights": weights,
        "--cross-scene": cross_scene, "--sky-clips": sky_clips,
        "--checkpoint": seg_checkpoint, "--config": seg_config})
    for option, path, suffix in (("--json", json_file, ".json"), ("--plot", plot_file, ".png")):
        if path:
            outputs.check_file(option, path, (suffix,), overwrite)
            check_writable(path)
    with _progress(quiet, "Benchmarking") as progress:
        result = run(str(weights) if weights else None, device, opts, progress)
    for table in tables(result):
        out.print(table)
    with removed_on_error() as written:  # both files or neither
        if json_file:
            write_json(result, json_file)
            written.append(json_file)
        if plot_file:
            plot(result, plot_file)
            written.append(plot_file)
    for path in written:
        out.print(f"Wrote {escape(str(path))}", soft_wrap=True)


def _resolutions(values: list[str]) -> list[int]:
    """'--res 64 128' arrives as ['64', '128'] (the second as an extra argument); '64,128' works too."""
    sizes = []
    for value in values:
        for part in str(value).split(","):
            if not part.strip().isdigit() or int(part) < 1:
                raise typer.BadParameter(f"'{part}' is not a resolution; give sides like --res 64 128 256",
                                         param_hint="--res")
            sizes.append(int(part))
    return sizes


class _progress:
    """Context manager giving a progress(done, total) callback drawn as a Rich bar with ETA
    (done and total in bytes with unit="bytes": sizes and a transfer rate)."""

    def __init__(self, quiet: bool, label: str, unit: str = "steps") -> None:
        self.quiet, self.label, self.unit = quiet, label, unit

    def __enter__(self):
        self.quiet = self.quiet or not err.is_terminal  # no bar in logs and pipes
        if self.quiet:
            return None
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
        counts = [DownloadColumn(), TransferSpeedColumn()] if self.unit == "bytes" else [MofNCompleteColumn()]
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), *counts,
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=err, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=None)
        return lambda done, total: self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if not self.quiet:
            self.bar.stop()


def _frame_size(result) -> str:
    """The frames' size; a video that had to be padded to even sides says so (and to what)."""
    size = f"{result.width}x{result.height}"
    stored = result.stored_size
    if stored and tuple(stored) != (result.width, result.height):
        size += f" (stored as {stored[0]}x{stored[1]}: H.264 and VP9 need even sides, so the last row/column is repeated)"
    return size


def run(args: list[str] | None = None) -> int:
    """Run the app on `args` (default sys.argv[1:]) and return the exit code: a usage error
    or a library error becomes one line on stderr and exit 2, Ctrl-C exit 130."""
    from .errors import TimefliesError

    try:
        code = app(args=args, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except _click_errors().NoArgsIsHelpError as e:
        out.print(escape(e.format_message()), soft_wrap=True)  # the help: what a bare `timeflies` asks for
        return 0
    except _click_errors().ClickException as e:  # an unknown option, a missing argument, a bad value
        names, ctx = [], getattr(e, "ctx", None)
        while ctx is not None and ctx.parent is not None:  # the command's path below the root
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        return _fail(f"{e.format_message()} (see {' '.join(['timeflies', *names])} --help)")
    except typer.Abort:
        return _interrupted()
    except TimefliesError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _interrupted()
    except OSError as e:  # a full disk the library met outside its own writers (atomic_path)
        from .fsutil import disk_full_error, is_disk_full

        if is_disk_full(e):
            return _fail(str(disk_full_error(e.filename, e)))
        raise


def _click_errors():
    """Click's exception module: typer vendors click from 0.20 on, earlier releases use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def _fail(message: str) -> int:
    # One line, however the message was built: newlines (a usage hint) become "; ".
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    err.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    return 2


def _interrupted() -> int:
    err.print("interrupted; no partial output was kept")
    return 130


def main() -> None:
    """Entry point of the `timeflies` script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
