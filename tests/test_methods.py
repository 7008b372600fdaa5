"""timelapse_cli.methods and .color: the training-free baselines and the Lab conversion."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from timelapse_cli.model.color import lab_to_rgb, rgb_to_lab
from timelapse_cli.errors import TimefliesError
from timelapse_cli.methods import METHODS, make_method


def _no_model():
    raise AssertionError("a baseline must not load the generator")


def _lab_stats(rgb: torch.Tensor, mask: torch.Tensor | None = None):
    """Per-channel Lab mean and population std of (1, 3, H, W), optionally inside a mask."""
    lab = rgb_to_lab(rgb)[0].flatten(1)  # (3, H*W)
    if mask is not None:
        lab = lab[:, mask.flatten()]
    return lab.mean(1), lab.std(1, unbiased=False)


# ---------------------------------------------------------------- Lab


def test_lab_matches_skimage():
    color = pytest.importorskip("skimage.color")
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 7, 9, generator=g, dtype=torch.float64)
    rgb[0, :, 0, 0] = torch.tensor([1.0, 1.0, 1.0])  # white: L 100, a = b = 0
    rgb[0, :, 0, 1] = 0.0  # black, and a very dark value on the linear toe of sRGB and Lab
    rgb[0, :, 0, 2] = 0.002
    want = color.rgb2lab(rgb[0].permute(1, 2, 0).numpy())
    got = rgb_to_lab(rgb)[0].permute(1, 2, 0).numpy()
    # skimage rounds the sRGB matrix to 6 digits, ours to 7: differences of ~1e-3 Lab units.
    assert np.abs(got - want).max() < 0.02
    assert got[0, 0] == pytest.approx([100.0, 0.0, 0.0], abs=0.01)


def test_lab_round_trip():
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-9)
    # float32, as the baselines run it: well under one 8-bit step.
    back = lab_to_rgb(rgb_to_lab(rgb.float()))
    assert (back.double() - rgb).abs().max() < 1e-4


# ---------------------------------------------------------------- baselines


def _reinhard_inputs(seed=0):
    """A mid-tone photo (so transfers stay inside sRGB) and a reference frame of other
    colours: top 40% 'sky' (class 0), rest 'ground' (class 1), at different sizes."""
    g = torch.Generator().manual_seed(seed)
    image = 0.35 + 0.3 * torch.rand(1, 3, 20, 24, generator=g)
    frame = torch.empty(1, 3, 10, 12)
    frame[..., :4, :] = torch.tensor([0.55, 0.45, 0.6]).view(1, 3, 1, 1)  # purple sky
    frame[..., 4:, :] = torch.tensor([0.3, 0.45, 0.3]).view(1, 3, 1, 1)   # green ground
    frame += 0.05 * torch.rand(1, 3, 10, 12, generator=g)
    img_ids = torch.ones(20, 24, dtype=torch.long)
    img_ids[:8] = 0
    ref_ids = torch.ones(10, 12, dtype=torch.long)
    ref_ids[:4] = 0
    window = torch.cat([torch.rand(1, 6, 10, 12, generator=g), frame], 1)  # only F_t counts
    return image, img_ids, frame, ref_ids, window


def test_reinhard_matches_lab_mean_and_std_of_current_frame():
    image, img_ids, frame, ref_ids, window = _reinhard_inputs()
    method = make_method("reinhard", _no_model)
    method.prepare(image, img_ids, ref_ids, 2)
    out = method.generate(window, 0)
    assert out.shape == (1, 3, 20, 24)
    got_mean, got_std = _lab_stats(out)
    want_mean, want_std = _lab_stats(frame)
    assert torch.allclose(got_mean, want_mean, atol=0.05)
    assert torch.allclose(got_std, want_std, rtol=0.02, atol=0.05)
    # Structure kept: the output is an affine map of the photo per Lab channel.
    lab_in, lab_out = rgb_to_lab(image)[0, 0].flatten(), rgb_to_lab(out)[0, 0].flatten()
    assert torch.corrcoef(torch.stack([lab_in, lab_out]))[0, 1] > 0.999


def test_reinhard_class_transfers_each_class_from_its_own_region():
    image, img_ids, frame, ref_ids, window = _reinhard_inputs()
    per_class = make_method("reinhard-class", _no_model)
    per_class.prepare(image, img_ids, ref_ids, 2)
    out = per_class.generate(window, 0)
    for cls in (0, 1):
        got_mean, got_std = _lab_stats(out, img_ids == cls)
        want_mean, want_std = _lab_stats(frame, ref_ids == cls)
        assert torch.allclose(got_mean, want_mean, atol=0.05), cls
        assert torch.allclose(got_std, want_std, rtol=0.02, atol=0.05), cls
    # The global transfer mixes sky and ground: its sky is far from the reference sky.
    whole = make_method("reinhard", _no_model)
    whole.prepare(image, img_ids, ref_ids, 2)
    global_sky, _ = _lab_stats(whole.generate(window, 0), img_ids == 0)
    ref_sky, _ = _lab_stats(frame, ref_ids == 0)
    assert (global_sky - ref_sky).abs().max() > 5


def test_reinhard_batches_frames_independently():
    image, img_ids, frame, ref_ids, window = _reinhard_inputs()
    darker = window.clone()
    darker[:, 6:] *= 0.5
    method = make_method("reinhard-class", _no_model)
    method.prepare(image, img_ids, ref_ids, 2)
    both = method.generate(torch.cat([window, darker]), 0)
    assert torch.allclose(both[0], method.generate(window, 0)[0], atol=1e-6)
    assert torch.allclose(both[1], method.generate(darker, 1)[0], atol=1e-6)
    assert both[1].mean() < both[0].mean() - 0.1


def test_still_returns_the_photo_for_every_window():
    image, img_ids, _, ref_ids, window = _reinhard_inputs()
    method = make_method("still", _no_model)
    method.prepare(image, img_ids, ref_ids, 2)
    out = method.generate(window.expand(3, -1, -1, -1), 0)
    assert out.shape == (3, 3, 20, 24)
    assert torch.equal(out, image.expand(3, -1, -1, -1))


def test_timeflies_cached_equals_naive(tiny_generator):
    image, img_ids, _, ref_ids, window = _reinhard_inputs()
    windows = torch.cat([window, window.flip(-1)])
    with torch.no_grad():
        outs = []
        for naive in (False, True):
            method = make_method("timeflies", lambda: tiny_generator, seed=3, naive=naive)
            method.prepare(image, img_ids, ref_ids, 2)
            outs.append(method.generate(windows, 5))
    assert outs[0].shape == (2, 3, 20, 24)
    assert (outs[0] - outs[1]).abs().max() < 1e-4


def test_unknown_method_names_the_choices():
    with pytest.raises(TimefliesError, match="unknown method 'wct'.*reinhard-class"):
        make_method("wct", _no_model)
    assert set(METHODS) == {"timeflies", "still", "reinhard", "reinhard-class"}
