"""Moving skies (motion.py, sky.py) and smooth retiming (retime.py), on small synthetic scenes.

A scene: a photo with a textured sky over a textured ground, label maps in the 8-group
format (so the sky is known without a segmenter), and a reference folder whose sky
texture drifts by a known step per frame over a still ground.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from timelapse_cli import retime
from timelapse_cli.animation import AnimateOptions, Animator
from timelapse_cli.labels import encode_groups_rgb
from timelapse_cli.metrics import e_tmp
from timelapse_cli.motion import mean_flow, reference_sky_flow
from timelapse_cli.skyloop import SkyMotion, fill_sky, loop_period
from timelapse_cli.video import FrameReader

SKY, GROUND = 5, 2


def texture(h: int, w: int, seed: int, smooth: float = 2.0) -> np.ndarray:
    """(h, w) float texture in 0..1 with features a few pixels wide (trackable by optical flow)."""
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), smooth)
    return (noise - noise.min()) / (noise.max() - noise.min())


def sky_frames(n: int, h: int, w: int, horizon: int, step: tuple[float, float], dark: bool = False):
    """n (h, w, 3) uint8 frames: a sky texture above `horizon` drifting by `step` px per frame."""
    big = texture(h + 80, w + 80, seed=1)
    ground = texture(h, w, seed=2)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, step[0] * t - 40], [0, 1, step[1] * t - 40]])
        sky = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lum = np.where(np.arange(h)[:, None] < horizon, 0.45 + 0.5 * sky, 0.1 + 0.3 * ground)
        if dark:
            lum = lum * 0.1
        rgb = np.stack([lum * 0.8, lum * 0.9, lum], -1)
        frames.append((rgb * 255).round().clip(0, 255).astype(np.uint8))
    return frames


def group_map(h: int, w: int, horizon: int | None) -> np.ndarray:
    ids = np.full((h, w), GROUND)
    if horizon:
        ids[:horizon] = SKY
    return ids


def make_scene(tmp: Path, step=(1.0, -0.4), n: int = 12, size=(64, 48), photo_sky: bool = True,
               dark: bool = False) -> dict:
    w, h = size
    ref = tmp / "ref"
    ref.mkdir()
    for t, frame in enumerate(sky_frames(n, h, w, h // 2, step, dark)):
        Image.fromarray(frame).save(ref / f"{t:03d}.png")
    photo_h, photo_w = 96, 128
    photo = sky_frames(1, photo_h, photo_w, photo_h // 2, (0, 0))[0]
    if not photo_sky:
        photo = (np.stack([texture(photo_h, photo_w, 5)] * 3, -1) * 200).astype(np.uint8)
    Image.fromarray(photo).save(tmp / "photo.png")
    Image.fromarray(encode_groups_rgb(group_map(photo_h, photo_w, photo_h // 2 if photo_sky else None))) \
        .save(tmp / "photo_seg.png")
    Image.fromarray(encode_groups_rgb(group_map(h, w, h // 2))).save(tmp / "ref_seg.png")
    return dict(photo=tmp / "photo.png", ref=ref, image_seg=tmp / "photo_seg.png", video_seg=tmp / "ref_seg.png")


def run(scene: dict, out: Path, method: str = "reinhard-class", weights=None, **options):
    result = Animator(weights, "cpu").animate(
        scene["photo"], scene["ref"], out,
        AnimateOptions(image_seg=scene["image_seg"], video_seg=scene["video_seg"], method=method, **options))
    frames = np.stack(list(FrameReader(out))) if out.is_dir() else None
    return result, frames


def uniform(h: int, w: int, step: tuple[float, float]) -> torch.Tensor:
    """(h, w, 2) field: every pixel moves by step."""
    return torch.tensor(step, dtype=torch.float32).expand(h, w, 2)


def angle(v) -> float:
    return math.degrees(math.atan2(v[1], v[0]))


# ---------------------------------------------------------------- the reference's motion


def test_velocity_of_a_drifting_sky():
    frames = sky_frames(10, 48, 64, 24, (1.5, -0.5))
    v = reference_sky_flow(frames, group_map(48, 64, 24) == SKY)
    assert v is not None and v.pairs >= 8
    assert abs(v.dx * 64 - 1.5) < 0.2 and abs(v.dy * 64 + 0.5) < 0.2


@pytest.mark.parametrize("case", ["still", "night", "no-sky"])
def test_no_velocity_when_nothing_can_be_tracked(case):
    frames = sky_frames(10, 48, 64, 24, (0.0, 0.0) if case == "still" else (1.5, 0.0), dark=case == "night")
    sky = group_map(48, 64, None if case == "no-sky" else 24) == SKY
    assert reference_sky_flow(frames, sky) is None


def test_a_jump_faster_than_clouds_drift_is_no_motion(monkeypatch):
    from timelapse_cli import motion

    frames = sky_frames(10, 48, 64, 24, (4.5, 0.0))            # 0.07 of the width per frame
    sky = group_map(48, 64, 24) == SKY
    monkeypatch.setattr(motion, "MAX_SPEED", 1.0)
    assert reference_sky_flow(frames, sky) is not None     # the flow follows it ...
    monkeypatch.setattr(motion, "MAX_SPEED", 0.05)
    assert reference_sky_flow(frames, sky) is None         # ... but it is too fast for clouds


# ---------------------------------------------------------------- moving the photo's sky


def test_sky_motion_keeps_the_ground_and_loops():
    alpha = torch.zeros(32, 40)
    alpha[:16] = 1
    photo = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    motion = SkyMotion(alpha, uniform(32, 40, (1.0, 0.5)), period=8)
    moved = motion.move(photo, [0.0, 3.0, 8.0])
    assert torch.equal(moved[:, :, 16:], photo.expand(3, -1, -1, -1)[:, :, 16:])  # ground untouched
    assert not torch.allclose(moved[0, :, :16], moved[1, :, :16])                  # the sky moves
    assert torch.allclose(moved[0], moved[2], atol=1e-6)                           # one period later: the same


def test_fill_sky_keeps_sky_and_fills_the_rest_with_sky_colours():
    image = torch.zeros(1, 3, 16, 16)
    image[:, 2, :8] = 1.0       # blue sky on top
    image[:, 0, 8:] = 1.0       # red ground below
    weight = torch.zeros(16, 16)
    weight[:8] = 1
    filled = fill_sky(image, weight)
    assert torch.allclose(filled[:, :, :8], image[:, :, :8])
    assert filled[0, 0, 8:].max() < 1e-4 and filled[0, 2, 8:].min() > 0.99  # no red leaks in


def test_loop_period_fits_the_loop():
    period = loop_period(0.01, total=100)
    assert 100 / period == round(100 / period)
    assert 8 <= loop_period(1.0) <= loop_period(1e-6) <= 240


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("method", ["reinhard-class", "timeflies"])
def test_photo_sky_follows_the_reference_and_ground_stays(method, tmp_path, tiny_weights):
    """Acceptance 1 on a small case: the output's sky flows within 35 degrees of the
    reference's and at >= 0.3 px/frame; the ground under 0.15 px/frame."""
    scene = make_scene(tmp_path, step=(1.0, -0.4), n=16)
    result, frames = run(scene, tmp_path / "out/", method, tiny_weights if method == "timeflies" else None)
    assert "clouds moving" in result.sky and result.stages["sky"] > 0
    h = frames.shape[1]
    rows = np.arange(h)[:, None] * np.ones((1, frames.shape[2]))
    sky, ground = rows < h // 2 - 6, rows > h // 2 + 6
    vector, _ = mean_flow(list(frames), sky)
    _, ground_speed = mean_flow(list(frames), ground)
    reference = angle((1.0, -0.4))
    assert abs((angle(vector) - reference + 180) % 360 - 180) < 35
    assert np.hypot(*vector) >= 0.3
    assert ground_speed < 0.15


