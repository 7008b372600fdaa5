"""Evaluation metrics: temporal error and temporal-std error of Time Flies (CVPR 2020),
per-frame PSNR and SSIM, a Gram-matrix style distance, and the night measures of issue 18
(night frames, flat frames, lit pixels and blocks, the lift of lights, daylight left).

Pure functions: tensors in, a float or a tensor out; no device choice, no IO. Images and
clips are float tensors with values in [0, 1], laid out (N, 3, H, W) (N frames or images).
Everything accumulates in float64: the metrics are sums of many small squared
differences (E_tmp, sigma_tmp) or differences of nearly equal local moments (SSIM's
E[x^2] - E[x]^2), where float32 loses digits; the cost is negligible next to producing
the frames. Tensor results are float64 on the input's device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .losses import gram
from .model import night
from .model.modulation import Regions

Tensor = torch.Tensor

__all__ = ["daylight_left", "e_tmp", "flat", "gram_distance", "is_night", "lift", "lit", "lit_blocks", "lit_share",
           "luminance", "luminance_r", "mean_luminance", "pearson", "psnr", "sigma_tmp", "ssim", "structure_r",
           "NIGHT_LUMINANCE"]


# ---------------------------------------------------------------------------- helpers

def _check_images(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(x.shape)}")


def _check_clip(name: str, clip: Tensor) -> None:
    _check_images(name, clip)
    if clip.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 frames for a temporal metric, "
                         f"got {clip.shape[0]}")


def _pair(a: Tensor, b: Tensor, same_size: bool = True) -> int:
    """Check a (Na, C, H, W) against b (Nb, C, H', W') and return the batch size N after
    broadcasting: Na == Nb, or one of them is 1. With same_size, (H, W) must match too."""
    _check_images("a", a)
    _check_images("b", b)
    last = 4 if same_size else 2  # compare (C, H, W), or only C
    batches_ok = a.shape[0] == b.shape[0] or 1 in (a.shape[0], b.shape[0])
    if a.shape[1:last] != b.shape[1:last] or not batches_ok:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not match "
                         f"(a batch of 1 broadcasts)")
    return max(a.shape[0], b.shape[0])


# ---------------------------------------------------------------------------- temporal

def e_tmp(clip: Tensor, beta: float = 1e3) -> float:
    """Temporal error of Time Flies:

        E_tmp = beta * sqrt( 1 / ((N-1) D) * sum_{t=1}^{N-1} ||F_t - F_{t+1}||^2 )

    clip (N, 3, H, W), N >= 2; D = H*W pixels, the squared norm summing over all 3
    channels of each pixel (so D counts pixels, not values). Lower = steadier video.
    """
    _check_clip("clip", clip)
    n, _, h, w = clip.shape
    diff = clip[1:].double() - clip[:-1].double()  # (N-1, 3, H, W)
    return beta * math.sqrt(diff.square().sum().item() / ((n - 1) * h * w))


def sigma_tmp(reference: Tensor, output: Tensor, beta: float = 1e3) -> float:
    """Temporal-std error of Time Flies: how far the output's amount of change per frame
    follows the reference's,

        sigma_tmp = beta / (N-1) * sum_{t=1}^{N-1} | s(R_{t+1} - R_t) - s(O_{t+1} - O_t) |

    s = population std over all values (3*H*W) of a difference image. reference
    (N, 3, h, w) and output (N, 3, H, W): same N >= 2, any sizes (the std of a difference
    image does not depend on its size, which is why the two may differ).
    """
    _check_clip("reference", reference)
    _check_clip("output", output)
    if reference.shape[0] != output.shape[0]:
        raise ValueError(f"reference and output need the same number of frames, got "
                         f"{reference.shape[0]} and {output.shape[0]}")

    def step_std(clip: Tensor) -> Tensor:  # (N-1,)
        diff = clip[1:].double() - clip[:-1].double()
        return diff.flatten(1).std(dim=1, unbiased=False)

    n = reference.shape[0]
    return beta / (n - 1) * (step_std(reference) - step_std(output)).abs().sum().item()


# ---------------------------------------------------------------------------- PSNR, SSIM

def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame PSNR 10 log10(data_range^2 / MSE), MSE over all 3*H*W values.

    a, b (N, 3, H, W), either may have N = 1 (broadcast). Returns (N,) float64; +inf where
    the frames are equal (MSE 0; left as inf rather than clamped, so that "identical" is
    visible in the result)."""
    _pair(a, b)
    mse = (a.double() - b.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)  # x / 0 = inf -> log10 = inf


