"""The local transfer (model/local.py): the photo matched to the reference frame most like
it, each matched place changing as the reference's does."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from timelapse_cli.animation import scan_reference
from timelapse_cli.model import Generator, GeneratorConfig
from timelapse_cli.model import local
from timelapse_cli.model.night import gaussian_blur, lit_pixels

H, W = 48, 64


def _scene(seed=0):
    """A day frame (1, 3, H, W) with structure everywhere, and its labels (sky on top = 1)."""
    g = torch.Generator().manual_seed(seed)
    x = gaussian_blur(torch.rand(1, 3, H, W, generator=g), 2.0)
    frame = ((x - x.mean()) / x.std() * 0.15 + 0.5).clamp(0, 1)
    labels = torch.zeros(H, W, dtype=torch.long)
    labels[:12] = 1
    return frame, labels


def _night(day, lamps=((30, 8), (40, 20), (26, 44))):
    """The day frame at night: dark, with lamps lit at `lamps` (y, x)."""
    frame = day * 0.08
    for y, x in lamps:
        frame[0, :, y:y + 3, x:x + 3] = torch.tensor([1.0, 0.8, 0.4]).view(3, 1, 1)
    return frame


def test_fitted_maps_recover_a_global_affine_change():
    anchor, _ = _scene()
    m = torch.tensor([[0.5, 0.1, 0.0], [0.0, 0.6, 0.1], [0.05, 0.0, 0.7]])
    offset = torch.tensor([0.02, 0.05, 0.1])
    frame = torch.einsum("ci,bihw->bchw", m, anchor) + offset.view(1, 3, 1, 1)
    maps = local.fit_maps(local.anchor_cells(anchor, (12, 16), ridge=1e-8), frame).view(1, 3, 4, 12, 16)
    assert torch.allclose(maps[0, :, :3].mean((-1, -2)), m, atol=2e-3)
    assert torch.allclose(maps[0, :, 3].mean((-1, -2)), offset, atol=2e-3)


@pytest.mark.parametrize("mirrored", [False, True])
def test_the_same_view_at_another_hour_is_trusted_another_place_is_not(mirrored):
    day, _ = _scene(0)
    later = (day * torch.tensor([0.7, 0.65, 0.6]).view(1, 3, 1, 1) + 0.05).clamp(0, 1)  # warmer, darker light
    photo = later.flip(-1) if mirrored else later
    trust, found_mirrored = local.same_view(photo, day)
    assert trust == 1 and found_mirrored == mirrored
    other, _ = _scene(5)
    assert local.same_view(other, day)[0] == 0


def test_the_same_place_lights_up_where_the_reference_does():
    """The photo is the mirrored mean of a day and a night frame (as `benchmark --eval`
    makes it): the night comes out with its lamps in their mirrored places."""
    day, _ = _scene()
    night = _night(day)
    mean = (day + night) / 2
    photo = mean.flip(-1)
    lt = local.prepare(photo, mean)
    assert lt.trust == 1 and lt.mirrored
    classwise = torch.zeros(1, 3, H, W)
    out = local.transfer(lt, night, classwise)
    truth = night.flip(-1)
    lit = lit_pixels(out)[0, 0]
    assert lit.any() and (lit & lit_pixels(truth)[0, 0]).sum() >= 0.6 * lit.sum()
    assert (out - truth).square().mean() < 0.3 * truth.square().mean()


def test_another_place_keeps_the_classwise_transfer():
    day, _ = _scene(0)
    other, _ = _scene(5)
    lt = local.prepare(other, day)
    assert lt.trust == 0
    classwise = torch.rand(2, 3, H, W)
    out = local.transfer(lt, torch.cat([day, _night(day)]), classwise)
    assert torch.equal(out, classwise)


def test_the_anchor_is_the_frame_most_like_the_photo_or_the_mean():
    day, _ = _scene()
    frames = [(f[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
              for f in (_night(day), day * 0.7, day, day * 1.2)]
    photo = torch.from_numpy(frames[2]).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(scan_reference(photo, frames, "cpu").anchor, photo)
    mean = sum(torch.from_numpy(f).float() for f in frames[:2]) / 2 / 255
    anchor = scan_reference(mean.permute(2, 0, 1)[None], frames[:2], "cpu").anchor
    assert torch.allclose(anchor[0].permute(1, 2, 0), mean, atol=1e-6)
    assert scan_reference(photo, [], "cpu").anchor is None


@pytest.mark.parametrize("night", [False, True])
@pytest.mark.parametrize("naive", [False, True])
def test_the_generator_follows_its_own_place_and_paths_agree(night, naive):
    """The mirrored-day photo with the reference's frames: local on is closer to the
    mirrored truth than local off, and the cached and naive paths give the same frames."""
    day, labels = _scene()
    photo = day.flip(-1)
    frames = torch.cat([day, _night(day)])
    windows = torch.cat([frames[:, None]] * 3, 1).flatten(1, 2)    # (2, 9, H, W): F_t three times
    errors = {}
    for on in (False, True):
        torch.manual_seed(0)
        cfg = GeneratorConfig(width=0.125, output="affine", affine_smooth=4, night=night, local=on)
        model = Generator(cfg).eval()
        with torch.no_grad():
            if naive:
                out = model(photo.expand(2, -1, -1, -1), labels.flip(-1), windows, labels, 2, None, 1, 0, day)
            else:
                cache = model.encode_image(photo, labels.flip(-1), 2, 1, 0, day)
                out = model.decode(cache, windows, labels, None)
        errors[on] = (out.clamp(0, 1) - frames.flip(-1)).square().mean().item()
        if on:
            with torch.no_grad():
                cached = model.decode(model.encode_image(photo, labels.flip(-1), 2, 1, 0, day), windows, labels, None)
            assert torch.allclose(out, cached, atol=1e-5)
    assert errors[True] < 0.5 * errors[False]


def _png(path, frame):
    from PIL import Image
    Image.fromarray((frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


@pytest.mark.parametrize("same", [True, False])
def test_animate_says_whether_the_photo_is_the_references_view(tmp_path, same):
    """A still of the reference's own view follows it place by place: its night frame has
    the lamps where the reference's has them; another photo is transferred class by class."""
    from timelapse_cli.animation import Animator, AnimateOptions

    day, _ = _scene(0)
    night = _night(day)
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, f in enumerate([day, (day + night) / 2, night]):
        _png(ref / f"{i:04d}.png", f)
    photo = tmp_path / "photo.png"
    _png(photo, day if same else _scene(5)[0])
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(width=0.125, output="affine", affine_smooth=4, night=True, local=True))
    opts = AnimateOptions(segmenter="none", preview=None, motion="none")
    result = Animator(model=model, device="cpu").animate(photo, ref, tmp_path / "out/", opts)
    assert ("own view" in result.view) == same and ("another view" in result.view) == (not same)
    if same:
        from PIL import Image
        last = torch.from_numpy(np.asarray(Image.open(sorted((tmp_path / "out").glob("*.png"))[-1]), np.float32) / 255)
        assert (last.permute(2, 0, 1)[None] - night).abs().mean() < 0.05
