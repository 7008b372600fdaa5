"""The spatio-temporally smooth noise map z of NoiseAdaIN.

Raw noise r_t ~ N(1, sigma^2) per frame (one map shared by all channels), smoothed by
the separable binomial kernel [1, 2, 1]/4 over (t, y, x), a 3x3x3 Gaussian.

Each r_t comes from its own generator seeded by (seed, t), so any run of frames can be
made on its own: generating all frames at once or in chunks gives the same z, and memory
depends on the chunk, never on the video's length. In time, r_-1 = r_0 (replicate at the
start); past the last frame the sequence simply continues, so no frame needs to know N.
In space, edges are replicated (zero padding would make z sag toward 0 at the border).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = (0.25, 0.5, 0.25)


def _raw(seed: int, t: int, size: tuple[int, int], sigma: float) -> torch.Tensor:
    # A CPU generator per frame: the same numbers on any device and in any chunking.
    g = torch.Generator().manual_seed((seed & 0xFFFFFFFF) * 1_000_003 + max(t, 0))
    return 1.0 + sigma * torch.randn(size, generator=g)


def noise_frames(seed: int, start: int, count: int, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """z_t for t = start .. start+count-1 -> (count, 1, H, W) float32 on the CPU, mean ~1."""
    h, w = size
    if sigma == 0:
        return torch.ones(count, 1, h, w)
    raw = torch.stack([_raw(seed, t, size, sigma) for t in range(start - 1, start + count + 1)])
    a, b, c = _BINOMIAL
    z = a * raw[:-2] + b * raw[1:-1] + c * raw[2:]  # time: (count, H, W)
    k = torch.tensor(_BINOMIAL)
    z = F.pad(z[:, None], (1, 1, 1, 1), mode="replicate")
    z = F.conv2d(z, k.view(1, 1, 1, 3))  # x
    z = F.conv2d(z, k.view(1, 1, 3, 1))  # y
    return z  # (count, 1, H, W)
