"""The built-in sky segmenter: synthetic scenes with a known sky, scenes without sky, the
output contract, streamed videos, and the measured accuracy on real data."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import needs_data
from timelapse_cli.errors import TimefliesError
from timelapse_cli.segmentation.base import SKY, get_segmenter
from timelapse_cli.segmentation.builtin import VIDEO_SAMPLES, BuiltinSegmenter, sample_frames


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def texture(rng, h: int, w: int, scale: float) -> np.ndarray:
    """(h, w) float noise with some spatial structure (like grass, gravel, leaves)."""
    coarse = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1))
    coarse = np.kron(coarse, np.ones((4, 4)))[:h, :w]
    return scale * (0.6 * rng.normal(0, 1, (h, w)) + 0.4 * coarse)


def landscape(seed: int = 0, h: int = 240, w: int = 320):
    """(h, w, 3) uint8 blue-gradient sky over textured green/brown ground with a jagged
    horizon (a ridge and a few towers), and its (h, w) bool sky mask."""
    rng = np.random.default_rng(seed)
    x = np.arange(w)
    horizon = (0.45 * h + 0.08 * h * np.sin(x / 23.0) + 0.04 * h * np.sin(x / 7.0 + 1)
               + rng.integers(-3, 4, w)).astype(int)
    for left in rng.integers(0, w - 12, 3):                     # towers rising into the sky
        horizon[left:left + 10] = int(0.2 * h)
    rows = np.arange(h)[:, None]
    sky = rows < horizon[None, :]
    t = rows / h
    sky_rgb = np.stack([70 + 120 * t, 120 + 90 * t, 200 + 40 * t], -1) * np.ones((1, w, 1))
    ground_rgb = np.where((x // 40) % 2 == 0, 1, 0)[None, :, None] * np.array([40, 20, -30]) \
        + np.array([80, 110, 50])                               # green and brown patches
    ground_rgb = ground_rgb + texture(rng, h, w, 25)[..., None]
    img = np.where(sky[..., None], sky_rgb + rng.normal(0, 1.5, (h, w, 3)), ground_rgb)
    return np.clip(img, 0, 255).astype(np.uint8), sky


@pytest.fixture(scope="module")
def seg():
    return BuiltinSegmenter()


def test_registered_and_groups(seg):
    assert isinstance(get_segmenter("builtin"), BuiltinSegmenter)
    assert seg.name == "builtin" and seg.id_space == "groups"


def test_synthetic_landscape_sky_found(seg):
    img, truth = landscape()
    ids = seg.segment_image(img)
    assert ids.shape == truth.shape and ids.dtype == np.int64
    assert set(np.unique(ids).tolist()) <= {0, SKY}
    assert iou(ids == SKY, truth) > 0.9


def test_textured_everywhere_has_no_sky(seg):
    rng = np.random.default_rng(1)
    h, w = 240, 320
    base = np.array([90, 100, 60]) + texture(rng, h, w, 40)[..., None] + rng.normal(0, 12, (h, w, 3))
    ids = seg.segment_image(np.clip(base, 0, 255).astype(np.uint8))
    assert (ids == SKY).mean() < 0.02


def test_indoor_scene_has_no_sky(seg):
    """A warm-white wall lit from above with a picture on it, over a wooden floor and a sofa:
    smooth and bright at the top like an overcast sky, but not the light source's colour."""
    rng = np.random.default_rng(2)
    h, w = 240, 320
    rows = np.arange(h)[:, None, None]
    img = np.zeros((h, w, 3)) + np.array([226, 220, 208]) - 0.08 * rows   # wall, darker lower down
    img[40:100, 120:200] = np.array([60, 50, 45])                        # picture frame
    img[48:92, 128:192] = np.array([150, 90, 60]) + rng.normal(0, 20, (44, 64, 3))
    floor = np.array([150, 110, 70]) + texture(rng, h - 150, w, 18)[..., None]
    floor += 25 * np.sin(np.arange(w) / 3.0)[None, :, None]              # planks
    img[150:] = floor
    img[120:190, 40:280] = np.array([70, 75, 90]) + rng.normal(0, 6, (70, 240, 3))   # sofa
    ids = seg.segment_image(np.clip(img, 0, 255).astype(np.uint8))
    assert (ids == SKY).mean() < 0.05


@pytest.mark.parametrize("shape", [(1, 1), (2, 3, 3), (37, 53, 3), (20, 300, 4), (64, 48)])
def test_odd_shapes_and_channels(seg, shape):
    rng = np.random.default_rng(3)
    ids = seg.segment_image(rng.integers(0, 256, shape, dtype=np.uint8))
    assert ids.shape == shape[:2] and ids.dtype == np.int64
    assert set(np.unique(ids).tolist()) <= {0, SKY}