_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5), skimage/scipy's truncation: an 11-tap window


def _gaussian_window(channels: int, device, dtype) -> tuple[Tensor, Tensor]:
    """The normalised 1-D Gaussian (11 taps, sigma 1.5) as two depthwise conv2d weights,
    (C, 1, 11, 1) and (C, 1, 1, 11): the 2-D window is separable, so two 1-D passes cost
    22 instead of 121 multiplies per value."""
    x = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, device=device, dtype=dtype)
    g = torch.exp(-0.5 * (x / _SSIM_SIGMA) ** 2)
    g = g / g.sum()
    return (g.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
            g.view(1, 1, 1, -1).expand(channels, 1, 1, -1))


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0, chunk: int = 8) -> Tensor:
    """Per-image SSIM of Wang et al. 2004.

    a, b (N, 3, H, W), either may have N = 1 (broadcast); H, W >= 11. Gaussian window
    11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, each channel on its
    own, averaged over channels and the (H-10) x (W-10) positions where the window fits
    ('valid': no padding). Equals skimage.metrics.structural_similarity(x, y,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=...,
    channel_axis=-1), which crops the 5 border pixels its padded filter touched.
    Images are taken `chunk` at a time, so memory stays bounded for long clips (the
    float64 moments take about 100 bytes per value). Returns (N,) float64.
    """
    n = _pair(a, b)
    c, h, w = a.shape[1:]
    size = 2 * _SSIM_RADIUS + 1
    if h < size or w < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels (its Gaussian "
                         f"window), got {h}x{w}")
    if n > chunk:
        part = lambda x, i: x if x.shape[0] == 1 else x[i:i + chunk]  # noqa: E731 (a batch of 1 broadcasts)
        return torch.cat([ssim(part(a, i), part(b, i), data_range, chunk) for i in range(0, n, chunk)])
    # float64: sigma^2 = E[x^2] - E[x]^2 cancels most digits in flat regions, where
    # float32's ~1e-7 errors weigh against C2 = 9e-4. Measured against skimage on two
    # real pairs (tests/test_metrics.py): float32 off by 4e-6 and 2e-5, float64 by 1e-14.
    x = a.double().expand(n, -1, -1, -1)
    y = b.double().expand(n, -1, -1, -1)
    g_col, g_row = _gaussian_window(c, x.device, x.dtype)

    def blur(z: Tensor) -> Tensor:  # weighted local mean, (N, C, H-10, W-10)
        return F.conv2d(F.conv2d(z, g_col, groups=c), g_row, groups=c)

    # One pass over the five moments stacked on the batch axis.
    moments = blur(torch.cat([x, y, x * x, y * y, x * y]))
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(n)
    var_x, var_y, cov = e_xx - mu_x ** 2, e_yy - mu_y ** 2, e_xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
         / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
    # Mean over positions per channel, then over channels, = mean over all (equal counts).
    return s.flatten(1).mean(1)


# ---------------------------------------------------------------------------- style

def _gram(feat: Tensor) -> Tensor:
    """Whole-map Gram matrices X X^T / (C h w) of feat (N, C, h, w) -> (N, C, C).

    losses.gram computes classwise Gram matrices whose last column is exactly this; a label
    map of one class covering everything makes it compute only that (the single-region
    path) rather than duplicating the normalisation here."""
    h, w = feat.shape[-2:]
    regions = Regions(torch.zeros(h, w, dtype=torch.long, device=feat.device), 1, (h, w))
    return gram(feat, regions)[:, -1]


