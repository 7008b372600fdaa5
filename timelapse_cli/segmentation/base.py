"""The segmenter interface, a name registry, and loaded-model reuse.

A segmenter turns an RGB photo into an (H, W) map of class ids, and a static-camera video
into one map for the whole video. Ids are in the segmenter's `id_space`:
- "groups": the 8 groups of method.md, 0..7 in labels.GROUP_NAMES order (sky = 5);
- "ade20k": ADE20K ids, 1..150 for the 150 classes and 0 for "other" (as ADE20K's own
  annotation PNGs), which `ade20k.to_groups` maps onto the 8 groups.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Iterable

import numpy as np

from ..errors import TimefliesError

SKY = 5  # labels.GROUP_NAMES.index("sky")


class Segmenter:
    name: ClassVar[str]
    id_space: ClassVar[str] = "groups"

    @property
    def description(self) -> str:
        """Which segmenter and which classes, for a run's summary."""
        return f"{self.name} segmenter"

    def segment_image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) int64 class ids."""
        raise NotImplementedError

    def segment_video(self, frames: Iterable[np.ndarray], count: int) -> np.ndarray:
        """One (H, W) map for a static-camera video of `count` frames.

        Default: segment up to `samples` evenly spaced frames and take a per-pixel vote,
        each frame weighted by its brightness, so that night frames (where little can be
        told apart) count less than day frames.
        """
        picks = sample_indices(count, 8)
        votes: dict[int, np.ndarray] = {}
        total = None
        for t, frame in enumerate(frames):
            if t not in picks:
                continue
            ids = self.segment_image(frame)
            weight = 0.05 + float(frame.mean()) / 255.0
            for k in np.unique(ids):
                votes.setdefault(int(k), np.zeros(ids.shape, np.float32))
                votes[int(k)] += weight * (ids == k)
            total = ids.shape
        if total is None:
            raise TimefliesError("the video has no frames to segment")
        keys = sorted(votes)
        return np.asarray(keys, np.int64)[np.argmax(np.stack([votes[k] for k in keys]), 0)]


def sample_indices(count: int, samples: int) -> set[int]:
    """Up to `samples` evenly spaced frame indices of a `count`-frame video."""
    return set(np.linspace(0, max(count - 1, 0), min(count, samples)).round().astype(int).tolist())


# name -> factory(**options) -> Segmenter. Backends register themselves on import.
_REGISTRY: dict[str, Callable[..., Segmenter]] = {}
_LOADED: dict[tuple, Segmenter] = {}


def register(name: str):
    def wrap(factory):
        _REGISTRY[name] = factory
        return factory
    return wrap


def get_segmenter(name: str, **options) -> Segmenter:
    """A segmenter by name, loaded once per (name, options) and kept for reuse."""
    from . import builtin, mmseg  # noqa: F401  (registers the backends)

    if name not in _REGISTRY:
        raise TimefliesError(f"unknown segmenter '{name}'; choose one of {', '.join(sorted(_REGISTRY))}")
    key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
    if key not in _LOADED:
        _LOADED[key] = _REGISTRY[name](**options)
    return _LOADED[key]
