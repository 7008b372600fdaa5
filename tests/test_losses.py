import math

import pytest
import torch

from timelapse_cli import losses
from timelapse_cli.losses import LossWeights, regions_for
from timelapse_cli.model.modulation import Regions, class_stats

K = 3


def _labels(h=8, w=8):
    """Three classes in bands, plus a few pixels of no class (-1)."""
    lab = torch.zeros(h, w, dtype=torch.long)
    lab[:, w // 3:] = 1
    lab[:, 2 * w // 3:] = 2
    lab[0, 0] = -1
    return lab


def _feats(seed=0, t=4, sizes=((8, 8, 4), (4, 4, 6))):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(t, c, h, w, generator=g, dtype=torch.float64) for h, w, c in sizes]


def _fake(feats):
    return [f.clone().requires_grad_() for f in feats]


def _check_grad(loss, fake):
    loss.backward()
    for f in fake:
        assert f.grad is not None and torch.isfinite(f.grad).all()
    return [f.grad for f in fake]


LAYERED = {
    "perceptual": lambda r, f, reg: losses.perceptual(r, f),
    "style": losses.style,
    "flow": losses.flow,
    "cycle": losses.cycle,
}


@pytest.mark.parametrize("name", sorted(LAYERED))
def test_zero_when_equal_positive_when_different_with_gradient(name):
    fn = LAYERED[name]
    real = _feats(0)
    reg = regions_for(_labels(), K, real)
    same = _fake(real)
    loss = fn(real, same, reg)
    assert loss.shape == () and torch.isfinite(loss) and abs(loss.item()) < 1e-10
    _check_grad(loss, same)

    fake = _fake(_feats(1))
    loss = fn(real, fake, reg)
    assert torch.isfinite(loss) and loss.item() > 1e-4
    grads = _check_grad(loss, fake)
    assert any(g.abs().sum() > 0 for g in grads)


def test_regions_for_builds_one_regions_per_layer_at_its_size():
    feats = _feats(0, sizes=((8, 8, 2), (4, 4, 2), (4, 4, 3), (3, 3, 1)))
    reg = regions_for(_labels(), K, feats)
    assert [r.size for r in reg] == [(8, 8), (4, 4), (4, 4), (3, 3)]
    assert reg[1] is reg[2]  # same size -> shared
    with pytest.raises(ValueError):  # Regions of the wrong size are refused
        losses.style(feats[:2], feats[:2], reg[1:3])


def test_perceptual_is_sum_of_layer_l2_norms_averaged_over_frames():
    real, fake = _feats(0), _feats(1)
    expect = sum(torch.stack([(r[t] - f[t]).norm() for t in range(r.shape[0])]).mean() for r, f in zip(real, fake))
    assert torch.allclose(losses.perceptual(real, fake), expect)


# ---------------------------------------------------------------------------- whiten, content

def test_whiten_gives_identity_colour_covariance():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 16, 16, generator=g)
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.1], [0.6, 0.4, 0.8]])  # correlated colours
    images = torch.einsum("ij,bjhw->bihw", mix, base) + torch.tensor([0.2, 0.1, 0.3])[:, None, None]
    white = losses.whiten(images)
    assert white.shape == images.shape
    x = white.flatten(2)
    assert torch.allclose(x.mean(-1), torch.zeros(2, 3), atol=1e-5)
    cov = x @ x.transpose(1, 2) / x.shape[-1]
    assert torch.allclose(cov, torch.eye(3).expand(2, 3, 3), atol=1e-3)


@pytest.mark.parametrize("kind", ["random", "grey", "constant"])
def test_whiten_gradient_matches_finite_differences(kind):
    """Also where eigh's own backward breaks: repeated eigenvalues (grey: 0, 0, l; constant:
    0, 0, 0, where autograd through eigh gives NaN)."""
    g = torch.Generator().manual_seed(2)
    images = torch.rand(1, 3, 5, 4, dtype=torch.float64, generator=g)
    if kind == "grey":
        images = images[:, :1].expand(1, 3, 5, 4).clone()
    elif kind == "constant":
        images = torch.full_like(images, 0.5)
    assert torch.autograd.gradcheck(lambda x: losses.whiten(x, eps=1e-3), (images.requires_grad_(),))


