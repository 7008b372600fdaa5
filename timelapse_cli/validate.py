"""Checks of option values, made where the command line hands them to the library.

Every check is a small pure function that returns the value it accepts or raises
OptionError with one line naming the option, the value, what is allowed and why. The
command line runs them before any input is read, so the library below never sees a
value it cannot handle: a range, a finite number, a device this machine has, a size
that fits in this machine's memory.

Memory: the working memory of a command grows with its pixels. The estimates below are
peak resident memory per pixel, measured on this project's CPU build (README, "Limits"),
with a margin; a size is refused when its estimate exceeds this machine's physical
memory, and the error names the largest size that fits.
"""
from __future__ import annotations

import math
import os
from fractions import Fraction

from .errors import OptionError

# Upper bounds of counts and times: far past any real use, low enough that a typo (an
# extra digit or three) is an error instead of a run that never ends.
MAX_FRAMES = 100_000            # output frames (an hour at 25 fps is 90,000)
MAX_FPS = 1000                  # a higher rate is a container artefact (video.py reads so)
MIN_FPS = Fraction(1, 3600)     # a frame an hour
MAX_STEPS = 10_000_000          # training steps, epochs, checkpoint and validation intervals
MAX_MINUTES = 60 * 24 * 366     # a year
MAX_REPEATS = 1000
MAX_SEED = 2**32 - 1            # numpy and torch both take 0..2**32-1 seeds
MAX_WIDTH = 4.0                 # channel width multiplier of a new model
MAX_MOTION_SCALE = 100.0        # times the reference's cloud speed
MAX_LOSS_WEIGHT = 1e6
MAX_NOISE_SIGMA = 100.0
MAX_BATCH = 256                 # frames generated together
MAX_TIMED_FRAMES = 1000         # frames per timed benchmark run (all of them are in memory)
MAX_CLIP = 1000                 # frames per training clip
MAX_CLIPS = 1000                # clips per optimiser step
MAX_AFFINE_SMOOTH = 1024        # block of the smoothed colour matrices, pixels
MIN_METRIC_SIDE = 11            # SSIM's Gaussian window is 11x11: the metrics need both sides >= 11

# Peak memory, bytes = BASE + per pixel * pixels, about 1.5-2x what was measured with
# /usr/bin/time on this project's 2-core CPU (README, "Limits"):
# animate, the network at the output's size: 0.88 GB at 512x512 batch 4, 2.26 GB at
# 1024x1024 batch 4, 1.03 GB at 1024x1024 batch 1: ~400 B per pixel and batched frame,
# ~200 B per pixel besides; with the network at its working size (256), the rest at the
# output's: 2.43 GB at 2048x1369, 5.95 GB at 4096x2738 (batch 1): 475-650 B per pixel;
# benchmark --res: 1.32 GB at 256, 3.71 GB at 512 (all rows): ~12.4 kB per pixel;
# train (fast recipe, clips of 8 + 2 frames): 0.61-0.63 GB at 128 and 256 px.
BASE_BYTES = 600 * 2**20                   # the interpreter, torch, the model, the reference
ANIMATE_BYTES_PER_PIXEL = 300              # per output pixel and frame of a batch: the full-size stages
ANIMATE_FIXED_PER_PIXEL = 700              # per output pixel: photo, labels, sky, transfer base, lamps
NETWORK_BYTES_PER_PIXEL = 600              # per pixel the network works at and frame (width 0.25)
BENCHMARK_BYTES_PER_PIXEL = 16_000         # per pixel of --res with the paper-size row (batch 4)
BENCHMARK_LIGHT_BYTES_PER_PIXEL = 1_000    # per pixel of --res without it (batches <= 4 Mpx)
TRAIN_BYTES_PER_PIXEL = 2_000              # per training pixel and clip frame, at width 1.0


# ---------------------------------------------------------------- numbers


def integer(option: str, value: int | None, low: int | None = None, high: int | None = None,
            why: str = "") -> int | None:
    """`value` (None passes) if low <= value <= high."""
    if value is None:
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        raise OptionError(f"{option} {value} is out of range; give {_range(low, high)}{_why(why)}")
    return value