def test_motion_none_and_motion_scale(tmp_path):
    scene = make_scene(tmp_path, step=(1.0, 0.0), n=8)
    still, frames_still = run(scene, tmp_path / "a/", motion="none")
    assert "--motion none" in still.sky
    _, frames_hard = run(scene, tmp_path / "b/", motion="none", matte="hard")
    slow, frames_slow = run(scene, tmp_path / "c/", motion_scale=0.5)
    fast, frames_fast = run(scene, tmp_path / "d/", motion_scale=1.0)
    speed = lambda note: float(note.split("moving ")[1].split(" px")[0])  # noqa: E731
    assert speed(slow.sky) == pytest.approx(speed(fast.sky) / 2, rel=0.02)
    # Without motion, the ground is that of the moving runs exactly.
    assert np.array_equal(frames_still[:, 60:], frames_fast[:, 60:])


def test_without_sky_or_motion_the_output_is_unchanged(tmp_path):
    """Acceptance 5: a photo without sky, or a reference whose sky does not move, gives the
    same bytes as with --motion none; without sky also the same as --matte hard."""
    no_sky = make_scene(tmp_path / "a", photo_sky=False) if (tmp_path / "a").mkdir() is None else None
    default, f1 = run(no_sky, tmp_path / "a" / "o1/")
    _, f2 = run(no_sky, tmp_path / "a" / "o2/", motion="none", matte="hard")
    assert default.sky == "no sky in the photo" and np.array_equal(f1, f2)

    still_ref = make_scene(tmp_path / "b", step=(0.0, 0.0)) if (tmp_path / "b").mkdir() is None else None
    default, f1 = run(still_ref, tmp_path / "b" / "o1/")
    _, f2 = run(still_ref, tmp_path / "b" / "o2/", motion="none")
    assert "sky still" in default.sky and np.array_equal(f1, f2)


