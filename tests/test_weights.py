import json

import pytest
import torch

from timelapse_cli.errors import WeightsError
from timelapse_cli.model import Generator, GeneratorConfig
from timelapse_cli.weights import (SHIPPED_DIR, TORCHVISION_VGG19, from_pretrained, import_vgg19,
                                   save_pretrained, sha256)


def test_save_and_load_roundtrip(tmp_path, tiny_generator):
    save_pretrained(tiny_generator, tmp_path / "w")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["SHA256SUMS", "config.json", "generator.safetensors"]
    loaded = from_pretrained(tmp_path / "w")
    assert loaded.config == tiny_generator.config
    for k, v in tiny_generator.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_corrupt_file_is_caught_by_checksum(tmp_path, tiny_generator):
    save_pretrained(tiny_generator, tmp_path / "w")
    f = tmp_path / "w" / "generator.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        from_pretrained(tmp_path / "w")


def test_garbage_and_mismatched_weights(tmp_path, tiny_generator):
    save_pretrained(tiny_generator, tmp_path / "w")
    (tmp_path / "w" / "SHA256SUMS").unlink()
    (tmp_path / "w" / "generator.safetensors").write_text("not tensors")
    with pytest.raises(WeightsError, match="safetensors"):
        from_pretrained(tmp_path / "w")
    # Weights of one width under the config of another.
    save_pretrained(tiny_generator, tmp_path / "m")
    (tmp_path / "m" / "SHA256SUMS").unlink()
    (tmp_path / "m" / "config.json").write_text(json.dumps(GeneratorConfig(width=0.25).to_dict()))
    with pytest.raises(WeightsError, match="do not match"):
        from_pretrained(tmp_path / "m")
    with pytest.raises(WeightsError, match="not found"):
        from_pretrained(tmp_path / "nothing")


def test_float16_storage_loads_as_float32(tmp_path, tiny_generator):
    save_pretrained(tiny_generator, tmp_path / "h", dtype=torch.float16)
    loaded = from_pretrained(tmp_path / "h")
    w = loaded.decoder.conv1_1.weight
    assert w.dtype == torch.float32
    assert torch.allclose(w, tiny_generator.decoder.conv1_1.weight, atol=1e-3)


def _fake_torchvision_vgg19():
    """A state dict with torchvision's vgg19 keys and shapes (features + classifier)."""
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
              14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512)}
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i, (o, c) in shapes.items():
        sd[f"features.{i}.weight"] = torch.randn(o, c, 3, 3, generator=g)
        sd[f"features.{i}.bias"] = torch.randn(o, generator=g)
    sd["classifier.0.weight"] = torch.randn(4, 4, generator=g)
    return sd


def test_import_torchvision_vgg19_by_key(tmp_path):
    sd = _fake_torchvision_vgg19()
    torch.save(sd, tmp_path / "vgg19-dcbb9e9d.pth")
    model = Generator()
    import_vgg19(model, tmp_path / "vgg19-dcbb9e9d.pth")
    for name, idx in TORCHVISION_VGG19.items():
        assert torch.equal(getattr(model.image_encoder, name).weight, sd[f"features.{idx}.weight"])
    assert torch.equal(model.video_encoder.conv2_1.weight, sd["features.5.weight"])
    # Three equal frames through E_GV's widened conv1_1 give VGG's own conv1_1 response.
    frame = torch.rand(1, 3, 8, 8)
    a = torch.nn.functional.conv2d(frame.repeat(1, 3, 1, 1), model.video_encoder.conv1_1.weight)
    b = torch.nn.functional.conv2d(frame, sd["features.0.weight"])
    assert torch.allclose(a, b, atol=1e-5)


def test_import_rejects_other_checkpoints(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="not a torchvision VGG-19"):
        import_vgg19(Generator(), tmp_path / "x.pth")
    (tmp_path / "y.pth").write_text("hello")
    with pytest.raises(WeightsError, match="not a readable"):
        import_vgg19(Generator(), tmp_path / "y.pth")


def test_shipped_weights_load_and_match_their_pinned_checksums():
    model = from_pretrained()
    assert isinstance(model, Generator)
    from timelapse_cli.weights import SHIPPED_SHA256
    for name, digest in SHIPPED_SHA256.items():
        assert digest and sha256(SHIPPED_DIR / name) == digest