def gram_distance(feats_a: list[Tensor], feats_b: list[Tensor]) -> Tensor:
    """Style distance: sum over layers l of mean over the C_l x C_l entries of
    (G(a_l) - G(b_l))^2, per sample, G the Gram matrix X X^T / (C h w) of one sample's
    features X (C, h*w).

    feats_a, feats_b: equally long lists of (N, C_l, h_l, w_l) features (e.g. VGG
    relu1_1..relu4_1). a and b may differ in spatial size (Gram matrices are C x C), and
    either may have N = 1 (broadcast). Returns (N,) float64.
    """
    feats_a, feats_b = list(feats_a), list(feats_b)
    if len(feats_a) != len(feats_b) or not feats_a:
        raise ValueError(f"need as many layers in a as in b (> 0): {len(feats_a)} vs {len(feats_b)}")
    total = 0
    for i, (fa, fb) in enumerate(zip(feats_a, feats_b)):
        try:
            _pair(fa, fb, same_size=False)
        except ValueError as e:
            raise ValueError(f"layer {i}: {e}") from None
        diff = _gram(fa.double()) - _gram(fb.double())  # broadcasts a batch of 1
        total = total + diff.square().flatten(1).mean(1)
    return total


# ---------------------------------------------------------------------------- following

def luminance(x: Tensor) -> Tensor:
    """Rec. 709 luma of the sRGB values (the night stage's own): (N, 3, H, W) -> (N, 1, H, W) float64."""
    _check_images("x", x)
    return night.luminance(x.double())


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two equally long 1-D series; nan if either is constant."""
    a, b = a.double().flatten(), b.double().flatten()
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(f"need two series of equal length >= 2, got {a.numel()} and {b.numel()}")
    a, b = a - a.mean(), b - b.mean()
    den = torch.sqrt(a.square().sum() * b.square().sum())
    return float(a @ b / den) if den > 0 else math.nan


def luminance_r(output: Tensor, reference: Tensor) -> float:
    """How the output's brightness follows the reference's: Pearson r between the per-frame
    mean luma of output frame t and of the reference frame that drove it. output
    (N, 3, H, W) and reference (N, 3, h, w), any sizes; nan if either is constant."""
    _pair(output, reference, same_size=False)
    return pearson(luminance(output).mean((1, 2, 3)), luminance(reference).mean((1, 2, 3)))


def structure_r(photo: Tensor, frames: Tensor) -> Tensor:
    """How much of the photo's structure each frame keeps: per frame, the Pearson r between
    the gradient magnitudes of the photo's and of the frame's luma, each luma normalised
    to zero mean and unit std first (so a darker frame with the same edges scores 1).
    photo (1, 3, H, W), frames (N, 3, H, W) -> (N,) float64."""
    _pair(photo, frames)

    def grad(x: Tensor) -> Tensor:  # (N, H-1, W-1)
        y = luminance(x)[:, 0]
        y = (y - y.mean((1, 2), keepdim=True)) / y.std((1, 2), keepdim=True).clamp(min=1e-6)
        gx, gy = y[:, :-1, 1:] - y[:, :-1, :-1], y[:, 1:, :-1] - y[:, :-1, :-1]
        return torch.sqrt(gx.square() + gy.square()).flatten(1)

    g_photo, g_frames = grad(photo), grad(frames)
    a = g_photo - g_photo.mean(1, keepdim=True)
    b = g_frames - g_frames.mean(1, keepdim=True)
    den = torch.sqrt(a.square().sum(1) * b.square().sum(1)).clamp(min=1e-12)
    return (a * b).sum(1) / den


# ---------------------------------------------------------------------------- nights
#
# Night measures of issue 18. One luminance throughout: `luminance` above (Rec. 709 luma
# of the sRGB values). A night frame is one whose mean luminance is below NIGHT_LUMINANCE;
# a lit pixel is brighter than max(LIT_FLOOR, LIT_FACTOR x its frame's median luminance);
# lights are counted per LIT_BLOCK x LIT_BLOCK block (a block is lit if it holds a lit pixel).

NIGHT_LUMINANCE = 0.12
LIT_FLOOR = night.LIT_FLOOR    # what the night stage calls lit is what is measured as lit
LIT_FACTOR = night.LIT_RATIO
LIT_BLOCK = 8


def mean_luminance(x: Tensor) -> Tensor:
    """Mean luma of each image: (N, 3, H, W) -> (N,) float64."""
    return luminance(x).mean((1, 2, 3))


def is_night(x: Tensor) -> Tensor:
    """Which images are night frames (mean luma < NIGHT_LUMINANCE): (N, 3, H, W) -> (N,) bool."""
    return mean_luminance(x) < NIGHT_LUMINANCE


def flat(x: Tensor) -> Tensor:
    """Each image replaced by its own mean colour: (N, 3, H, W) -> (N, 3, H, W), x's dtype."""
    _check_images("x", x)
    return x.mean((2, 3), keepdim=True).expand_as(x).clone()


