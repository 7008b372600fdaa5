"""timelapse_cli.metrics: hand values on tiny clips, a naive SSIM, and skimage on real images."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import needs_data
from timelapse_cli import metrics
from timelapse_cli.metrics import e_tmp, gram_distance, psnr, sigma_tmp, ssim

C1, C2 = 0.01 ** 2, 0.03 ** 2  # SSIM constants for data_range 1


def _frames(*values_hw) -> torch.Tensor:
    """Clip (N, 3, h, w) from per-frame (h, w) grids, the same in all 3 channels."""
    return torch.tensor(values_hw, dtype=torch.float32)[:, None].expand(-1, 3, -1, -1).clone()


# ---------------------------------------------------------------------------- E_tmp

def test_e_tmp_hand_value():
    # 3 frames of 2x2, same in all channels:
    #   F1 = 0 everywhere, F2 = 0.5 everywhere, F3 = F2 with pixel (0, 0) at 1.0.
    #   ||F1 - F2||^2 = 12 values * 0.5^2 = 3
    #   ||F2 - F3||^2 = 3 values (one pixel, 3 channels) * 0.5^2 = 0.75
    #   E = 1e3 * sqrt((3 + 0.75) / ((N-1) D)) = 1e3 * sqrt(3.75 / (2 * 4)) = 684.653196...
    clip = _frames([[0, 0], [0, 0]], [[.5, .5], [.5, .5]], [[1, .5], [.5, .5]])
    assert e_tmp(clip) == pytest.approx(1e3 * math.sqrt(3.75 / 8), rel=1e-6)
    assert e_tmp(clip) == pytest.approx(684.653196881458, rel=1e-6)
    assert e_tmp(clip, beta=1.0) == pytest.approx(math.sqrt(3.75 / 8), rel=1e-6)


def test_e_tmp_counts_pixels_not_values():
    # 2 frames of 2x2; only the red channel changes, by 0.2 at every pixel:
    #   ||F1 - F2||^2 = 4 * 0.2^2 = 0.16, D = 4 pixels (not 12 values)
    #   E = 1e3 * sqrt(0.16 / (1 * 4)) = 200   (D = 12 would give 115.47)
    clip = torch.zeros(2, 3, 2, 2)
    clip[1, 0] = 0.2
    assert e_tmp(clip) == pytest.approx(200.0, rel=1e-6)


def test_e_tmp_static_clip_is_zero_and_scales_linearly():
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 8, 9)
    assert e_tmp(frame.expand(5, -1, -1, -1)) == 0.0
    clip = torch.rand(5, 3, 8, 9)
    # 0.25 + 0.5 x stays in [0, 1] and halves every frame difference.
    assert e_tmp(0.25 + 0.5 * clip) == pytest.approx(0.5 * e_tmp(clip), rel=1e-6)
    assert e_tmp(clip) > 0


def test_e_tmp_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        e_tmp(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        e_tmp(torch.zeros(3, 4, 4))


# ---------------------------------------------------------------------------- sigma_tmp

def test_sigma_tmp_hand_value():
    # Reference, 3 frames of 2x2:
    #   R2 - R1 = 0.2 on the left column, 0 on the right: 6 of 12 values 0.2, 6 are 0
    #             -> population std 0.1 (the sample std would be 0.1 * sqrt(12/11))
    #   R3 - R2 = 0.3 everywhere -> std 0
    ref = _frames([[0, 0], [0, 0]], [[.2, 0], [.2, 0]], [[.5, .3], [.5, .3]])
    # Output, 3 frames of 4x4 (another size):
    #   O2 - O1 = 0.5 everywhere -> std 0
    #   O3 - O2 = 0.4 on the top two rows, 0 below: half 0.4, half 0 -> std 0.2
    out = torch.full((3, 3, 4, 4), 0.1)
    out[1:] = 0.6
    out[2, :, :2] = 1.0
    # sigma_tmp = 1e3 / (N-1) * (|0.1 - 0| + |0 - 0.2|) = 500 * 0.3 = 150
    assert sigma_tmp(ref, out) == pytest.approx(150.0, rel=1e-5)
    assert sigma_tmp(out, ref) == pytest.approx(150.0, rel=1e-5)  # symmetric
    assert sigma_tmp(ref, out, beta=1.0) == pytest.approx(0.15, rel=1e-5)


def test_sigma_tmp_zero_when_output_changes_like_reference():
    torch.manual_seed(0)
    # float64: in float32 the "+ 0.1" below rounds each value (~1e-8, times beta = 1e3).
    ref = torch.rand(4, 3, 6, 5, dtype=torch.float64) * 0.8
    assert sigma_tmp(ref, ref) == 0.0
    # Twice the size (each value repeated 4 times: same std per difference image) and
    # shifted by a constant (same differences): the same amount of change per frame.
    out = F.interpolate(ref, scale_factor=2, mode="nearest") + 0.1
    assert out.shape[-2:] == (12, 10)
    assert sigma_tmp(ref, out) == pytest.approx(0.0, abs=1e-9)
    # Frames that are each constant have differences of std 0, whatever the constants.
    flat_ref = torch.tensor([0.1, 0.5, 0.2, 0.9]).view(4, 1, 1, 1).expand(4, 3, 6, 5)
    flat_out = torch.tensor([0.7, 0.0, 0.3, 0.3]).view(4, 1, 1, 1).expand(4, 3, 9, 9)
    assert sigma_tmp(flat_ref, flat_out) == 0.0
    # A static output against a changing reference: the reference's stds, averaged.
    static = ref[:1].expand(4, -1, -1, -1)
    stds = (ref[1:] - ref[:-1]).double().flatten(1).std(1, unbiased=False)
    assert sigma_tmp(ref, static) == pytest.approx(1e3 * stds.mean().item(), rel=1e-6)


def test_sigma_tmp_errors():
    with pytest.raises(ValueError, match="same number of frames"):
        sigma_tmp(torch.zeros(3, 3, 4, 4), torch.zeros(4, 3, 4, 4))
    with pytest.raises(ValueError, match="at least 2 frames"):
        sigma_tmp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))


# ---------------------------------------------------------------------------- PSNR

def test_psnr_hand_values():
    a = torch.full((2, 3, 4, 4), 0.5)
    b = a.clone()
    b[0] += 0.1  # frame 0: uniform error 0.1 -> MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    b[1, :, :2] += 0.1  # frame 1: error 0.1 on half the values -> MSE 0.005 -> 23.0103 dB
    got = psnr(a, b)
    assert got.shape == (2,)
    assert got.tolist() == pytest.approx([20.0, 10 * math.log10(200)], rel=1e-5)
    # data_range 255 with a uniform error of 25.5 is the same 20 dB.
    assert psnr(a * 255, b * 255, data_range=255.0)[0].item() == pytest.approx(20.0, rel=1e-5)


def test_psnr_equal_frames_inf_and_broadcast():
    torch.manual_seed(0)
    clip = torch.rand(3, 3, 5, 5)
    got = psnr(clip[:1], clip)  # a batch of 1 against 3 frames, frame 0 identical
    assert got.shape == (3,)
    assert got[0].item() == math.inf
    assert torch.isfinite(got[1:]).all()
    assert torch.equal(psnr(clip, clip[:1]), got)  # symmetric, either side broadcasts
    with pytest.raises(ValueError, match="do not match"):
        psnr(clip, torch.rand(2, 3, 5, 5))


# ---------------------------------------------------------------------------- SSIM

def _naive_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM from the formula: x, y (3, H, W) float64; explicit weighted sums over each
    11x11 window that fits, centred (co)variances; mean over channels and positions."""
    r = np.arange(-5, 6)
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                px, py = x[c, i:i + 11, j:j + 11], y[c, i:i + 11, j:j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                vals.append((2 * mx * my + C1) * (2 * cxy + C2)
                            / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2)))
    return float(np.mean(vals))


