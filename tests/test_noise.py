import torch

from timelapse_cli.model.noise import noise_frames


def _lag1(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_mean_one_and_smooth_in_space_and_time():
    z = noise_frames(seed=3, start=0, count=40, size=(64, 64), sigma=0.5)
    assert z.shape == (40, 1, 64, 64)
    assert abs(float(z.mean()) - 1) < 0.01
    # Binomial [1,2,1]/4 smoothing gives lag-1 correlation 2/3 per axis for white noise
    # (interior); raw N(1, 0.5^2) noise would give ~0.
    time_corr = _lag1(z[:-1], z[1:])
    space_corr = _lag1(z[..., :-1], z[..., 1:])
    assert 0.6 < time_corr < 0.75, time_corr
    assert 0.6 < space_corr < 0.75, space_corr
    assert 0.05 < float(z.std()) < 0.2  # 0.5 * (3/8)^(3/2) = 0.115 in the interior


def test_same_at_once_or_in_chunks():
    size = (17, 23)
    whole = noise_frames(7, 0, 30, size, 0.5)
    chunks = torch.cat([noise_frames(7, s, n, size, 0.5) for s, n in ((0, 4), (4, 1), (5, 13), (18, 12))])
    assert torch.equal(whole, chunks)


def test_seed_changes_noise_and_zero_sigma_is_ones():
    a = noise_frames(1, 0, 2, (8, 8), 0.5)
    b = noise_frames(2, 0, 2, (8, 8), 0.5)
    assert not torch.equal(a, b)
    assert torch.equal(noise_frames(1, 0, 2, (8, 8), 0.0), torch.ones(2, 1, 8, 8))


def test_no_sag_at_the_borders():
    z = noise_frames(0, 0, 200, (16, 16), 0.5)
    assert abs(float(z[..., 0, :].mean()) - 1) < 0.02
    assert abs(float(z[0].mean()) - 1) < 0.05
