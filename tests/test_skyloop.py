"""Moving the photo's sky (skyloop.py): no mirrored texture at the frame's borders, a field
that moves each part of the sky its own way, and a cross-fade that keeps the clouds'
contrast; on small synthetic photos."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from timelapse_cli.motion import SkyFlow, mean_flow
from timelapse_cli.sky import photo_field
from timelapse_cli.skyloop import SkyMotion

H, W, HORIZON = 96, 128, 64


def sky_photo(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, H, W) photo whose textured sky touches the top, left and right borders above a
    flat ground, and its (H, W) sky alpha."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((H, W)).astype(np.float32), (0, 0), 2)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    photo = torch.from_numpy(np.stack([noise * 0.5 + 0.4] * 3))[None]
    photo[:, :, HORIZON:] = 0.2
    alpha = torch.zeros(H, W)
    alpha[:HORIZON] = 1
    return photo, alpha


def uniform(step) -> torch.Tensor:
    return torch.tensor(step, dtype=torch.float32).expand(H, W, 2)


def detail(gray: np.ndarray) -> np.ndarray:
    g = gray.astype(np.float32)
    return g - cv2.GaussianBlur(g, (0, 0), 3)


def mirror_score(gray: np.ndarray, border: str, band: int = 6, reach: float = 0.15) -> float:
    """How much the texture next to a border line repeats mirrored: the highest correlation,
    over lines parallel to the border up to `reach` of the long side in, between the band
    of `band` px before the line and the mirror image of the band after it (fine detail
    only). Reflection padding scores about 1 at the line it mirrors about; an unrelated
    texture scores what chance gives (about 0.5 at most over these many lines)."""
    d = detail(gray)
    d = {"top": d, "bottom": d[::-1], "left": d.T, "right": d.T[::-1]}[border]
    best = -1.0
    for line in range(band, int(reach * max(gray.shape))):
        a, b = d[line - band:line], d[line:line + band][::-1]
        a, b = a - a.mean(), b - b.mean()
        best = max(best, float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum() + 1e-12)))
    return best


def test_the_border_check_finds_reflection_padding():
    """The check can fail: the photo's sky shifted in from beyond its top and left borders by
    reflection padding (what the sky plate used to do) scores near 1."""
    photo, _ = sky_photo()
    sky = photo[0, 0, :HORIZON].numpy() * 255
    reflected = np.pad(sky, ((10, 0), (10, 0)), mode="symmetric")[:HORIZON, :W]  # as grid_sample reflects
    assert mirror_score(reflected, "top") > 0.9 and mirror_score(reflected, "left") > 0.9
    assert mirror_score(sky, "top") < 0.6 and mirror_score(sky, "left") < 0.6


@pytest.mark.parametrize("step", [(2.0, 1.0), (-2.0, 1.0), (1.5, -1.0), (0.0, 2.5)])
def test_no_mirrored_band_at_any_border(step):
    """Acceptance 2: clouds entering the frame from any side never mirror their neighbours:
    every border of every frame of a loop scores below 0.7 (reflection: about 1)."""
    photo, alpha = sky_photo()
    motion = SkyMotion(alpha, uniform(step), period=16)
    frames = motion.move(photo, [float(t) for t in range(0, 16, 2)])
    sky = frames[:, 0, :HORIZON - 4].numpy() * 255
    for border in ("top", "left", "right"):
        assert max(mirror_score(f, border) for f in sky) < 0.7, border


def test_the_loop_starts_from_the_photo_and_moves():
    photo, alpha = sky_photo()
    motion = SkyMotion(alpha, uniform((1.5, 0.5)), period=16)
    frames = motion.move(photo, [0.0, 4.0, 16.0])
    assert torch.allclose(frames[0], photo[0], atol=1e-5) and torch.allclose(frames[2], photo[0], atol=1e-5)
    assert (frames[1, :, :HORIZON] - photo[0, :, :HORIZON]).abs().mean() > 0.02
    assert torch.equal(frames[1, :, HORIZON:], photo[0, :, HORIZON:])   # the ground stays


def test_the_cross_fade_keeps_the_clouds_contrast():
    """Halfway through a cross-fade two shifted copies weigh the same; a plain blend would
    keep about 0.71 of the sky's fine detail (a faint double cloud). Kept: 0.9 or more."""
    photo, alpha = sky_photo()
    motion = SkyMotion(alpha, uniform((2.0, 0.0)), period=16)
    half = motion.move(photo, [4.0])                                     # weights 0.5 and 0.5
    rows = slice(4, 40)                                                  # clear of the horizon's ramp
    before = detail(photo[0, 0, rows].numpy()).std()
    after = detail(half[0, 0, rows].numpy()).std()
    assert after / before > 0.9


def test_a_turning_field_moves_each_part_of_the_sky_its_own_way():
    """Acceptance 3 on a small case: a field whose top goes right and whose bottom goes down
    moves the photo's sky that way, region by region, within 35 degrees."""
    photo, alpha = sky_photo()
    # The top row of cells goes right, the bottom row down, turning in between (long sides per frame).
    down = np.linspace(0, 0.02, 4)[:, None].repeat(4, 1)              # (rows, columns)
    flow = SkyFlow(np.stack([0.02 - down, down]), 0.01, 0.01, 10)
    field = photo_field(flow, alpha, float(W))
    motion = SkyMotion(alpha, field, period=24)
    frames = motion.move(photo, [float(t) for t in range(12)])
    clip = (frames.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    top, bottom = np.zeros((H, W), bool), np.zeros((H, W), bool)
    top[4:14, 8:-8], bottom[30:40, 8:-8] = True, True
    (tx, ty), _ = mean_flow(list(clip), top)
    (bx, by), _ = mean_flow(list(clip), bottom)
    expect_top = math.degrees(math.atan2(*flow.at(0.0, -0.8)[::-1]))
    expect_bottom = math.degrees(math.atan2(*flow.at(0.0, 0.2)[::-1]))
    assert abs(math.degrees(math.atan2(ty, tx)) - expect_top) < 35
    assert abs(math.degrees(math.atan2(by, bx)) - expect_bottom) < 35
    assert abs(expect_top - expect_bottom) > 45     # the regions do move differently
