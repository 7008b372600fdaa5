"""Generator weights on disk: safetensors + config.json, checksums, VGG-19 import.

A weights directory holds `config.json` (GeneratorConfig), `generator.safetensors` and
`SHA256SUMS` (sha256sum format). Loading checks the sums first, and never executes code
from a file: safetensors is plain tensors, and torchvision's .pth checkpoint is read with
torch.load(weights_only=True).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import WeightsError
from .fsutil import atomic_path, sha256
from .model import Generator, GeneratorConfig, VGGEncoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "generator.safetensors"
SUMS_FILE = "SHA256SUMS"

# The weights shipped in the repository's weights/ directory, pinned.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED_SHA256 = {
    CONFIG_FILE: "64fa9346f92e39164d11cec41be5530b15ce0fa4c25c625fb264b22117052a22",
    WEIGHTS_FILE: "9a79402aa61ba103fa69c3dbb7d877e0e13cbf5fb902d1d2a52d24516fc38198",
}

# torchvision's vgg19 `features.N` index of each conv we use.
TORCHVISION_VGG19 = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10,
    "conv3_2": 12, "conv3_3": 14, "conv3_4": 16, "conv4_1": 19,
}


def default_weights_dir() -> Path:
    return SHIPPED_DIR


def save_pretrained(model: Generator, directory: str | Path, dtype: torch.dtype = torch.float32,
                    metadata: dict | None = None) -> Path:
    """Write config.json, generator.safetensors and SHA256SUMS into `directory`.

    Each file is written under a temporary name and renamed when complete; SHA256SUMS goes
    last, so an interrupted save is detected as a checksum mismatch, never loaded silently.
    Other files in the directory (a model card, say) are left alone.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        # Serialised in memory, then written: a full disk raises an OSError (which callers
        # report as such), where safetensors' own file writer raises its own error type.
        tmp.write_bytes(save(tensors, metadata=meta or None))
    with atomic_path(directory / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    with atomic_path(directory / SUMS_FILE) as tmp:
        tmp.write_text("".join(f"{sha256(directory / n)}  {n}\n" for n in (CONFIG_FILE, WEIGHTS_FILE)))
    return directory


def export(source: str | Path, directory: str | Path = SHIPPED_DIR, metadata: dict | None = None) -> Path:
    """Copy a trained generator (e.g. a run's best/) into `directory` as float16, the
    shipped format. The shipped sums pinned in SHIPPED_SHA256 must then be updated."""
    model = from_pretrained(source)
    return save_pretrained(model, directory, dtype=torch.float16, metadata={"source": str(source), **(metadata or {})})


def verify(directory: Path) -> None:
    """Check the files against SHA256SUMS (and the pinned sums for the shipped weights)."""
    expected = {}
    sums = directory / SUMS_FILE
    if sums.exists():
        for line in sums.read_text().splitlines():
            digest, _, name = line.strip().partition("  ")
            expected[name] = digest
    if directory.resolve() == SHIPPED_DIR:
        expected.update({k: v for k, v in SHIPPED_SHA256.items() if v})
    for name, digest in expected.items():
        if (directory / name).exists() and sha256(directory / name) != digest:
            raise WeightsError(f"weights file '{directory / name}' is corrupt (SHA-256 mismatch); "
                               "restore it (git checkout weights/) or re-save the model")


def from_pretrained(directory: str | Path | None = None, device: str | torch.device = "cpu") -> Generator:
    """Load a generator saved by save_pretrained (default: the shipped weights/)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory) if directory is not None else SHIPPED_DIR
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for p in (config_path, weights_path):
        if not p.is_file():
            raise WeightsError(f"weights file '{p}' not found; pass --weights DIR with "
                               f"{CONFIG_FILE} and {WEIGHTS_FILE} (as written by save_pretrained)")
    verify(directory)
    try:
        cfg = GeneratorConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as e:
        raise WeightsError(f"weights config '{config_path}' is invalid ({e}); re-save the model") from None
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"weights file '{weights_path}' is not a readable safetensors file ({e}); "
                           "restore or re-save it") from None
    model = Generator(cfg)
    _load_state(model, tensors, str(weights_path))
    return model.to(device).eval()


def with_night(model: Generator) -> Generator:
    """The generator with the night stage on: itself if it already is, else a copy whose
    light head is new (untrained: lights anywhere but the sky)."""
    if model.night:
        return model
    cfg = GeneratorConfig.from_dict({**model.config.to_dict(), "night": True})
    night = Generator(cfg)
    missing, unexpected = night.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("light_head.") for k in missing), (missing, unexpected)
    if not night.night:
        raise WeightsError("the night stage needs the affine head on the classwise transfer "
                           "(output 'affine', affine_base 'transfer')")
    return night.to(next(model.parameters()).device).eval()


def _load_state(model: Generator, tensors: dict, source: str) -> None:
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    unexpected = sorted(set(tensors) - set(state))
    wrong = sorted(k for k in set(state) & set(tensors) if state[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        what = (f"{len(missing)} missing" if missing else
                f"{len(unexpected)} unexpected" if unexpected else f"{len(wrong)} of another shape")
        example = (missing or unexpected or wrong)[0]
        raise WeightsError(f"weights '{source}' do not match their config.json ({what} tensors, "
                           f"e.g. '{example}'); use the config saved with these weights")
    bad = next((k for k in sorted(tensors) if tensors[k].is_floating_point() and not torch.isfinite(tensors[k]).all()),
               None)
    if bad:  # they would make every frame black: say so instead
        raise WeightsError(f"weights '{source}' hold values that are not finite (NaN or inf), e.g. in '{bad}'; "
                           "a training run that diverged wrote them: use an earlier checkpoint")
    model.load_state_dict({k: v.to(state[k].dtype) for k, v in tensors.items()})


def import_vgg19(model: Generator, path: str | Path) -> None:
    """Copy torchvision's ImageNet VGG-19 (vgg19-dcbb9e9d.pth) into E_GI and E_GV.

    E_GV's conv1_1 sees 3 stacked frames: it gets VGG's conv1_1 divided by 3 per frame, so
    a window of three equal frames starts with exactly VGG's response.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG-19 checkpoint '{path}' not found; download torchvision's "
                           "vgg19-dcbb9e9d.pth and pass its path")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors come in many types
        raise WeightsError(f"'{path}' is not a readable PyTorch checkpoint ({type(e).__name__}); "
                           "give torchvision's vgg19-dcbb9e9d.pth") from None
    if model.config.width != 1.0:
        raise WeightsError("ImageNet VGG-19 weights need a width-1.0 model; drop --width")
    enc = model.image_encoder
    with torch.no_grad():
        for name, idx in TORCHVISION_VGG19.items():
            w, b = sd.get(f"features.{idx}.weight"), sd.get(f"features.{idx}.bias")
            conv = getattr(enc, name)
            if w is None or b is None or w.shape != conv.weight.shape:
                raise WeightsError(f"'{path}' is not a torchvision VGG-19 checkpoint "
                                   f"(features.{idx} missing or of another shape)")
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    model.seed_video_encoder()


def loss_network(generator: Generator, vgg: str | Path | None = None) -> tuple[VGGEncoder, str]:
    """The fixed VGG-19 (relu1_1 .. relu4_1, max pools) used by losses and style metrics.

    ImageNet VGG-19 from torchvision's checkpoint `vgg` when given, else a copy of the
    generator's own E_GI. Returns the network (frozen, eval) and a note of which it is.
    """
    if vgg:
        net = VGGEncoder(GeneratorConfig(width=1.0), pool="max")
        donor = Generator(GeneratorConfig())
        import_vgg19(donor, vgg)
        src, note = donor.image_encoder, f"ImageNet VGG-19 ({Path(vgg).name})"
    else:
        net = VGGEncoder(GeneratorConfig(width=generator.config.width), pool="max")
        src, note = generator.image_encoder, "the generator's own E_GI"
    # Conv weights by layer name; the pooling differs (max here, Haar in E_GI).
    net.load_state_dict({k: v for k, v in src.state_dict().items() if k.startswith("conv")}, strict=False)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), note