def number(option: str, value: float | None, low: float | None = None, high: float | None = None,
           above: float | None = None, why: str = "") -> float | None:
    """A finite `value` (None passes) with low <= value <= high and value > above."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise OptionError(f"{option} {value} is not a finite number; give {_range(low, high, above)}")
    if ((low is not None and value < low) or (high is not None and value > high)
            or (above is not None and value <= above)):
        raise OptionError(f"{option} {value:g} is out of range; give {_range(low, high, above)}{_why(why)}")
    return value


def rate(option: str, value: Fraction | None) -> Fraction | None:
    """A frame rate between MIN_FPS and MAX_FPS (None passes)."""
    if value is not None and not MIN_FPS <= value <= MAX_FPS:
        raise OptionError(f"{option} {float(value):g} is out of range; give a frame rate from 1/3600 "
                          f"(a frame an hour) to {MAX_FPS}")
    return value


def choice(option: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """`value` (None passes) if it is one of `choices`."""
    if value is not None and value not in choices:
        raise OptionError(f"unknown {option} '{value}'; use {' or '.join(choices)}")
    return value


def method_list(value: str) -> tuple[str, ...]:
    """--methods 'a,b' -> ('a', 'b'), each a known method, at least one."""
    from .methods import METHODS  # torch: only once the command runs

    names = tuple(m.strip() for m in value.split(",") if m.strip())
    if not names:
        raise OptionError(f"--methods '{value}' names no method; give any of: {', '.join(METHODS)}")
    for name in names:
        if name not in METHODS:
            raise OptionError(f"unknown method '{name}' in --methods; use any of: {', '.join(METHODS)}")
    return names


def metric_size(what: str, width: int, height: int) -> None:
    """The quality metrics need both sides of a frame >= MIN_METRIC_SIDE."""
    if min(width, height) < MIN_METRIC_SIDE:
        need = math.ceil(MIN_METRIC_SIDE * max(width, height) / max(1, min(width, height)))
        raise OptionError(f"{what} is {width}x{height} at this --size; the quality metrics need both sides "
                          f"at least {MIN_METRIC_SIDE} px (SSIM's window): give --size {need} or more")


def train_options(opts) -> None:
    """What only the whole set of training options (recipe and overrides) can tell."""
    weights = vars(opts.weights)
    if not any(weights.values()):
        raise OptionError("every loss weight is 0, so nothing would be trained; give one a weight, e.g. "
                          "--w-log-mse 1")
    size = opts.size if isinstance(opts.size, tuple) else (opts.size, opts.size)  # a long side: at most square
    train_memory(size[0], size[1], opts.clip + 2, opts.width)


def _range(low, high, above=None) -> str:
    if above is not None:
        return f"a number above {_num(above)}" + (f" and at most {_num(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f"{_num(low)}..{_num(high)}"
    if low is not None:
        return f"{_num(low)} or more"
    return f"{_num(high)} or less"


def _num(x) -> str:
    """Whole numbers in full (a seed's limit is 4294967295, not 4.29497e+09)."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _why(why: str) -> str:
    return f" ({why})" if why else ""


# ---------------------------------------------------------------- devices


def device(name: str) -> str:
    """A device this machine has: auto, cpu, cuda or cuda:N (when CUDA is there), mps (when
    PyTorch was built with it and the machine has it). Other torch device types (meta,
    xpu, ...) do not run timeflies' pipeline."""
    if name in ("auto", "cpu"):
        return name
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise OptionError(f"--device {name} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return name
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError(f"--device {name}: MPS (Apple GPUs) is not available on this machine; "
                              "use --device cpu")
        return name
    raise OptionError(f"--device {name} cannot run timeflies; use auto, cpu, cuda or cuda:N")


# ---------------------------------------------------------------- memory


def machine_memory() -> int:
    """This machine's physical memory in bytes (the limit every size is checked against)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30  # a platform without sysconf: assume a common laptop


def fits_memory(option: str, what: str, need: float, largest: str) -> None:
    """OptionError if `need` bytes exceed this machine's memory; `largest` says what fits."""
    have = machine_memory()
    if need > have:
        raise OptionError(f"{option}: {what} needs about {_gb(need)} of memory, more than this machine's "
                          f"{_gb(have)}; {largest}")


def largest_side(bytes_per_pixel: float) -> int:
    """The largest side whose square (pixels = side**2) fits in this machine's memory."""
    return max(0, int(math.sqrt(max(0, machine_memory() - BASE_BYTES) / bytes_per_pixel)))


def animate_memory(option: str, width: int, height: int, batch: int, model_width: float = 0.25,
                   network: tuple[int, int] | None = None) -> None:
    """An animate run at width x height, `batch` frames at a time; network (h, w): the size
    the model's network works at (None: no network)."""
    net = network[0] * network[1] if network else 0
    need = (BASE_BYTES + (ANIMATE_FIXED_PER_PIXEL + ANIMATE_BYTES_PER_PIXEL * batch) * width * height
            + NETWORK_BYTES_PER_PIXEL * batch * max(1.0, model_width / 0.25) * net)
    per_pixel = (need - BASE_BYTES) / (width * height)
    fits_memory(option, f"a {width}x{height} output in batches of {batch}", need,
                f"the largest square output that fits is about {largest_side(per_pixel)}x{largest_side(per_pixel)}"
                " (lower --size/--max-size or --batch)")


def full_size_rows_fit(res: int, batch: int) -> bool:
    """Whether benchmark's rows whose network works at the output's size (paper-size, and
    weights without a working size) fit in memory at res x res."""
    return BASE_BYTES + BENCHMARK_BYTES_PER_PIXEL * max(batch, 4) / 4 * res * res <= machine_memory()


def benchmark_memory(res: int, batch: int) -> None:
    """The light rows (the shipped model, the baselines) must fit; paper-size is left out
    where it does not (full_size_rows_fit)."""
    per_pixel = BENCHMARK_LIGHT_BYTES_PER_PIXEL
    fits_memory("--res", f"{res}x{res}", BASE_BYTES + per_pixel * res * res,
                f"the largest --res that fits is about {largest_side(per_pixel)}")


def train_memory(width: int, height: int, frames: int, model_width: float) -> None:
    per_pixel = TRAIN_BYTES_PER_PIXEL * frames * max(model_width, 0.25)
    need = BASE_BYTES + per_pixel * width * height
    side = largest_side(per_pixel)
    fits_memory("--size", f"training at {width}x{height} on clips of {frames} frames (width {model_width:g})",
                need, f"at this --clip and --width the largest square --size that fits is about {side}")


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"