@pytest.mark.parametrize("kind", ["random", "grey", "constant"])
def test_whiten_gradients_finite_even_for_repeated_eigenvalues(kind):
    x = torch.rand(1, 1 if kind == "grey" else 3, 6, 6, generator=torch.Generator().manual_seed(3))
    x = x.expand(1, 3, 6, 6).clone() if kind == "grey" else x  # equal channels: eigenvalues 0, 0, l
    x = torch.full((1, 3, 6, 6), 0.5) if kind == "constant" else x  # all three equal
    x.requires_grad_()
    white = losses.whiten(x)
    assert torch.isfinite(white).all()
    (white * torch.randn_like(white)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_content_alpha_schedule():
    assert losses.content_alpha(0, 0.999) == 1.0
    values = [losses.content_alpha(s, 0.999) for s in range(0, 5000, 250)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert math.isclose(losses.content_alpha(1000, 0.999), 0.999 ** 1000)


def test_content_weights_its_two_terms_by_alpha():
    g = torch.Generator().manual_seed(0)
    feat_image = torch.rand(1, 8, 4, 4, generator=g)
    feat_fake = torch.rand(3, 8, 4, 4, generator=g, requires_grad=True)
    white_image = torch.rand(1, 3, 16, 16, generator=g)
    white_fake = torch.rand(3, 3, 16, 16, generator=g)
    other_white = white_fake + 1.0
    other_feat = feat_fake.detach() + 1.0

    l1 = losses.content(feat_image, feat_fake, white_image, white_fake, 1.0)
    assert l1 > 0 and l1 == losses.content(feat_image, feat_fake, white_image, other_white, 1.0)
    # alpha = 1 ignores the whitened images entirely, even a NaN
    nan = torch.full_like(white_fake, float("nan"))
    assert torch.isfinite(losses.content(feat_image, feat_fake, white_image, nan, 1.0))
    l0 = losses.content(feat_image, feat_fake, white_image, white_fake, 0.0)
    assert l0 > 0 and l0 == losses.content(feat_image, other_feat, white_image, white_fake, 0.0)

    mid = losses.content(feat_image, feat_fake, white_image, white_fake, 0.3)
    assert torch.allclose(mid, 0.3 * l1 + 0.7 * l0)
    mid.backward()
    assert feat_fake.grad is not None and torch.isfinite(feat_fake.grad).all()
    # broadcast of the image over frames == repeating it
    rep = losses.content(feat_image.expand(3, -1, -1, -1), feat_fake, white_image, white_fake, 0.3)
    assert torch.allclose(mid, rep)
    # equal inputs -> 0
    assert losses.content(feat_fake[:1], feat_fake[:1], white_fake, white_fake, 0.5) == 0


# ---------------------------------------------------------------------------- style, flow

def _two_class_clip(t=3, h=6, w=8, c=4, seed=0):
    """Left half class 0 ~ N(0, 1), right half class 1 ~ N(3, 0.5): (T, C, H, W), labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, c, h, w, generator=g, dtype=torch.float64)
    x[..., w // 2:] = 3 + 0.5 * x[..., w // 2:]
    lab = torch.zeros(h, w, dtype=torch.long)
    lab[:, w // 2:] = 1
    return x, lab


def test_style_is_classwise():
    real, lab = _two_class_clip()
    w = real.shape[-1]
    fake = torch.cat([real[..., w // 2:], real[..., :w // 2]], -1)  # the two classes swap statistics
    classwise = losses.style([real], [fake], regions_for(lab, 2, [real]))
    glob = losses.style([real], [fake], regions_for(torch.zeros_like(lab), 1, [real]))
    assert classwise > 1.0
    assert glob < 1e-6  # same pixels overall: same global statistics
    assert losses.style([real], [real], regions_for(lab, 2, [real])) == 0


def test_style_averages_over_the_classes_present_only():
    real, lab = _two_class_clip()
    fake = real + 1.0  # every mean moves by 1 in every channel: ||.||_2 = sqrt(C)
    c = real.shape[1]
    lab5 = lab.clone()  # classes 2..4 absent, and some pixels of no class
    lab5[0, 0] = -1
    loss = losses.style([real], [fake], regions_for(lab5, 5, [real]))
    assert torch.allclose(loss, torch.tensor(math.sqrt(c), dtype=loss.dtype))


def test_flow_sees_temporal_change_a_framewise_loss_misses():
    real, lab = _two_class_clip(t=5)
    drift = torch.arange(5, dtype=real.dtype)[:, None, None, None] * 0.5
    real = real[:1] + drift * (lab[None, None] == 1)  # class 1 brightens over time
    reverse = real.flip(0)  # the same frames in the opposite order: it darkens
    reg = regions_for(lab, 2, [real])

    def frame_means(x):
        return class_stats(x, reg[0], 1e-5)[0]  # (T, C, K+1)

    # the set of per-frame statistics is the same...
    assert torch.allclose(frame_means(real).sort(0).values, frame_means(reverse).sort(0).values)
    # ...but the flow is opposite
    assert losses.flow([real], [reverse], reg) > 0.1
    assert losses.flow([real], [real], reg) == 0
    # and a constant offset over time changes frames but not the flow
    offset = real + 2.0
    assert losses.style([real], [offset], reg) > 1.0
    assert losses.flow([real], [offset], reg) < 1e-10


def test_flow_value_and_long_range_term():
    real, lab = _two_class_clip(t=3)
    reg = regions_for(torch.zeros_like(lab), 1, [real])
    fake = real.clone()
    fake[2] += 1.0  # the last frame's mean moves by 1: adjacent (2,3) and long (1,3) pairs
    # pairs: adjacent (1,2) 0, (2,3) 1; long (1,2) 0, (1,3) 1 -> mean 0.5
    assert torch.allclose(losses.flow([real], [fake], reg), torch.tensor(0.5, dtype=real.dtype))


def test_flow_single_frame_is_zero_with_grad():
    real = _feats(0, t=1)
    fake = _fake(real)
    for f in fake:
        f.data.add_(1.0)
    loss = losses.flow(real, fake, regions_for(_labels(), K, real))
    assert loss == 0 and loss.requires_grad
    _check_grad(loss, fake)


# ---------------------------------------------------------------------------- gram, cycle

def test_gram_shape_symmetry_and_values():
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 5, 8, 8, generator=g, dtype=torch.float64)
    lab = _labels()
    reg = Regions(lab, 4, (8, 8))  # class 3 absent
    gm = losses.gram(feat, reg)
    assert gm.shape == (2, 5, 5, 5)
    assert torch.allclose(gm, gm.transpose(-1, -2))
    x = feat.flatten(2)
    whole = x @ x.transpose(1, 2) / (64 * 5)
    assert torch.allclose(gm[:, -1], whole)
    assert torch.allclose(gm[:, 3], whole)  # absent class -> whole map
    xs = x[..., lab.flatten() == 1]
    assert torch.allclose(gm[:, 1], xs @ xs.transpose(1, 2) / (xs.shape[-1] * 5))
    one = losses.gram(feat, Regions(torch.zeros_like(lab), 2, (8, 8)))  # single class
    assert torch.allclose(one, whole[:, None].expand(2, 3, 5, 5))


def test_cycle_is_classwise():
    real, lab = _two_class_clip()
    w = real.shape[-1]
    fake = torch.cat([real[..., w // 2:], real[..., :w // 2]], -1)
    assert losses.cycle([real], [fake], regions_for(lab, 2, [real])) > 1.0
    assert losses.cycle([real], [fake], regions_for(torch.zeros_like(lab), 1, [real])) < 1e-10


# ---------------------------------------------------------------------------- adversarial, total

def test_adversarial_values():
    z = torch.zeros(2, 1, 3, 3)
    assert math.isclose(losses.d_loss(z, z).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(losses.g_adversarial(z).item(), math.log(2), rel_tol=1e-6)
    big = torch.full((4,), 30.0)
    assert losses.d_loss(big, -big) < 1e-10  # confident and right
    assert math.isclose(losses.d_loss(-big, big).item(), 60.0, rel_tol=1e-6)
    assert losses.g_adversarial(big) < 1e-10
    assert math.isclose(losses.g_adversarial(-big).item(), 30.0, rel_tol=1e-6)
    fake = torch.zeros(3, requires_grad=True)
    losses.g_adversarial(fake).backward()
    assert torch.allclose(fake.grad, torch.full((3,), -0.5 / 3))  # pushes fake logits up


def test_total_weights_and_skips():
    assert LossWeights() == LossWeights(adv=1.0, perc=0.1, content=0.05, style=10.0, flow=100.0, cycle=0.05)
    x = torch.tensor(2.0, requires_grad=True)
    terms = {"adv": x, "perc": 3 * x, "content": torch.tensor(1.0), "style": torch.tensor(0.5),
             "flow": torch.tensor(0.01), "cycle": torch.tensor(4.0)}
    out = losses.total(terms, LossWeights())
    assert torch.allclose(out, torch.tensor(2.0 + 0.6 + 0.05 + 5.0 + 1.0 + 0.2))
    out.backward()
    assert torch.allclose(x.grad, torch.tensor(1.0 + 0.3))

    # weight 0: the term may be missing, and a NaN there cannot leak
    w = LossWeights(flow=0.0, cycle=0.0)
    partial = {k: v for k, v in terms.items() if k != "cycle"}
    partial["flow"] = torch.tensor(float("nan"))
    assert torch.allclose(losses.total(partial, w), torch.tensor(2.0 + 0.6 + 0.05 + 5.0))
    with pytest.raises(KeyError):  # a weighted term that is missing
        losses.total(partial, LossWeights())
    with pytest.raises(KeyError):  # a typo
        losses.total({**terms, "stlye": x}, LossWeights())
    zero = LossWeights(**{k: 0.0 for k in ("adv", "perc", "content", "style", "flow", "cycle")})
    assert losses.total({}, zero) == 0


def test_pixel_terms_hand_values():
    real = torch.zeros(2, 3, 4, 4)
    fake = torch.full((2, 3, 4, 4), 0.1)
    assert losses.pixel(real, fake).item() == pytest.approx(0.1)
    assert losses.mse(real, fake).item() == pytest.approx(0.01)
    assert losses.log_mse(real, fake).item() == pytest.approx(-20.0)  # minus the PSNR in dB
    with pytest.raises(ValueError):
        losses.mse(real, fake[:1])