def lit(x: Tensor) -> Tensor:
    """Lit pixels: luma > max(LIT_FLOOR, LIT_FACTOR x the image's median luma).
    (N, 3, H, W) -> (N, H, W) bool."""
    _check_images("x", x)
    return night.lit_pixels(x.double())[:, 0]


def lit_blocks(x: Tensor, block: int = LIT_BLOCK) -> Tensor:
    """Whether each block x block tile holds a lit pixel; partial tiles at the right and
    bottom borders count as blocks (ceil mode). (N, 3, H, W) -> (N, ceil(H/b), ceil(W/b)) bool."""
    mask = lit(x).double()[:, None]                                 # (N, 1, H, W)
    return F.max_pool2d(mask, block, block, ceil_mode=True)[:, 0] > 0


def lit_share(blocks: Tensor) -> Tensor:
    """Fraction of lit blocks per image: (N, h, w) bool -> (N,) float64."""
    return blocks.flatten(1).double().mean(1)


def lift(out_blocks: Tensor, real_blocks: Tensor) -> Tensor:
    """How many times more often an output lit block falls on a block lit in the real
    frame than chance: P(real lit | output lit) / P(real lit), per image.

    out_blocks (N, h, w) and real_blocks (N or 1, h, w) bool (as lit_blocks gives them).
    1 = placed no better than at random; 1 / share(real) = every output light on a real
    one (the maximum); 0 = none on a real one. NaN where it is undefined: the output has
    no lit block (nothing placed) or the real frame has none (nothing to hit); average
    with nanmean and report how many images were defined. Returns (N,) float64."""
    if out_blocks.dim() != 3 or real_blocks.dim() != 3 or out_blocks.shape[1:] != real_blocks.shape[1:]:
        raise ValueError(f"need (N, h, w) block maps of one size, got {tuple(out_blocks.shape)} "
                         f"and {tuple(real_blocks.shape)}")
    o = out_blocks.flatten(1).double()
    r = real_blocks.flatten(1).double().expand_as(o)
    hits, placed, chance = (o * r).sum(1), o.sum(1), r.mean(1)
    value = hits / placed.clamp(min=1) / chance.clamp(min=1e-12)
    return torch.where((placed > 0) & (chance > 0), value, torch.full_like(value, math.nan))


def daylight_left(out: Tensor, photo: Tensor) -> Tensor:
    """How much of the photo's daylight the output keeps: per output image, the Pearson
    correlation of its luma with the photo's luma over the output's pixels that are not
    lit (so emitters do not count). out (N, 3, H, W), photo (1, 3, H, W). NaN where fewer
    than 2 such pixels remain or either is constant there. Returns (N,) float64."""
    _pair(out, photo)
    y_out, y_photo = luminance(out)[:, 0], luminance(photo)[0, 0]   # (N, H, W), (H, W)
    dark = ~lit(out)
    r = []
    for y, keep in zip(y_out, dark):
        a, b = y[keep], y_photo[keep]
        # Constant exactly (max == min), not by pearson's den > 0: a mean's rounding leaves
        # residuals of 1e-17 that would give a meaningless r.
        constant = a.numel() < 2 or bool(a.max() == a.min()) or bool(b.max() == b.min())
        r.append(math.nan if constant else pearson(a, b))
    return torch.tensor(r, dtype=torch.float64, device=out.device)