def _skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """skimage's SSIM of x, y (3, H, W) with the paper's settings (Wang et al. 2004)."""
    metrics = pytest.importorskip("skimage.metrics")
    return metrics.structural_similarity(
        x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy(),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
        channel_axis=-1)


def test_ssim_identical_is_one():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 12)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)


def test_ssim_constant_images_hand_value():
    # Constant images: all (co)variances are 0, so the structure term is C2 / C2 = 1 and
    #   SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    #        = (2 * 0.3 * 0.6 + 1e-4) / (0.09 + 0.36 + 1e-4) = 0.3601 / 0.4501 = 0.800044...
    a, b = torch.full((1, 3, 11, 13), 0.3), torch.full((1, 3, 11, 13), 0.6)
    assert ssim(a, b).item() == pytest.approx(0.3601 / 0.4501, rel=1e-6)
    # data_range 2: C1 = (0.01 * 2)^2 = 4e-4 -> (0.36 + 4e-4) / (0.45 + 4e-4)
    assert ssim(a, b, data_range=2.0).item() == pytest.approx(0.3604 / 0.4504, rel=1e-6)


def test_ssim_matches_naive_loop_and_skimage():
    torch.manual_seed(0)
    x = torch.rand(3, 13, 14, dtype=torch.float64)
    # A related image (noisy, darker copy) so that SSIM is far from 0 and from 1.
    y = (0.8 * x + 0.2 * torch.rand(3, 13, 14, dtype=torch.float64)).clamp(0, 1)
    got = ssim(x[None], y[None]).item()
    naive = _naive_ssim(x.numpy(), y.numpy())
    assert 0.3 < naive < 0.99
    assert got == pytest.approx(naive, abs=1e-10)
    assert got == pytest.approx(_skimage_ssim(x, y), abs=1e-10)
    # float32 inputs give the same result (computed in float64 inside).
    assert ssim(x[None].float(), y[None].float()).item() == pytest.approx(got, abs=1e-6)


