"""Device choice and other run-time settings, kept out of the model code."""
from __future__ import annotations

import torch

from .errors import TimefliesError


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TimefliesError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TimefliesError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
    return device


# Output pixels generated together at most (4 frames of 1024 x 1024): the full-size stages
# (the transfer, the colour matrices' application, the lamps) hold a few float32 copies of
# every frame of a batch, so a 4K frame goes alone.
BATCH_PIXELS = 4 * 1024 * 1024


def frames_per_batch(batch: int, width: int, height: int) -> int:
    """`batch`, lowered for large frames to at most BATCH_PIXELS output pixels (at least 1)."""
    return max(1, min(batch, BATCH_PIXELS // max(1, width * height)))


def tune_allocator() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the system.

    Frame generation allocates the same large tensors (tens of MB) for every batch. By
    default glibc serves each with a fresh mmap whose pages fault in on first touch, and
    that costs more than the arithmetic: elementwise passes ran 2-8x slower on this CPU.
    With mmap off and a high trim threshold, freed blocks are reused. Process-wide, Linux
    with glibc only, and harmless elsewhere (a no-op).
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
        libc.mallopt(m_mmap_max, 0)
        libc.mallopt(m_trim_threshold, 2**31 - 1)
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Return freed heap memory to the system (glibc malloc_trim), e.g. after a stage whose
    buffers are no longer needed, so that they do not add to the next stage's peak."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
