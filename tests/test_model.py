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


def _affine(width=0.125, base="transfer"):
    torch.manual_seed(0)
    return Generator(GeneratorConfig(width=width, output="affine", affine_base=base)).eval()


def test_untrained_affine_head_is_the_classwise_lab_transfer():
    """At initialisation the affine head is the identity: the output is exactly the
    reinhard-class baseline (transfer base) or the photo (photo base)."""
    from timelapse_cli.methods import Reinhard

    image, labels, windows, ref_labels, z = _inputs()
    with torch.no_grad():
        out = _affine().forward(image, labels, windows, ref_labels, 3, z)
        photo = _affine(base="photo").forward(image, labels, windows, ref_labels, 3, z)
    baseline = Reinhard(per_class=True)
    baseline.prepare(image, labels, ref_labels, 3)
    assert (out - baseline.generate(windows, 0)).abs().max() < 1e-5
    assert (photo - image).abs().max() < 1e-6


def test_affine_head_applies_a_colour_matrix_per_pixel():
    from timelapse_cli.model.affine import apply_affine

    base = torch.rand(2, 3, 5, 7)
    coeffs = torch.randn(2, 12, 5, 7)
    out = apply_affine(coeffs, base)
    a = coeffs.view(2, 3, 4, 5, 7)
    by_hand = torch.einsum("bijhw,bjhw->bihw", a[:, :, :3], base) + a[:, :, 3]
    assert torch.allclose(out, by_hand, atol=1e-6)


def test_trained_affine_head_cached_equals_full_and_keeps_the_photos_edges():
    model = _affine()
    with torch.no_grad():  # a head that is no longer the identity
        model.decoder.conv1_1.weight.normal_(0, 0.05)
    image, labels, windows, ref_labels, z = _inputs()
    with torch.no_grad():
        cache = model.encode_image(image, labels, 3)
        cached = model.decode(cache, windows, ref_labels, z)
        naive = torch.cat([model(image, labels, windows[i:i + 1], ref_labels, 3, z[i:i + 1]) for i in range(3)])
    assert (cached - naive).abs().max() < 1e-4
    assert (cached - image).abs().max() > 1e-3


def test_config_rejects_unknown_heads():
    with pytest.raises(ValueError, match="output"):
        GeneratorConfig(output="yuv")
    with pytest.raises(ValueError, match="affine_base"):
        GeneratorConfig(output="affine", affine_base="sketch")


def test_video_encoder_seeded_from_image_encoder_sees_still_windows_as_the_image():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(width=0.125, imagenet_norm=True))
    model.seed_video_encoder()
    frame = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        relu1_1_v, _ = model.video_encoder(frame.repeat(1, 3, 1, 1))
        relu1_1_i = model.image_encoder(frame)[3][0]
    # Same conv1_1 response in the interior (E_GV zero-pads, E_GI reflects at the border).
    assert torch.allclose(relu1_1_v[..., 1:-1, 1:-1], relu1_1_i[..., 1:-1, 1:-1], atol=1e-5)
