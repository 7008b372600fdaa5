"""The network at a working size, its colour matrices applied at the output's (issue: full
resolution at the cost of a colour transfer)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from timelapse_cli.model import Generator, GeneratorConfig
from timelapse_cli.model.affine import _affine, apply_affine
from timelapse_cli.model.color import LAB_EPS, lab_transfer, linear_to_srgb, rgb_to_lab
from timelapse_cli.model.modulation import Regions, class_stats
from timelapse_cli.runtime import frames_per_batch


@pytest.mark.parametrize("shape", [(1, 4, 4, 64, 48), (2, 7, 5, 100, 61), (4, 3, 3, 5, 5), (1, 32, 32, 300, 257)])
def test_banded_application_is_the_interpolated_one(shape):
    b, h, w, hh, ww = shape
    g = torch.Generator().manual_seed(0)
    coeffs, base = torch.rand(b, 12, h, w, generator=g), torch.rand(b, 3, hh, ww, generator=g)
    whole = _affine(F.interpolate(coeffs, size=(hh, ww), mode="bilinear", align_corners=False)
                    .view(b, 3, 4, hh, ww), base)
    assert torch.allclose(apply_affine(coeffs, base), whole, atol=1e-5)
    assert torch.allclose(apply_affine(coeffs, base, post=linear_to_srgb), linear_to_srgb(whole), atol=1e-5)
    assert torch.allclose(apply_affine(coeffs, base[:1]), _affine(                 # one base for B frames
        F.interpolate(coeffs, size=(hh, ww), mode="bilinear", align_corners=False).view(b, 3, 4, hh, ww), base[:1]),
        atol=1e-5)


def _scene(h, w, seed=0):
    """A photo with a sky band on top (class 1) and a striped ground; labels (h, w)."""
    g = torch.Generator().manual_seed(seed)
    photo = 0.3 + 0.4 * torch.rand(1, 3, h, w, generator=g)
    photo[..., : h // 3, :] = torch.tensor([0.5, 0.7, 0.95]).view(1, 3, 1, 1)
    photo[..., h // 2:, ::4] = 0.1
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[: h // 3] = 1
    return photo, labels


def _windows(b, h, w, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 9, h, w, generator=g), torch.zeros(h, w, dtype=torch.long)


def _pair(**kw):
    """The same weights with and without a working size."""
    torch.manual_seed(0)
    full = Generator(GeneratorConfig(width=0.125, output="affine", affine_smooth=4, **kw)).eval()
    small = Generator(GeneratorConfig(width=0.125, output="affine", affine_smooth=4, work_size=32, **kw)).eval()
    small.load_state_dict(full.state_dict())
    return full, small


def test_at_or_below_the_working_size_nothing_changes():
    full, small = _pair(night=True)
    photo, labels = _scene(24, 32)
    windows, ref = _windows(2, 16, 16)
    ref[:5] = 1
    with torch.no_grad():
        a = full.decode(full.encode_image(photo, labels, 2, sky_id=1), windows, ref, None)
        b = small.decode(small.encode_image(photo, labels, 2, sky_id=1), windows, ref, None)
    assert torch.equal(a, b)


def test_the_network_works_small_and_the_output_keeps_every_pixel_of_the_transfer():
    _, model = _pair()
    photo, labels = _scene(96, 128)
    windows, ref = _windows(2, 16, 16)
    with torch.no_grad():
        cache = model.encode_image(photo, labels, 2)
        out = model.decode(cache, windows, ref, None)
    assert cache.work == (24, 32) and cache.size == (96, 128)
    assert tuple(cache.features.shape[-2:]) == (12, 16)         # D_relu2.1 of the 32 px image
    assert out.shape == (2, 3, 96, 128)
    # Untrained, the affine head is the identity: the output is the classwise transfer made
    # at the full size, so every edge of the photo (the one-pixel stripes) is there.
    lab = rgb_to_lab(photo)
    regions = Regions(labels, 2, (96, 128))
    style = Regions(ref, 2, (16, 16))
    expected = lab_transfer(lab, regions, windows[:, 6:9], style, class_stats(lab, regions, LAB_EPS))
    assert torch.allclose(out, expected, atol=1e-4)
    stripes = out[..., 60:, :].diff(dim=-1).abs().amax()
    assert stripes > 0.1


def test_lamps_sit_in_the_same_places_at_any_output_size():
    _, model = _pair(night=True)
    with torch.no_grad():
        model.light_head.out.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))  # vertical edges first
    cells = []
    big, big_labels = _scene(192, 256)
    for f in (4, 2, 1):                                              # one photo at three sizes
        h, w = 192 // f, 256 // f
        photo, labels = F.interpolate(big, size=(h, w), mode="area"), big_labels[::f, ::f]
        with torch.no_grad():
            sites = model.encode_image(photo, labels, 2, sky_id=1, seed=3).sites
        step = max(h, w) // 32                                       # a light cell's side
        ys, xs = sites.index[:20] // w, sites.index[:20] % w
        cells.append(((ys // step) * 32 + xs // step).tolist())
    # The same cells come first (near ties may swap: the smaller photos are area averages).
    assert cells[0][:9] == cells[1][:9] == cells[2][:9]
    assert len(set(cells[0]) & set(cells[1]) & set(cells[2])) >= 14       # of 20; at random about 1


def test_noise_and_a_whole_generator_run_at_the_working_size():
    from timelapse_cli.methods import make_method

    _, model = _pair()
    photo, labels = _scene(96, 128)
    windows, ref = _windows(3, 16, 16)
    method = make_method("timeflies", lambda: model, seed=0)
    method.prepare(photo, labels, ref, 2)
    with torch.no_grad():
        out = method.generate(windows, 0)
    assert out.shape == (3, 3, 96, 128) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("batch,size,expected", [(4, (512, 512), 4), (4, (1024, 1024), 4), (4, (2048, 1366), 1),
                                                 (4, (4096, 4096), 1), (8, (1024, 512), 8), (1, (64, 64), 1)])
def test_large_frames_go_in_smaller_batches(batch, size, expected):
    assert frames_per_batch(batch, *size) == expected


def test_config_refuses_a_tiny_working_size():
    with pytest.raises(ValueError, match="work_size"):
        GeneratorConfig(work_size=8)
    assert GeneratorConfig.from_dict({**GeneratorConfig().to_dict(), "work_size": 256}).work_size == 256
