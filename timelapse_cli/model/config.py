"""The generator's architecture, saved as JSON beside its weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class GeneratorConfig:
    # Channel widths of the VGG-19 levels 1..4 are (64, 128, 256, 512) * width.
    # width=1.0 is the paper's model; smaller widths make faster, smaller models.
    width: float = 1.0
    # Normalise [0, 1] RGB input with ImageNet mean/std before the first conv, as the
    # ImageNet VGG-19 weights expect.
    imagenet_norm: bool = True
    # Std of the noise map z before smoothing (its mean is 1); 0 turns the noise off.
    noise_sigma: float = 0.5
    # Fraction of the NoiseAdaIN output kept at D_relu1.1; the reference code blends
    # 50/50 with the unmodulated features (0.5). 1.0 is the paper's formula.
    noise_mix: float = 1.0
    # Epsilon added to variances in the classwise statistics.
    eps: float = 1e-5
    # What the decoder's last conv predicts. "rgb": the frame itself (the paper).
    # "affine": a 3x4 colour matrix per pixel applied to `affine_base`, starting at the
    # identity, so an untrained model returns the base and the photo's edges are kept.
    output: str = "rgb"
    # The image the affine matrices act on: "photo", or "transfer": the photo after a
    # classwise mean/std colour transfer in Lab from the window's newest frame.
    affine_base: str = "transfer"
    # Affine output: the colour matrices are averaged over blocks of this many pixels and
    # interpolated back (bilinear), so the correction is smooth; 1 keeps them per pixel.
    affine_smooth: int = 1
    # Night (night.py): transfer to the reference's unlit (ambient) light with the day's
    # shading taken out as it darkens, and light sprites placed by the light head where the
    # reference has lit pixels. Off: the plain classwise transfer (affine head only).
    night: bool = False
    # Night: a lit cell that holds windows (night.window_map) lights them instead of a point.
    windows: bool = True
    # Local transfer (local.py): when the photo shows the reference's own view, each part of
    # it changes as the same part of the reference does (from the reference frame most like
    # the photo), instead of class by class. Needs that frame (an anchor) at encode_image;
    # without one, or for another view, the base is the classwise transfer.
    local: bool = False
    # Affine output: the long side the network (E_GI, E_GV, D_G) works at. A larger photo is
    # shrunk to it for the network, and the network's colour matrices (smooth by
    # construction) are interpolated to the photo's size and applied there, so the output's
    # size barely changes the network's cost; the transfer they act on, the night's lamps
    # and the local transfer stay at full size. None: the network works at the photo's size.
    work_size: int | None = None

    def __post_init__(self) -> None:
        if self.output not in ("rgb", "affine"):
            raise ValueError(f"output must be 'rgb' or 'affine', got {self.output!r}")
        if self.affine_base not in ("photo", "transfer"):
            raise ValueError(f"affine_base must be 'photo' or 'transfer', got {self.affine_base!r}")
        if not (isinstance(self.affine_smooth, int) and self.affine_smooth >= 1):
            raise ValueError(f"affine_smooth must be a whole number >= 1, got {self.affine_smooth!r}")
        if self.work_size is not None and not (isinstance(self.work_size, int) and self.work_size >= 16):
            raise ValueError(f"work_size must be a whole number >= 16 or null, got {self.work_size!r}")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width!r}")

    @property
    def out_channels(self) -> int:
        """Channels of the decoder's last conv: RGB, or a 3x4 matrix per pixel."""
        return 3 if self.output == "rgb" else 12

    def channels(self, level: int) -> int:
        """Channels of VGG level 1..4 (64, 128, 256, 512 at width 1)."""
        return max(1, round((32 << level) * self.width))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**d)