def test_ssim_broadcasts_a_batch_of_one():
    torch.manual_seed(1)
    x, ys = torch.rand(1, 3, 12, 15), torch.rand(3, 3, 12, 15)
    got = ssim(x, ys)
    assert got.shape == (3,)
    for i in range(3):
        assert got[i].item() == pytest.approx(ssim(x, ys[i:i + 1]).item(), abs=1e-12)
    assert torch.allclose(ssim(ys, x), got)


def test_ssim_rejects_images_smaller_than_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 10, 20), torch.zeros(1, 3, 10, 20))
    with pytest.raises(ValueError, match="do not match"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ssim_psnr_on_cuda_match_cpu():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 20, 24), torch.rand(1, 3, 20, 24)
    assert torch.allclose(ssim(x.cuda(), y.cuda()).cpu(), ssim(x, y))
    assert torch.allclose(psnr(x.cuda(), y.cuda()).cpu(), psnr(x, y))


def _load(path) -> torch.Tensor:
    """RGB image file -> (3, H, W) float in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


@pytest.mark.slow
def test_ssim_real_timelapse_frames_match_skimage():
    folder = needs_data("timelapse", "pyramid-webcam")
    x, y = _load(folder / "0000.jpg"), _load(folder / "0025.jpg")
    want = _skimage_ssim(x, y)
    assert 0.1 < want < 0.95  # different frames of one scene: neither unrelated nor equal
    assert ssim(x[None], y[None]).item() == pytest.approx(want, abs=1e-6)


@pytest.mark.slow
def test_ssim_real_photo_vs_blurred_brighter_copy_matches_skimage():
    from PIL import Image, ImageEnhance, ImageFilter

    path = needs_data("stills", "dpst", "in1.jpg")
    with Image.open(path) as im:
        altered = ImageEnhance.Brightness(im.convert("RGB").filter(ImageFilter.GaussianBlur(2))).enhance(1.2)
    x = _load(path)
    y = torch.from_numpy(np.asarray(altered, dtype=np.float32) / 255).permute(2, 0, 1)
    want = _skimage_ssim(x, y)
    assert 0.3 < want < 0.95
    assert ssim(x[None], y[None]).item() == pytest.approx(want, abs=1e-6)


# ---------------------------------------------------------------------------- Gram distance

def test_gram_distance_hand_value():
    # C = 2 channels, 1x2 pixels; X is (C, h*w), G = X X^T / (C h w) = X X^T / 4.
    #   a: X = [[1, 2], [0, 1]] -> X X^T = [[5, 2], [2, 1]] -> G = [[1.25, 0.5], [0.5, 0.25]]
    #   b: X = [[1, 0], [0, 1]] -> X X^T = I              -> G = [[0.25, 0], [0, 0.25]]
    #   G_a - G_b = [[1, 0.5], [0.5, 0]] -> mean of squares = (1 + 0.25 + 0.25 + 0) / 4 = 0.375
    a = torch.tensor([[[[1.0, 2.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    b = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    assert gram_distance([a], [b]).tolist() == pytest.approx([0.375])
    assert gram_distance([a, a], [b, b]).tolist() == pytest.approx([0.75])  # summed over layers
    # Another spatial size: b = 1x1 pixel X = [[1], [1]] -> G = [[1, 1], [1, 1]] / 2.
    #   G_a - G_b = [[0.75, 0], [0, -0.25]] -> (0.5625 + 0.0625) / 4 = 0.15625
    b1 = torch.ones(1, 2, 1, 1)
    assert gram_distance([a], [b1]).tolist() == pytest.approx([0.15625])
    # b broadcasts: a batch [a, b] against b alone -> [0.375, 0].
    assert gram_distance([torch.cat([a, b])], [b]).tolist() == pytest.approx([0.375, 0.0])


def test_gram_distance_zero_for_identical_and_broadcast():
    torch.manual_seed(0)
    # VGG-like pyramid of layers (channels up, size down), a larger copy for b.
    sizes = [(4, 16, 16), (8, 8, 8), (16, 4, 4)]
    feats = [torch.rand(3, c, h, w) for c, h, w in sizes]
    assert torch.equal(gram_distance(feats, feats), torch.zeros(3, dtype=torch.float64))
    other = [torch.rand(1, c, 2 * h, 2 * w) for c, h, w in sizes]
    got = gram_distance(feats, other)
    assert got.shape == (3,) and (got > 0).all()
    # Against an independent computation of the definition, sample by sample.
    for i in range(3):
        want = 0.0
        for fa, fb in zip(feats, other):
            xa, xb = fa[i].flatten(1).double(), fb[0].flatten(1).double()
            ga, gb = xa @ xa.T / xa.numel(), xb @ xb.T / xb.numel()
            want += ((ga - gb) ** 2).mean().item()
        assert got[i].item() == pytest.approx(want, rel=1e-9)


def test_gram_distance_errors():
    a = torch.rand(2, 4, 3, 3)
    with pytest.raises(ValueError, match="as many layers"):
        gram_distance([a, a], [a])
    with pytest.raises(ValueError, match="as many layers"):
        gram_distance([], [])
    with pytest.raises(ValueError, match="layer 0"):
        gram_distance([a], [torch.rand(2, 5, 3, 3)])  # channel counts differ
    with pytest.raises(ValueError, match="layer 0"):
        gram_distance([a], [torch.rand(3, 4, 3, 3)])  # batches 2 and 3 do not broadcast


def test_ssim_in_chunks_equals_all_at_once():
    torch.manual_seed(2)
    x, ys = torch.rand(1, 3, 12, 13), torch.rand(7, 3, 12, 13)
    whole = ssim(x, ys, chunk=100)
    assert torch.equal(ssim(x, ys, chunk=3), whole)  # 3 + 3 + 1, x broadcast to each chunk
    assert torch.equal(ssim(ys, ys.flip(0), chunk=2), ssim(ys, ys.flip(0), chunk=7))


def test_luminance_r_follows_brightness_not_size():
    t = torch.linspace(0.1, 0.9, 6).view(6, 1, 1, 1)
    ref = t.expand(6, 3, 8, 8).clone()
    out = (0.2 + 0.5 * t).expand(6, 3, 16, 12).clone()  # brighter and bigger, same course
    assert metrics.luminance_r(out, ref) == pytest.approx(1.0)
    assert metrics.luminance_r(out.flip(0), ref) == pytest.approx(-1.0)
    assert math.isnan(metrics.luminance_r(torch.full((6, 3, 4, 4), 0.5), ref))


def test_structure_r_keeps_edges_under_colour_change_and_loses_them_under_noise():
    g = torch.Generator().manual_seed(0)
    photo = torch.zeros(1, 3, 32, 32)
    photo[..., 8:24, 8:24] = 0.8
    photo += 0.02 * torch.rand(1, 3, 32, 32, generator=g)
    darker = 0.3 * photo + 0.1
    noise = torch.rand(1, 3, 32, 32, generator=g)
    r = metrics.structure_r(photo, torch.cat([photo, darker, noise]))
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(1.0, abs=1e-6)
    assert r[2] < 0.3


# ---------------------------------------------------------------------------- nights

def _rgb(*values_hw) -> torch.Tensor:
    return _frames(*values_hw).double()


def test_luminance_is_rec709_luma_of_the_srgb_values():
    x = torch.zeros(3, 3, 1, 1, dtype=torch.float64)
    x[0, 0], x[1, 1], x[2, 2] = 1, 1, 1  # pure red, green, blue
    assert metrics.luminance(x).flatten().tolist() == pytest.approx([0.2126, 0.7152, 0.0722])
    assert metrics.mean_luminance(_rgb([[0.2, 0.4]])).item() == pytest.approx(0.3)


def test_night_frames_are_below_the_threshold():
    clip = _rgb([[0.119]], [[0.121]], [[0.5]], [[0.0]])
    assert metrics.NIGHT_LUMINANCE == 0.12
    assert metrics.is_night(clip).tolist() == [True, False, False, True]


def test_flat_is_each_frames_mean_colour():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    f = metrics.flat(x)
    assert f.shape == x.shape
    assert torch.allclose(f[1, :, 3, 4], x[1].mean((1, 2)))
    assert torch.allclose(f[0].std((1, 2)), torch.zeros(3, dtype=torch.float64))
    # A frame that already is its mean colour is its own flat frame: infinite PSNR.
    assert psnr(metrics.flat(_rgb([[0.3, 0.3]])), _rgb([[0.3, 0.3]])).item() == math.inf


def test_black_frame_psnr_is_minus_ten_log_of_the_mean_square():
    target = _rgb([[0.1, 0.3], [0.0, 0.2]])  # mean square 0.035
    black = torch.zeros_like(target)
    assert psnr(black, target).item() == pytest.approx(-10 * math.log10(0.035))


def test_lit_pixels_floor_and_median_factor():
    # Dark frame (median 0.02): the floor 0.15 decides; bright frame (median 0.1): 4 x 0.1.
    dark = [[0.02, 0.02, 0.02], [0.02, 0.14, 0.16]]
    bright = [[0.1, 0.1, 0.1], [0.1, 0.39, 0.41]]
    lit = metrics.lit(_rgb(dark, bright))
    assert lit.dtype == torch.bool and lit.shape == (2, 2, 3)
    assert lit[0].tolist() == [[False, False, False], [False, False, True]]
    assert lit[1].tolist() == [[False, False, False], [False, False, True]]


def test_lit_blocks_ceil_mode_and_share():
    x = torch.zeros(1, 3, 10, 17, dtype=torch.float64)
    x[0, :, 9, 16] = 1.0  # in the partial block at the bottom right corner
    x[0, :, 0, 8] = 1.0   # in the second block of the first row
    blocks = metrics.lit_blocks(x)
    assert blocks.shape == (1, 2, 3)
    assert blocks[0].tolist() == [[False, True, False], [False, False, True]]
    assert metrics.lit_share(blocks).item() == pytest.approx(2 / 6)


def test_lift_perfect_random_wrong_and_undefined():
    real = torch.zeros(1, 4, 5, dtype=torch.bool)
    real[0, 0, :2] = True                                      # share 2/20
    share = metrics.lit_share(real).item()
    assert metrics.lift(real, real).item() == pytest.approx(1 / share)   # perfect placement: 10
    wrong = torch.zeros(1, 4, 5, dtype=torch.bool)
    wrong[0, 3, 3] = True
    assert metrics.lift(wrong, real).item() == 0.0
    half = wrong.clone()
    half[0, 0, 0] = True                                      # one of two output lights hits
    assert metrics.lift(half, real).item() == pytest.approx(0.5 / share)
    everywhere = torch.ones(1, 4, 5, dtype=torch.bool)         # lights everywhere: chance, 1
    assert metrics.lift(everywhere, real).item() == pytest.approx(1.0)
    none = torch.zeros(1, 4, 5, dtype=torch.bool)
    assert math.isnan(metrics.lift(none, real).item())         # nothing placed
    assert math.isnan(metrics.lift(real, none).item())         # nothing to hit
    # A real map of one frame (e.g. the union of a camera's nights) is used for every output frame.
    both = metrics.lift(torch.cat([real, wrong]), real)
    assert both.tolist() == pytest.approx([1 / share, 0.0])
    with pytest.raises(ValueError, match="block maps"):
        metrics.lift(real, torch.zeros(1, 4, 4, dtype=torch.bool))


def test_daylight_left_keeps_or_inverts_the_photo_and_ignores_lights():
    torch.manual_seed(0)
    photo = 0.2 + 0.6 * torch.rand(1, 3, 16, 16, dtype=torch.float64)
    dimmed = 0.1 * photo                                       # the day dimmed: all daylight left
    assert metrics.daylight_left(dimmed, photo).item() == pytest.approx(1.0)
    inverted = 0.1 * (1 - photo)
    assert metrics.daylight_left(inverted, photo).item() == pytest.approx(-1.0)
    # A lamp where the photo is dark is a lit pixel: left out, the dimmed rest still scores 1,
    # while the same lamp counted in would lower the correlation.
    lamp = dimmed.clone()
    y = metrics.luminance(photo)[0, 0]
    i, j = divmod(int(y.argmin()), 16)
    lamp[0, :, i, j] = 1.0
    assert metrics.lit(lamp)[0, i, j] and metrics.lit(lamp).sum() == 1
    assert metrics.daylight_left(lamp, photo).item() == pytest.approx(1.0)
    assert metrics.pearson(metrics.luminance(lamp), y) < 0.9
    # A frame equal to its own mean colour has no structure: NaN, not an error.
    r = metrics.daylight_left(torch.cat([metrics.flat(photo) * 0.1, dimmed]), photo)
    assert math.isnan(r[0].item()) and r[1].item() == pytest.approx(1.0)
