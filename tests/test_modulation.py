import torch

from timelapse_cli.model.modulation import Regions, class_stats, modulate

EPS = 1e-5


def _stats_per_class(feat, labels, k):
    """Population mean/std per class and channel, the obvious way: (K, C) each."""
    f = feat[0].flatten(1)
    lab = labels.flatten()
    return (torch.stack([f[:, lab == s].mean(1) for s in range(k)]),
            torch.stack([f[:, lab == s].std(1, unbiased=False) for s in range(k)]))


def _adain(content, c_labels, style, s_labels, k, noise=None):
    c_reg = Regions(c_labels, k, tuple(content.shape[-2:]))
    s_reg = Regions(s_labels, k, tuple(style.shape[-2:]))
    return modulate(content, c_reg, style, s_reg, EPS, noise)


def test_classwise_adain_matches_style_statistics():
    torch.manual_seed(0)
    k = 3
    content = torch.randn(1, 8, 20, 24, dtype=torch.float64) * 2 + 1
    c_labels = torch.randint(0, k, (20, 24))
    # Style: each class with its own mean and spread, and another size than the content.
    s_labels = torch.randint(0, k, (15, 11))
    style = torch.randn(1, 8, 15, 11, dtype=torch.float64)
    style = style * (1 + s_labels.double()) * 3 + 10 * s_labels.double()
    out = _adain(content, c_labels, style, s_labels, k)
    out_mean, out_std = _stats_per_class(out, c_labels, k)
    sty_mean, sty_std = _stats_per_class(style, s_labels, k)
    assert torch.allclose(out_mean, sty_mean, atol=1e-4)
    assert torch.allclose(out_std, sty_std, atol=1e-4, rtol=1e-4)


def test_class_missing_from_style_gets_global_statistics():
    torch.manual_seed(1)
    content = torch.randn(1, 4, 10, 10, dtype=torch.float64)
    c_labels = torch.zeros(10, 10, dtype=torch.long)
    c_labels[:, 5:] = 1  # class 1 exists only in the content
    style = torch.randn(1, 4, 8, 8, dtype=torch.float64) * 5 + 3
    s_labels = torch.zeros(8, 8, dtype=torch.long)
    out = _adain(content, c_labels, style, s_labels, 2)
    part = out[0][:, c_labels == 1]
    g = style[0].flatten(1)
    assert torch.allclose(part.mean(1), g.mean(1), atol=1e-4)
    assert torch.allclose(part.std(1, unbiased=False), g.std(1, unbiased=False), atol=1e-4)


def test_pixels_of_no_class_get_global_statistics_not_zero():
    content = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    c_labels = torch.full((6, 6), -1)
    style = torch.randn(1, 2, 6, 6, dtype=torch.float64) + 7
    out = _adain(content, c_labels, style, torch.zeros(6, 6, dtype=torch.long), 1)
    assert torch.allclose(out[0].flatten(1).mean(1), style[0].flatten(1).mean(1), atol=1e-4)


def test_degenerate_regions_stay_finite():
    content = torch.ones(1, 3, 9, 9)  # constant everywhere
    c_labels = torch.zeros(9, 9, dtype=torch.long)
    c_labels[0, 0] = 1  # a one-pixel class
    style = torch.zeros(1, 3, 5, 5)  # constant style
    s_labels = torch.zeros(5, 5, dtype=torch.long)
    s_labels[2, 2] = 1  # one pixel in the style too; class 2 empty everywhere
    out = _adain(content, c_labels, style, s_labels, 3, noise=torch.ones(1, 1, 9, 9))
    assert torch.isfinite(out).all()
    mean, std = class_stats(content, Regions(c_labels, 3, (9, 9)), EPS)
    assert torch.isfinite(mean).all() and (std > 0).all()


def test_noise_multiplies_the_style_mean():
    torch.manual_seed(2)
    content = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    labels = torch.zeros(6, 6, dtype=torch.long)
    style = torch.randn(1, 2, 6, 6, dtype=torch.float64) + 4
    plain = _adain(content, labels, style, labels, 1)
    noisy = _adain(content, labels, style, labels, 1, noise=torch.full((1, 1, 6, 6), 2.0, dtype=torch.float64))
    assert torch.allclose(noisy - plain, style[0].flatten(1).mean(1).view(1, 2, 1, 1).expand_as(plain), atol=1e-6)


def test_single_region_fast_path_equals_general_path():
    torch.manual_seed(3)
    content = torch.randn(2, 5, 12, 10, dtype=torch.float64)
    style = torch.randn(2, 5, 7, 9, dtype=torch.float64) * 2 + 1
    noise = torch.rand(2, 1, 12, 10, dtype=torch.float64) + 0.5
    one = _adain(content, torch.zeros(12, 10, dtype=torch.long), style, torch.zeros(7, 9, dtype=torch.long), 1, noise)
    # Same single region, but declared among 3 classes with one pixel of "no class"
    # (-1 takes global statistics, which here equal the region's up to that pixel).
    c_labels = torch.full((12, 10), 2)
    s_labels = torch.full((7, 9), 2)
    assert Regions(c_labels, 3, (12, 10)).single == 2
    general = _adain(content, c_labels, style, s_labels, 3, noise)
    assert torch.allclose(one, general, atol=1e-10)
    c_labels[0, 0] = 0
    assert Regions(c_labels, 3, (12, 10)).single is None


def test_class_stats_same_in_both_memory_layouts_and_accurate_in_float32():
    # Float32 features far from zero, each class offset from the others by 40x its spread:
    # the case where E[d^2] - E[d]^2 loses digits (here ~1e-4 of the std; a scale error
    # of 0.01% in AdaIN, invisible, for one pass instead of a second over the features).
    torch.manual_seed(4)
    k = 3
    labels = torch.randint(0, k, (2 * 16, 2 * 12))[::2, ::2]
    feat = (torch.randn(2, 6, 16, 12) * 0.5 + 100 + 20 * labels).float()
    regions = Regions(labels, k, (16, 12))
    mean, std = class_stats(feat, regions, 0.0)
    mean_cl, std_cl = class_stats(feat.contiguous(memory_format=torch.channels_last), regions, 0.0)
    assert torch.allclose(mean, mean_cl, rtol=1e-6) and torch.allclose(std, std_cl, rtol=1e-3)
    for b in range(2):
        want_mean, want_std = _stats_per_class(feat[b:b + 1].double(), labels, k)
        assert torch.allclose(mean[b, :, :k].T.double(), want_mean, rtol=1e-6)
        assert torch.allclose(std[b, :, :k].T.double(), want_std, rtol=1e-3)
    # Gathered per pixel, both layouts give the same values.
    assert torch.equal(regions.gather(mean), regions.gather(mean_cl.contiguous()))
    assert regions.gather(mean)[1, :, 3, 5].tolist() == mean[1, :, labels[3, 5]].tolist()