def test_uniform_image_is_not_an_error(seg):
    ids = seg.segment_image(np.full((24, 32, 3), (90, 140, 200), np.uint8))
    assert ids.shape == (24, 32) and set(np.unique(ids).tolist()) <= {0, SKY}


def test_not_an_image_is_a_user_error(seg):
    with pytest.raises(TimefliesError):
        seg.segment_image(np.zeros((4, 4, 2), np.uint8))


def synthetic_video(count: int, h: int = 120, w: int = 160):
    """Static camera, night to day: the sky follows the light with clouds drifting across,
    the ground has fixed texture and windows lit only at night. Yields frames lazily."""
    img, truth = landscape(seed=4, h=h, w=w)
    rng = np.random.default_rng(5)
    windows = np.zeros((h, w), bool)
    windows[rng.integers(h // 2 + 10, h, 40), rng.integers(0, w, 40)] = True
    cloud = np.exp(-((np.arange(w)[None, :] - 40.0) ** 2 / 300.0 + (np.arange(h)[:, None] - 20.0) ** 2 / 60.0))

    def frames():
        for t in range(count):
            light = 0.15 + 0.85 * min(1.0, t / (0.6 * count))
            frame = img.astype(np.float64) * light
            shifted = np.roll(cloud, int(t * w / count), axis=1)
            frame[truth] += (150 * shifted[..., None] * light)[truth]
            if light < 0.4:
                frame[windows] = (255, 220, 120)
            yield np.clip(frame, 0, 255).astype(np.uint8)
    return frames, truth


def test_video_streamed_sky(seg):
    frames, truth = synthetic_video(12)
    ids = seg.segment_video(frames(), 12)
    assert ids.shape == truth.shape and ids.dtype == np.int64
    assert iou(ids == SKY, truth) > 0.9


@pytest.mark.parametrize("announced", [0, 5, 1000])
def test_video_with_a_wrong_frame_count(seg, announced):
    frames, truth = synthetic_video(8)
    ids = seg.segment_video(frames(), announced)
    assert ids.shape == truth.shape
    assert set(np.unique(ids).tolist()) <= {0, SKY}


def test_video_without_frames_is_a_user_error(seg):
    with pytest.raises(TimefliesError):
        seg.segment_video(iter([]), 10)


def test_sampling_keeps_few_frames_and_streams():
    def frames():
        for t in range(500):
            yield np.full((30, 40, 3), t % 256, np.uint8)
    for announced in (500, 0, 100):
        stack, shape = sample_frames(frames(), announced, VIDEO_SAMPLES)
        assert shape == (30, 40) and 1 <= len(stack) <= VIDEO_SAMPLES
        assert stack.dtype == np.uint8 and stack.shape[1:] == (384, 512, 3)
    stack, _ = sample_frames(frames(), 500, VIDEO_SAMPLES)
    levels = stack[:, 0, 0, 0].astype(int)
    assert levels[0] == 0 and len(stack) == VIDEO_SAMPLES     # the first, evenly spread


# ---------------------------------------------------------------- real data
# Measured (see the module docstring): frame 0120 photo IoU 0.992, video IoU 0.991.

ROOFTOP = ("timelapse", "arizona-rooftop")


def rooftop_truth():
    mask = np.asarray(Image.open(needs_data(*ROOFTOP, "sky_mask.png")))
    return mask == 0      # the README says white = sky, but the sky (top) is black


@pytest.mark.slow
def test_real_rooftop_photo(seg):
    truth = rooftop_truth()
    rgb = np.asarray(Image.open(needs_data(*ROOFTOP, "0120.jpg")))
    assert iou(seg.segment_image(rgb) == SKY, truth) >= 0.97


@pytest.mark.slow
def test_real_rooftop_video(seg):
    truth = rooftop_truth()
    files = sorted(needs_data(*ROOFTOP).glob("0*.jpg"))   # not sky_mask.png
    frames = (np.asarray(Image.open(f)) for f in files)
    assert iou(seg.segment_video(frames, len(files)) == SKY, truth) >= 0.97


@pytest.mark.slow
def test_real_studio_photo_has_no_sky(seg):
    rgb = np.asarray(Image.open(needs_data("stills", "dpst", "in33.jpg")).convert("RGB"))
    assert (seg.segment_image(rgb) == SKY).mean() < 0.02
