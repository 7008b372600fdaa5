import numpy as np
import pytest
import pywt
import torch

from timelapse_cli.model.wavelet import HaarPool, HaarUnpool


@pytest.mark.parametrize("h,w", [(8, 8), (7, 9), (1, 6), (5, 1), (33, 64)])
def test_pool_unpool_reconstructs(h, w):
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    ll, high = HaarPool()(x)
    assert ll.shape[-2:] == ((h + 1) // 2, (w + 1) // 2)
    y = HaarUnpool()(ll, high, (h, w))
    assert y.shape == x.shape
    assert torch.allclose(x, y, atol=1e-5)


def test_bands_agree_with_pywavelets():
    x = torch.randn(1, 1, 16, 12, dtype=torch.float64)
    ll, high = HaarPool()(x)
    ca, details = pywt.dwt2(x[0, 0].numpy(), "haar")
    assert np.allclose(ll[0, 0].numpy(), ca, atol=1e-10)
    # pywavelets orders and signs the detail bands its own way: each of ours must equal
    # exactly one of theirs up to sign, and all three must be matched.
    matched = set()
    for band in high:
        b = band[0, 0].numpy()
        hits = [i for i, d in enumerate(details) if np.allclose(b, d, atol=1e-10) or np.allclose(b, -d, atol=1e-10)]
        assert len(hits) == 1
        matched.add(hits[0])
    assert matched == {0, 1, 2}


def test_kernels_follow_the_module_device_and_stay_out_of_state_dict():
    pool = HaarPool()
    assert "kernels" in dict(pool.named_buffers())
    assert pool.state_dict() == {}
    pool = pool.to(torch.float64)
    assert pool.kernels.dtype == torch.float64
