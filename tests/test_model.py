import pytest
import torch

from timelapse_cli.model import Generator, GeneratorConfig, VideoDiscriminator, noise_frames


def _inputs(b=3, h=37, w=50, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, h, w, generator=g)
    labels = torch.randint(0, k, (h, w), generator=g)
    windows = torch.rand(b, 9, 24, 31, generator=g)
    ref_labels = torch.randint(0, k, (24, 31), generator=g)
    z = noise_frames(seed, 0, b, (h, w), 0.5)
    return image, labels, windows, ref_labels, z


@pytest.mark.parametrize("width", [0.125, 1.0])
def test_cached_path_equals_full_generator_per_frame(width):
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(width=width)).eval()
    image, labels, windows, ref_labels, z = _inputs()
    with torch.no_grad():
        cache = model.encode_image(image, labels, 3)
        cached = model.decode(cache, windows, ref_labels, z)
        # The reference code's way: the whole generator, one frame at a time.
        naive = torch.cat([model(image, labels, windows[i:i + 1], ref_labels, 3, z[i:i + 1])
                           for i in range(windows.shape[0])])
    assert cached.shape == (3, 3, 37, 50)
    assert torch.isfinite(cached).all()
    assert (cached - naive).abs().max() < 1e-4


def test_output_depends_on_the_reference_window_and_noise(tiny_generator):
    image, labels, windows, ref_labels, z = _inputs(b=2)
    with torch.no_grad():
        cache = tiny_generator.encode_image(image, labels, 3)
        a = tiny_generator.decode(cache, windows, ref_labels, z)
        b = tiny_generator.decode(cache, windows.flip(0), ref_labels, z)
        c = tiny_generator.decode(cache, windows, ref_labels, z * 1.5)
    assert not torch.allclose(a, b.flip(0))  # different noise per frame
    assert (a - c).abs().max() > 1e-4


def test_width_multiplier_scales_channels():
    small = Generator(GeneratorConfig(width=0.25))
    assert small.image_encoder.conv4_1.out_channels == 128
    assert small.video_encoder.conv1_1.in_channels == 9
    full = sum(p.numel() for p in Generator().parameters())
    assert sum(p.numel() for p in small.parameters()) < full / 10


def test_discriminator_is_fully_convolutional():
    d = VideoDiscriminator(width=8)
    for h, w in ((64, 64), (48, 80), (33, 17)):
        out = d(torch.rand(2, 18, h, w))
        assert out.shape[:2] == (2, 1) and out.shape[-2:] == (-(-(-(-(-(-h // 2)) // 2)) // 2), -(-(-(-(-(-w // 2)) // 2)) // 2))
    assert sum(p.numel() for p in VideoDiscriminator().parameters()) < 1_000_000


def test_gradients_reach_trainable_parts(tiny_generator):
    image, labels, windows, ref_labels, z = _inputs(b=1)
    tiny_generator.train()
    out = tiny_generator(image, labels, windows, ref_labels, 3, z)
    out.mean().backward()
    assert tiny_generator.decoder.conv4_1.weight.grad.abs().sum() > 0
    assert tiny_generator.video_encoder.conv1_1.weight.grad.abs().sum() > 0