# ---------------------------------------------------------------- retiming


def test_timeline():
    assert retime.timeline(4, 4) == [0, 1, 2, 3]
    assert retime.timeline(7, 3) == pytest.approx([0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert retime.timeline(6, 4, loop=True) == pytest.approx([0, 1, 2, 3, 2, 1])
    assert retime.default_frames(4, loop=True) == 6
    assert retime.motion_clock([0, 1, 2, 3, 2, 1], loop=True) == pytest.approx([0, 1, 2, 3, 4, 5])


def test_windows_interpolate_between_reference_frames():
    frames = [np.full((4, 6, 3), 40 * i, np.uint8) for i in range(4)]
    got = list(retime.reference_windows(iter(frames), [0, 1.5, 3], (6, 4)))
    assert [tuple(w[:, 0, 0].mul(255).round().tolist()) for w in got] == \
        [(0,) * 3 + (0,) * 3 + (0,) * 3, (0,) * 3 + (20,) * 3 + (60,) * 3, (40,) * 3 + (80,) * 3 + (120,) * 3]
    # Not increasing (a loop): served from kept frames, same values.
    back = list(retime.reference_windows(iter(frames), [3, 1.5], (6, 4)))
    assert torch.equal(back[0], got[2]) and torch.equal(back[1], got[1])


def test_frames_4n_has_no_repeats_and_a_quarter_of_the_change(tmp_path):
    """Acceptance 3: --frames 4N gives no two identical consecutive frames, and E_tmp per
    output frame about a quarter of the N-frame output's."""
    scene = make_scene(tmp_path, step=(0.0, 0.0), n=6)
    ref = scene["ref"]
    for t, file in enumerate(sorted(ref.iterdir())):  # light changes a lot from frame to frame
        frame = np.asarray(Image.open(file)).astype(np.float32) * (0.4 + 0.25 * (t % 3))
        Image.fromarray(frame.clip(0, 255).astype(np.uint8)).save(file)
    _, n_frames = run(scene, tmp_path / "n/")
    _, m_frames = run(scene, tmp_path / "m/", frames=24)
    assert len(n_frames) == 6 and len(m_frames) == 24
    assert all(not np.array_equal(a, b) for a, b in zip(m_frames, m_frames[1:]))
    clip = lambda f: torch.from_numpy(f).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    ratio = e_tmp(clip(m_frames)) / e_tmp(clip(n_frames))
    assert 0.2 < ratio < 0.35


def test_loop_ends_where_it_starts(tmp_path):
    scene = make_scene(tmp_path, step=(1.0, 0.0), n=6)
    result, frames = run(scene, tmp_path / "o/", loop=True)
    assert len(frames) == 10 and result.frames == 10
    # The frame after the last would be frame 0: the last step is as small as any other.
    steps = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    wrap = np.abs(frames[-1].astype(int) - frames[0]).mean()
    assert wrap <= 1.5 * max(steps)


def test_sky_motion_with_nothing_to_move_returns_the_images():
    photo = torch.rand(1, 3, 8, 8)
    moved = SkyMotion(torch.zeros(8, 8), uniform(8, 8, (1.0, 0.0)), period=8).move(photo, [0.0, 1.0])
    assert moved.shape == (2, 3, 8, 8) and torch.equal(moved[1], photo[0])
