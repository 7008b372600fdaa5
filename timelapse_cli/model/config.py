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
